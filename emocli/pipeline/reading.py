"""The reader stage of annotate: each job's media probed and its text found, in order, ahead of the model.

The text comes from the first of: the subtitle file (--subs, or the sibling), a text track inside the video, a
transcript from an earlier run (`<stem>.transcript.srt`), else speech recognition (text/asr.py). A transcription is
streamed: the reader hands the job on at once, then feeds it the utterances as Whisper finishes them, so the model
labels them while the rest of the speech is still being transcribed, and the reader goes on to the next job (and
its transcription) while the model finishes this one. Nothing here imports PyTorch: the CLI starts the reader
first, and the first video is being transcribed while the model loads.
"""

from __future__ import annotations

import os
import queue
import re
import sys
import threading
from dataclasses import dataclass, replace
from typing import Iterator, Union

import numpy as np

from ..errors import EmocliError, UsageError
from ..files import atomic_write, remove_stale_temps
from ..media.ffmpeg import MediaInfo, decode_audio, probe
from ..text.encoding import DecodedText
from ..text.subtitles import Cue, SubtitleFile, read_subtitles
from ..text.tracks import SubtitleTrack, choose_audio_track, list_audio_tracks
from .jobs import AnnotateOptions, Job, transcript_path

_END = object()


class Transcription:
    """A transcript in the making. `run` (on the reader's thread) decodes the audio, transcribes it and queues
    each batch of finished utterances as cues; `batches` (on the thread that labels them) yields them, then raises
    the run's error, if it failed. The transcript file is written before the last batch is handed on."""

    def __init__(self, job: Job, info: MediaInfo, track: int, options: AnnotateOptions, device: str,
                 why: str) -> None:
        self.job, self.info, self.track, self.options, self.device, self.why = job, info, track, options, device, why
        self.audio: np.ndarray | None = None  # set before the first batch: the audio branch reuses it
        self.label: str | None = None  # the speech model's name, set before the first batch
        self.cues: list[Cue] = []
        self._queue: queue.Queue = queue.Queue()

    def run(self, stop: threading.Event | None = None, progress: bool = False) -> None:
        from ..text.asr import AsrWorker, transcript_srt, transcription_bar

        opts, info = self.options, self.info
        try:
            if opts.defer_to_asr:
                defer_to_transcription()
            utterances = []
            with AsrWorker(opts.asr_model, self.device, opts.language) as worker:  # loads while ffmpeg decodes
                self.audio = decode_audio(self.job.video, track=self.track)
                total = info.duration_s if info.duration_s is not None else len(self.audio) / 16_000
                with transcription_bar(total, self.job.video.name, progress) as bar:
                    for batch, reached in worker.transcribe(self.audio, info.duration_s):
                        self.label = worker.label
                        if batch:
                            first = len(self.cues) + 1
                            cues = [Cue(k, u.start_s, u.end_s, u.text, None, None, k, asr=(u.confidence, u.no_speech))
                                    for k, u in enumerate(batch, start=first)]
                            utterances += batch
                            self.cues += cues
                            self._queue.put(cues)
                        bar.update(max(0.0, round(reached, 1) - bar.n))
                        if stop is not None and stop.is_set():
                            break
                self.label = worker.label
            if stop is None or not stop.is_set():  # a stopped run leaves no half transcript behind
                path = transcript_path(self.job)
                remove_stale_temps(path)
                atomic_write(path, transcript_srt(utterances))
            self._queue.put(_END)
        except Exception as exc:  # noqa: BLE001 - raised on the labelling side, where errors are reported
            self._queue.put(exc)

    def batches(self) -> Iterator[list[Cue]]:
        """The cues of each batch as it is transcribed; raises the transcription's error at its end."""
        while True:
            item = self._queue.get()
            if item is _END:
                return
            if isinstance(item, Exception):
                raise item
            yield item


#: How much lower (in nice steps) the rest of the process runs once a transcription starts.
DEFER_NICENESS = 10
_deferred = threading.Event()


def defer_to_transcription() -> None:
    """Lower the CPU priority of every thread of this process but the calling one (the reader), once: where the
    model's work (and PyTorch's threads, and the decoders', which inherit it) competes with the transcription for
    the cores, the transcription (the reader and the speech model's process, which keep theirs) goes first, and
    the model's work fills its gaps instead of slowing it down. Without competition nothing changes. Linux only
    (threads are tasks there); elsewhere a no-op."""
    if _deferred.is_set() or not sys.platform.startswith("linux"):
        return
    _deferred.set()
    me = threading.get_native_id()
    for task in os.listdir("/proc/self/task"):
        try:
            tid = int(task)
            if tid != me:
                os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + DEFER_NICENESS))
        except (OSError, ValueError):  # a thread that ended meanwhile
            pass


def transcribed(cues: list[Cue], label: str | None, why: str) -> SubtitleFile:
    parsed = SubtitleFile(cues, 0, "asr", DecodedText("", "utf-8", True))
    parsed.notes[f"utterances transcribed by {label} (no subtitles: {why})"] = len(cues)
    return parsed


@dataclass
class Source:
    """One job as read: its media, where its text comes from, and the text, whole (`subs`) or still being
    transcribed (`live`)."""

    job: Job
    info: MediaInfo
    kind: str  # "subtitles", "embedded track" or "asr"
    where: str  # the file the text was read from (or is written to, for a transcript)
    label: str | None  # the embedded track's description, or the speech model's name
    audio_tracks: list[SubtitleTrack]
    heard: SubtitleTrack | None  # the audio track chosen for transcription (None: none, or the only one)
    subs: SubtitleFile | None = None
    live: Transcription | None = None
    audio: np.ndarray | None = None  # the whole audio, when transcription decoded it

    def transcribed_so_far(self) -> Source:
        """This source with what its (finished) transcription gave, as a whole subtitle file."""
        live = self.live
        return replace(self, subs=transcribed(live.cues, live.label, live.why), label=live.label, audio=live.audio,
                       live=None)

    @property
    def track(self) -> int:
        return self.heard.subtitle_index if self.heard else 0

    def complete(self) -> Source:
        """This source with its whole text: a live transcription is run here and now."""
        if self.live is None:
            return self
        self.live.run()
        for _ in self.live.batches():  # raises what the transcription raised
            pass
        return self.transcribed_so_far()


def read_source(job: Job, options: AnnotateOptions, asr_device: str = "cpu") -> Source:
    """Probe the job's media and find its text (see the module's docstring); raises EmocliError for unusable
    inputs. A transcription is returned not yet run (`Source.live`)."""
    info = probe(job.video)
    audio_tracks = list_audio_tracks(job.video) if info.has_audio else []
    heard = choose_audio_track(audio_tracks, options.audio_track, options.language, job.video)  # for transcription
    source = Source(job, info, "asr", str(job.video), None, audio_tracks, heard)
    if options.transcribe == "always":
        return _transcribed_source(source, options, asr_device, "--transcribe always")
    if job.subs is not None:
        source.kind, source.where = "subtitles", str(job.subs)
        source.subs = read_subtitles(job.subs, options.encoding, options.keep_sound_cues)
        return source
    from ..text.tracks import TRACK_CONTAINERS, read_track

    why = "no subtitle file or text track"
    if job.video.suffix.lower() in TRACK_CONTAINERS or options.subs_track is not None:
        try:
            found = read_track(job.video, options.subs_track, options.keep_sound_cues)
        except UsageError:
            raise
        except EmocliError as exc:  # only image-based tracks: speech recognition can still give the text
            if options.transcribe != "auto" or "image-based" not in exc.message:
                raise
            named = re.search(r"\(track [^)]*\)", exc.message)
            found, why = None, "its subtitle tracks are image-based" + (f" {named.group(0)}" if named else "")
        if found is not None:
            source.kind, source.subs, source.label = "embedded track", found[0], found[1]
            return source
    if options.transcribe == "never":
        raise EmocliError(f"{job.video}: no subtitles found (expected {job.video.stem}.srt, .vtt, .ass or .ssa "
                          f"beside it, or a subtitle track inside it; pass --subs, or leave out --transcribe "
                          f"never to transcribe its speech)")
    return _transcribed_source(source, options, asr_device, why)


def _transcribed_source(source: Source, options: AnnotateOptions, asr_device: str, why: str) -> Source:
    """Text from speech: the transcript of an earlier run (unless --overwrite), else a transcription to run."""
    job = source.job
    if not source.info.has_audio:
        raise EmocliError(f"{job.video}: {why}, and no audio stream to transcribe")
    path = transcript_path(job)
    source.where = str(path)
    if path.is_file() and not options.overwrite:
        source.subs = read_subtitles(path, "utf-8")
        source.subs.notes["transcript reused from an earlier run"] += 1
        return source
    source.live = Transcription(job, source.info, source.track, options, asr_device, why)
    return source


@dataclass(frozen=True)
class Skipped:
    """A job whose outputs all exist already (resume): nothing to do."""

    job: Job


@dataclass(frozen=True)
class Failed:
    """A job that cannot be annotated, and why (one line for the user)."""

    job: Job
    error: EmocliError


@dataclass(frozen=True)
class Read:
    """A job whose media is probed and whose text is found (or is being transcribed: `source.live`)."""

    job: Job
    source: Source


ReaderMessage = Union[Skipped, Failed, Read]


class Reader:
    """Reads the jobs in order on a thread of its own and hands each on as a message: `Skipped` (its outputs all
    exist), `Failed` or `Read`. It runs at most one job ahead of the one taken last (a transcription runs after
    its job was handed on), so at most two videos' audio are held at once."""

    def __init__(self, jobs: list[Job], options: AnnotateOptions, asr_device: str = "cpu") -> None:
        self.jobs, self.options, self.asr_device = jobs, options, asr_device
        self.stop = threading.Event()
        self._queue: queue.Queue = queue.Queue(maxsize=1)
        self._thread = threading.Thread(target=self._read, name="emocli-reader", daemon=True)

    def start(self) -> Reader:
        self._thread.start()
        return self

    def _put(self, message: ReaderMessage | None) -> bool:
        while not self.stop.is_set():
            try:
                self._queue.put(message, timeout=0.1)
                return True
            except queue.Full:
                pass
        return False

    def _read(self) -> None:
        options = self.options
        try:
            for job in self.jobs:
                if self.stop.is_set():
                    break
                wanted = job.outputs(options.formats, options.plot)
                if wanted and not options.overwrite and all(p.is_file() for p in wanted):
                    for path in wanted:  # what a killed run may have left beside them
                        remove_stale_temps(path)
                    self._put(Skipped(job))
                    continue
                try:
                    source = read_source(job, options, self.asr_device)
                except EmocliError as exc:
                    self._put(Failed(job, exc))
                    continue
                except Exception as exc:  # noqa: BLE001 - one broken video never stops a folder run
                    self._put(Failed(job, EmocliError(f"{job.video}: unexpected {type(exc).__name__}: {exc}")))
                    continue
                if self._put(Read(job, source)) and source.live is not None:
                    source.live.run(self.stop, options.progress)
        finally:  # whoever reads always learns that nothing more comes
            self._put(None)

    def __iter__(self) -> Iterator[ReaderMessage]:
        while True:
            try:
                message = self._queue.get(timeout=0.1)
            except queue.Empty:
                if self.stop.is_set() or not self._thread.is_alive() and self._queue.empty():
                    return
                continue
            if message is None:
                return
            yield message

    def close(self, timeout: float = 60) -> None:
        """Stop reading (a transcription stops after its current segment) and wait for the thread."""
        self.stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
