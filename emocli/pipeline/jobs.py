"""What to annotate and how: the options of a run (checked in one place, for the command line and Python callers
alike), the jobs (a file, or each media file of a folder, with its subtitles and where its outputs go) and a job
once its text is read (`PreparedJob`). Imports no PyTorch, so a run starts reading and transcribing its first
video while the model loads."""

from __future__ import annotations

import sys
import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from tqdm import tqdm

from ..device import check_device, check_precision
from ..errors import UsageError
from ..files import can_create_files, check_output_dir
from ..media.ffmpeg import MediaInfo, list_media
from ..media.vad import VAD_METHODS
from ..outputs.writers import WRITERS, output_path, parse_formats
from ..text.asr import TRANSCRIBE_MODES, check_language
from ..text.encoding import check_encoding
from ..text.subtitles import Cue, SubtitleReport, find_subtitles
from ..text.tracks import check_track_spec

if TYPE_CHECKING:
    import numpy as np

    from ..text.segments import Utterance

def _stderr(message: str) -> None:
    tqdm.write(message, file=sys.stderr)


@dataclass
class AnnotateOptions:
    """How to annotate: output formats and folder, device, batch size, resume, voice detection, where the text
    comes from. `validate()` checks them all (the command line and `emocli.annotate` call it before any work)."""

    formats: list[str] = field(default_factory=lambda: ["csv"])  # [] from Python: results in memory, no files
    output_dir: Path | None = None  # None: next to each video
    device: str = "auto"
    batch_size: int = 16
    overwrite: bool = False
    vad: str = "silero"
    attention: bool = False  # per-utterance attention weights in the JSON (which is then written too)
    color: bool = False  # SRT cues wrapped in <font color> per emotion
    plot: bool = False  # a timeline PNG per video
    decode_workers: int | None = None  # segments decoded at once; None: one per CPU core (at most 16)
    precision: str = "auto"  # model arithmetic: auto, fp32, bf16, fp16 or int8 (see device.amp_dtype)
    encoding: str | None = None  # the subtitle files' text encoding; None: detected per file
    keep_sound_cues: bool = False  # label sound descriptions and credits too, instead of keeping them unlabelled
    subs_track: str | None = None  # embedded subtitle track to read (number or language); None: English, else first
    transcribe: str = "auto"  # speech recognition: auto (when there are no subtitles), always or never
    asr_model: str | None = None  # faster-whisper model name or folder; None: the bundled tiny.en
    language: str = "en"  # the language spoken, for speech recognition
    audio_track: str | None = None  # audio stream to hear (number or language); None: the subtitles' language
    face: bool = False  # faces in each utterance's frames and what they express, beside the label (signals/faces.py)
    voice: bool = False  # the emotion in each utterance's voice, beside the label (signals/voice.py)
    diarize: bool = False  # speakers found by voice where the subtitles name none (signals/diarize.py)
    num_speakers: int | None = None  # --diarize: the number of speakers, when it is known
    min_speakers: int | None = None  # --diarize: bounds on the number estimated otherwise
    max_speakers: int | None = None
    defer_to_asr: bool = False  # the CLI's: once a transcription starts, the rest of the process runs at a lower
    # CPU priority (reading.defer_to_transcription); off for library callers, whose process it would change
    progress: bool = True
    log: Callable[[str], None] = field(default=_stderr)

    def validate(self) -> AnnotateOptions:
        """Check every option before any work and normalise it (formats as registry names, the encoding's
        canonical name, the language in lower case); a UsageError names the first bad one. Returns self."""
        if isinstance(self.formats, str):
            self.formats = parse_formats(self.formats)
        else:
            self.formats = parse_formats(",".join(self.formats)) if self.formats else []
        if self.attention and self.formats and "json" not in self.formats:
            self.formats.append("json")  # attention weights live in the JSON
        if self.vad not in VAD_METHODS:
            raise UsageError(f"--vad must be one of {', '.join(VAD_METHODS)}")
        self.device = check_device(self.device)
        check_precision(self.precision)
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise UsageError(f"--batch-size must be a whole number of at least 1, not {self.batch_size!r}")
        if self.decode_workers is not None and (not isinstance(self.decode_workers, int) or self.decode_workers < 1):
            raise UsageError(f"--decode-workers must be a whole number of at least 1, not {self.decode_workers!r}")
        if self.encoding is not None:
            self.encoding = check_encoding(self.encoding)
        if self.transcribe not in TRANSCRIBE_MODES:
            raise UsageError(f"--transcribe must be one of {', '.join(TRANSCRIBE_MODES)}")
        self.subs_track = check_track_spec("--subs-track", self.subs_track)
        self.audio_track = check_track_spec("--audio-track", self.audio_track)
        self.language = (self.language or "en").lower()
        if self.transcribe != "never":
            check_language(self.asr_model, self.language)
        self._check_speakers()
        if self.output_dir is not None:
            self.output_dir = Path(self.output_dir)
        return self

    def _check_speakers(self) -> None:
        given = {name: getattr(self, name.replace("-", "_")) for name in ("num-speakers", "min-speakers",
                                                                         "max-speakers")}
        for name, value in given.items():
            if value is None:
                continue
            if not self.diarize:
                raise UsageError(f"--{name} counts the speakers --diarize finds: add --diarize")
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise UsageError(f"--{name} must be a whole number of at least 1, not {value!r}")
        if self.num_speakers is not None and (self.min_speakers is not None or self.max_speakers is not None):
            raise UsageError("--num-speakers gives the count: leave out --min-speakers and --max-speakers")
        if self.min_speakers is not None and self.max_speakers is not None and self.min_speakers > self.max_speakers:
            raise UsageError(f"--min-speakers {self.min_speakers} is more than --max-speakers {self.max_speakers}")


@dataclass
class Job:
    """One video to annotate, its subtitles (None: not found) and where its outputs go."""

    video: Path
    subs: Path | None
    output_dir: Path
    stem: str | None = None  # output names: <stem>.emotions.<ext>; None: the video's stem

    def outputs(self, formats: list[str], plot: bool = False) -> list[Path]:
        paths = [output_path(self.video, self.output_dir, WRITERS[f].extension, self.stem) for f in formats]
        return paths + ([output_path(self.video, self.output_dir, "png", self.stem)] if plot else [])



def _names(paths: list[Path], at_most: int = 5) -> str:
    names = [p.name for p in paths[:at_most]]
    return ", ".join(names) + (f" and {len(paths) - at_most} more" if len(paths) > at_most else "")


def find_jobs(target: str | Path, subs: str | Path | None = None, output_dir: str | Path | None = None,
              log: Callable[[str], None] | None = None, siblings: bool = True,
              subs_track: str | None = None) -> list[Job]:
    """A file -> one job; a folder -> one job per media file in it (sorted), each paired with its subtitles
    (`find_subtitles`: the sibling file, else, at preparation, a text track inside the video). Files in the
    folder that are neither media nor subtitles are named through `log`. `siblings=False`, or a `subs_track`
    (an embedded track was asked for), skips the sibling files.

    Videos of one stem (`ep1.mkv` beside `ep1.mp4`) would write the same output files: theirs are named after the
    whole file name instead (`ep1.mkv.emotions.csv`, `ep1.mp4.emotions.csv`)."""
    target = Path(target)
    if subs is not None and subs_track is not None:
        raise UsageError("--subs and --subs-track both name the subtitles: give one")
    siblings = siblings and subs_track is None
    if not target.exists():
        raise UsageError(f"no such file or folder: {target}")
    if subs is not None:
        if target.is_dir():
            raise UsageError("--subs names one subtitle file; in folder mode subtitles are found by stem")
        if Path(subs).is_dir():
            raise UsageError(f"--subs {subs} is a folder; name the subtitle file")
        if not Path(subs).is_file():
            raise UsageError(f"subtitle file not found: {subs}")
    if target.is_dir():
        videos, ignored = list_media(target)
        if not videos:
            raise UsageError(f"no video or audio files in {target}"
                             + (f" (ignored: {_names(ignored)})" if ignored else ""))
        if ignored and log is not None:
            log(f"emocli: note: {target}: {len(ignored)} file(s) that are not media ignored: {_names(ignored)}")
    else:
        videos = [target]
    stems = Counter(v.stem.casefold() for v in videos)  # casefold: one file on case-insensitive file systems
    if output_dir is not None:
        check_output_dir(output_dir)
    jobs = []
    for video in videos:
        sub = Path(subs) if subs is not None else (find_subtitles(video) if siblings else None)
        jobs.append(Job(video, sub, Path(output_dir) if output_dir else video.parent,
                        video.name if stems[video.stem.casefold()] > 1 else None))
    return jobs


def check_writable(jobs: list[Job], outputs: Callable[[Job], list[Path]], overwrite: bool = False) -> None:
    """Before any work: every folder the run will write to takes files. `-o` was checked by find_jobs; this is
    for writing next to each video (its folder may be read-only). A job whose outputs all exist already is
    skipped without writing (unless `overwrite`), so its folder needs no access."""
    tried: set[Path] = set()
    for job in jobs:
        wanted = outputs(job)
        if not wanted or (not overwrite and all(p.is_file() for p in wanted)):
            continue
        folder = job.output_dir
        if folder in tried or not folder.is_dir():
            continue
        tried.add(folder)
        error = can_create_files(folder)
        if error is not None:
            raise UsageError(f"cannot write next to {job.video.name}: its folder {folder} takes no files "
                             f"({error.strerror or error}); pass -o DIR to write the outputs elsewhere")


def transcript_path(job: Job) -> Path:
    return job.output_dir / f"{job.stem or job.video.stem}.transcript.srt"


@dataclass
class DecodedSpan:
    """How far a video's streams decoded: the last frame and the end of the last audio seen, in media seconds
    (None: not decoded at all). Decoder threads report what they saw; a gap against the media's duration means a
    truncated file or a stream that ends early, and the utterances beyond it are masked, not fed stale data."""

    video_to_s: float | None = None
    audio_to_s: float | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def saw(self, video_s: float | None = None, audio_s: float | None = None) -> None:
        with self._lock:
            if video_s is not None:
                self.video_to_s = max(self.video_to_s or 0.0, video_s)
            if audio_s is not None:
                self.audio_to_s = max(self.audio_to_s or 0.0, audio_s)


@dataclass
class PreparedJob:
    """A job whose text is read: its media, its utterances (each cue, or each speaker's turn, to label), how its
    subtitles were read, and the cues written unlabelled."""

    job: Job
    info: MediaInfo
    utterances: list[Utterance]
    report: SubtitleReport
    non_speech: list[Cue] = field(default_factory=list)  # cues written unlabelled (sound descriptions, credits)
    audio: np.ndarray | None = None  # the whole audio, when transcription decoded it (the audio branch reuses it)
    audio_track: int = 0  # the audio stream heard (the N of 0:a:N), by transcription and the audio branch
    streamed: bool = False  # utterances still arrive from a transcription (the report is final at the end)
    decoded: DecodedSpan = field(default_factory=DecodedSpan)  # how far its streams decoded (decode.py says)
