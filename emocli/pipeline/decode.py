"""Decoding for annotate: the media each utterance needs, from one pass per segment of the video.

A video's utterances are split into segments of about equal media time, one per decoder. Each segment is one
ffmpeg pass for its frames (a select filter keeps only the frames the cues need, and ffmpeg scales them to the
encoder's size), streamed as it decodes, and one for its audio, with voice detection. Chunks of utterances are
handed on as soon as their frames have arrived, so the model starts on the first chunks while the rest decode.
In a folder run all videos share one set of decoders (`Decoder`): the next video's segments start as soon as a
decoder is free.

Each ffmpeg decodes with one thread when there are as many segments as cores: independent single-threaded passes
over separate stretches of the file scale better than one pass with ffmpeg's frame threads (measured in
bench/annotate.py, where the one-pass figure is the decode floor).
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

import numpy as np

from ..media.ffmpeg import SAMPLE_RATE_HZ, decode_audio, frame_tolerance_s, frames_near, stream_frames
from ..media.vad import voiced_masks
from ..model.network import EmotionModel, UtteranceInput
from ..text.segments import Utterance, frame_times
from .jobs import PreparedJob

FACE_FRAMES = 8  # frames looked at for faces per utterance, when the model reads no video (as many as it would)
CHUNK_MAX_CUES = 16  # utterances handed on at once (16 x 8 frames x 224^2 x 3 bytes = 19 MB)
CHUNK_MAX_S = 30.0  # media seconds per chunk
SEGMENT_MAX_CUES = 128  # per ffmpeg pass: keeps its select expression (~60 bytes per frame) far below argv limits
SEGMENT_MAX_S = 600.0  # per pass: bounds the audio held at once (10 min of 16 kHz float32 = 38 MB)
SEGMENT_MIN_S = 20.0  # a pass costs a process start and a seek from the previous keyframe: not for less
MAX_WORKERS = 16

Items = list[tuple[Utterance, UtteranceInput]]


def cores() -> int:
    """CPU cores this process may run on (its affinity mask, as in a container), else all of them."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def decode_workers(requested: int | None = None) -> int:
    """How many segments decode at once: one per CPU core (at most 16), unless asked otherwise."""
    if requested:
        return max(1, requested)
    return min(MAX_WORKERS, cores())


def decoder_threads(segments_at_once: int) -> int:
    """ffmpeg's decoder threads when `segments_at_once` passes share the cores: one each when there are enough
    passes to fill them; more when there are few (a short clip, or --decode-workers 1)."""
    return max(1, cores() // max(1, segments_at_once))


def plan_segments(utterances: list[Utterance], workers: int) -> list[list[Utterance]]:
    """Time-ordered utterances -> consecutive segments of about equal media time, `workers` of them when the
    media is long enough (SEGMENT_MIN_S each), none longer than SEGMENT_MAX_S or with over SEGMENT_MAX_CUES."""
    if not utterances:
        return []
    first = utterances[0].start_s
    span = max(max(u.end_s for u in utterances) - first, 1e-3)
    count = max(1, min(workers, len(utterances), int(span // SEGMENT_MIN_S)))
    needed = max(int(np.ceil(span / SEGMENT_MAX_S)), -(-len(utterances) // SEGMENT_MAX_CUES))
    if needed > count:  # more segments than decoders: a whole number of rounds, so none decodes alone at the end
        count = -(-needed // count) * count
    parts: list[list[Utterance]] = [[] for _ in range(count)]
    for u in utterances:
        parts[min(count - 1, int((u.start_s - first) / span * count))].append(u)
    segments = []
    for part in parts:  # stretches without cues are dropped; dense ones over the cue limit split evenly
        pieces = -(-len(part) // SEGMENT_MAX_CUES)
        for i in range(pieces):
            segments.append(part[i * len(part) // pieces:(i + 1) * len(part) // pieces])
    return segments


def chunks_of(utterances: list[Utterance]) -> list[list[Utterance]]:
    """Consecutive chunks of at most CHUNK_MAX_CUES utterances spanning at most CHUNK_MAX_S."""
    chunks: list[list[Utterance]] = []
    for u in utterances:
        if chunks and len(chunks[-1]) < CHUNK_MAX_CUES and u.end_s - chunks[-1][0].start_s <= CHUNK_MAX_S:
            chunks[-1].append(u)
        else:
            chunks.append([u])
    return chunks


def _span(utts: list[Utterance]) -> tuple[float, float]:
    return utts[0].start_s, max(u.end_s for u in utts)


def segment_audio(prep: PreparedJob, segment: list[Utterance], vad: str) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """One pass over the segment's audio, cut into its utterances, each with its voiced samples; keyed by
    position in the segment (an utterance outside the audio has no entry)."""
    start_s, end_s = _span(segment)
    if prep.audio is not None:  # decoded once already, for transcription
        a, b = int(round(start_s * SAMPLE_RATE_HZ)), int(round(end_s * SAMPLE_RATE_HZ))
        audio = prep.audio[a:b]
    else:
        audio = decode_audio(prep.job.video, start_s, end_s - start_s, prep.audio_track)
    prep.decoded.saw(audio_s=start_s + len(audio) / SAMPLE_RATE_HZ if len(audio) else None)
    where, pieces = [], []
    for k, u in enumerate(segment):
        a = int(round((u.start_s - start_s) * SAMPLE_RATE_HZ))
        b = min(int(round((u.end_s - start_s) * SAMPLE_RATE_HZ)), len(audio))
        if b > a:
            where.append(k)
            pieces.append(audio[a:b].copy())  # copies: the segment's audio is freed once cut
    return {k: (piece, mask) for k, piece, mask in zip(where, pieces, voiced_masks(pieces, vad))}


def _encoder_frames(frames: np.ndarray, size: int, letterbox: bool = False) -> np.ndarray:
    """Frames decoded for faces (any size), scaled to the video encoder's size x size (bilinear, as ffmpeg),
    stretched or (`letterbox`) fitted inside with black bars."""
    import torch
    import torch.nn.functional as F

    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float()
    h, w = x.shape[2:]
    inner = (max(1, round(h * size / max(h, w))), max(1, round(w * size / max(h, w)))) if letterbox else (size, size)
    x = F.interpolate(x, size=inner, mode="bilinear", align_corners=False)
    if letterbox:
        top, left = (size - inner[0]) // 2, (size - inner[1]) // 2
        x = F.pad(x, (left, size - inner[1] - left, top, size - inner[0] - top))
    return x.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()


def decode_segment(prep: PreparedJob, model: EmotionModel, vad: str, segment: list[Utterance],
                   emit: Callable[[Items], None], audio_pool: ThreadPoolExecutor, threads: int | None = None,
                   stop: threading.Event | _AnyEvent | None = None, faces: bool = False,
                   audio: bool = False) -> None:
    """Decode one segment's media (only the modalities the model uses, frames for faces with `faces`, the audio
    for the voice and speaker signals with `audio`) and emit its chunks of (utterance, input) pairs in time order,
    each as soon as its frames have arrived."""
    cfg, info = model.config, prep.info
    want_audio = (cfg.audio is not None or audio) and info.has_audio
    want_video = cfg.video is not None and info.has_video
    want_faces = faces and info.has_video
    position = {id(u): k for k, u in enumerate(segment)}
    audio_future = audio_pool.submit(segment_audio, prep, segment, vad) if want_audio else None
    n = cfg.video.frames if cfg.video is not None else FACE_FRAMES

    def items(chunk: list[Utterance], frames: np.ndarray | None, found: np.ndarray | None) -> Items:
        audio = audio_future.result() if audio_future is not None else {}
        readings = None
        if want_faces and frames is not None and found.any():
            from ..signals.faces import read_faces

            readings = read_faces(frames.reshape(-1, *frames.shape[2:]), n, model.device, found.reshape(-1))
            if want_video:
                frames = _encoder_frames(frames.reshape(-1, *frames.shape[2:]), cfg.video.image_size,
                                         cfg.video.letterbox).reshape(
                    len(chunk), n, cfg.video.image_size, cfg.video.image_size, 3)
        out = []
        for k, u in enumerate(chunk):
            item = UtteranceInput(text=u.text, context=u.context)
            if position[id(u)] in audio:
                item.audio, item.voiced = audio[position[id(u)]]
            elif want_audio:
                item.missing["audio"] = "no audio decoded for it (past the end of the decodable audio)"
            got = int(found[k].sum()) if found is not None else 0
            if want_video or want_faces:
                if got == 0:
                    item.missing["video"] = "no frame decoded for it (past the end of the decodable video)"
                elif got < n:
                    item.missing["video"] = (f"{n - got} of its {n} frames not decoded (the nearest decoded frame "
                                             f"of the utterance stands in)")
            if frames is not None and want_video and got:
                item.frames = frames[k]
            if want_faces:
                item.face = readings[k] if readings is not None and got else None
            out.append((u, item))
        return out

    chunks = chunks_of(segment)
    if not want_video and not want_faces:
        for chunk in chunks:
            emit(items(chunk, None, None))
        return
    tolerance_s = frame_tolerance_s(info.fps)
    targets = [np.array([t for u in chunk for t in frame_times(u.start_s, u.end_s, n)]) for chunk in chunks]
    start_s, end_s = _span(segment)
    if want_faces:  # one pass at the faces' size; the video encoder's frames are scaled from these
        from ..signals.faces import face_frame_size

        size = face_frame_size(info.width, info.height)
    else:
        size = cfg.video.image_size
    letterbox = bool(cfg.video is not None and cfg.video.letterbox and not want_faces)
    stream = stream_frames(prep.job.video, np.concatenate(targets), size, info.fps, start_s,
                           end_s - start_s + 1.0 / info.fps, threads, stop, letterbox)
    have: list[tuple[float, np.ndarray]] = []
    done_chunks = 0
    ready: list[tuple] = []  # chunks with their frames (and which were found), waiting for the audio

    def hand_on(wait_for_audio: bool) -> None:
        """Emit the chunks whose frames are in, once the segment's audio is: reading frames never waits for it."""
        if ready and (wait_for_audio or audio_future is None or audio_future.done()):
            for chunk, frames, found in ready:
                emit(items(chunk, frames, found))
            ready.clear()

    def flush(upto_s: float | None) -> None:
        """Take every pending chunk whose last target lies before `upto_s` (None: all of them)."""
        nonlocal done_chunks, have
        while done_chunks < len(chunks) and (upto_s is None or upto_s > targets[done_chunks].max() + tolerance_s):
            chunk = chunks[done_chunks]
            lo, hi = _span(chunk)
            inside = [(t, f) for t, f in have if lo - tolerance_s <= t <= hi + tolerance_s]
            frames, found = frames_near(targets[done_chunks], inside, tolerance_s, n)
            ready.append((chunk, frames, found))
            done_chunks += 1
            if done_chunks < len(chunks):  # frames before the next chunk are no longer needed
                keep_from = chunks[done_chunks][0].start_s - tolerance_s
                have = [(t, f) for t, f in have if t >= keep_from]
        hand_on(False)

    for t, frame in stream:
        flush(t)
        have.append((t, frame))
        prep.decoded.saw(video_s=t)
    if stop is None or not stop.is_set():
        flush(None)
        hand_on(True)


class _AnyEvent:
    """Set when any of its events is set: a segment stops for the caller's stop or for a failed sibling."""

    def __init__(self, *events: threading.Event | None) -> None:
        self.events = [e for e in events if e is not None]

    def is_set(self) -> bool:
        return any(e.is_set() for e in self.events)


class _Video:
    """One video's segments in flight: how many are left, whether more may come, the first error, and the flag
    that stops the rest."""

    def __init__(self, prep: PreparedJob, emit: Callable[[Items], None], done: Callable[[Exception | None], None],
                 more_to_come: bool, *stops: threading.Event | None) -> None:
        self.prep, self.emit, self.done, self.more_to_come = prep, emit, done, more_to_come
        self.left, self.closed = 0, False
        self.error: Exception | None = None
        self.abort = threading.Event()
        self.halt = _AnyEvent(self.abort, *stops)


class Decoder:
    """Decodes the segments of one or many videos on one set of decoder threads.

    Segments queue in order, so the next video's segments start as soon as a decoder is free: no core waits at
    the end of a video for its slowest stretch, or between videos while the next one is probed. A video's first
    error stops its other segments and is passed to its `done` callback; the other videos go on. A video whose
    utterances arrive over time (a transcript being made) is `open`ed, given them with `add`, then `close`d."""

    def __init__(self, model: EmotionModel, vad: str, workers: int = 1, stop: threading.Event | None = None,
                 faces: bool = False, audio: bool = False) -> None:
        """`faces`: frames for the face signal too; `audio`: every utterance's audio too (the voice and speaker
        signals), whatever the model reads."""
        self.model, self.vad, self.workers, self.stop, self.faces = model, vad, max(1, workers), stop, faces
        self.audio = audio
        self._closing = threading.Event()
        self._cond = threading.Condition()
        self._queued = self._running = self._videos = 0  # segments waiting, segments decoding, videos unfinished
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="emocli-decode")
        self._audio = ThreadPoolExecutor(self.workers, thread_name_prefix="emocli-audio")

    def __enter__(self) -> Decoder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _stopped(self) -> bool:
        return self._closing.is_set() or (self.stop is not None and self.stop.is_set())

    def needs_media(self, prep: PreparedJob) -> bool:
        """Whether the model reads this video's audio or frames (a text model decodes nothing)."""
        cfg, info = self.model.config, prep.info
        return ((cfg.audio is not None and info.has_audio) or (cfg.video is not None and info.has_video)
                or (self.faces and info.has_video) or (self.audio and info.has_audio))

    def submit(self, prep: PreparedJob, emit: Callable[[Items], None], done: Callable[[Exception | None], None],
               more_to_come: bool = False) -> None:
        """Queue a prepared video's segments. `emit` gets its chunks (from decoder threads, chunks of different
        segments interleaved); `done` gets None or the video's first error once all its segments have ended
        (not called if the run was stopped). `more_to_come`: other videos will follow and fill the cores."""
        video = self.open(prep, emit, done, more_to_come)
        self.add(video, prep.utterances)
        self.end(video)

    def open(self, prep: PreparedJob, emit: Callable[[Items], None], done: Callable[[Exception | None], None],
             more_to_come: bool = False) -> _Video:
        """Start a video whose utterances come later, through `add`; `end` says that no more come."""
        with self._cond:
            self._videos += 1
        return _Video(prep, emit, done, more_to_come, self.stop, self._closing)

    def add(self, video: _Video, utterances: list[Utterance]) -> None:
        """Queue these (time-ordered) utterances of an open video, as segments of their own."""
        if not utterances:
            return
        segments = plan_segments(utterances, self.workers) if self.needs_media(video.prep) else [utterances]
        with self._cond:
            busy = self._queued + self._running
            self._queued += len(segments)
            video.left += len(segments)
        at_once = self.workers if video.more_to_come else min(self.workers, len(segments) + busy)
        threads = decoder_threads(at_once)
        for segment in segments:
            self._pool.submit(self._decode, video, segment, threads)

    def end(self, video: _Video, error: Exception | None = None) -> None:
        """No more utterances come for `video` (`error`: why they stopped coming); its `done` follows once its
        segments have ended."""
        with self._cond:
            video.closed = True
            if error is not None and video.error is None:
                video.error = error
                video.abort.set()
            last = video.left == 0
        if last:
            self._finished(video)

    def _finished(self, video: _Video) -> None:
        try:
            if not self._stopped():
                video.done(video.error)
        finally:
            with self._cond:
                self._videos -= 1
                self._cond.notify_all()

    def _decode(self, video: _Video, segment: list[Utterance], threads: int) -> None:
        with self._cond:
            self._queued -= 1
            self._running += 1
            self._cond.notify_all()
        error = None
        try:
            if not video.halt.is_set():
                decode_segment(video.prep, self.model, self.vad, segment, video.emit, self._audio, threads,
                               video.halt, self.faces, self.audio)
        except Exception as exc:  # noqa: BLE001 - handed to the video's done callback
            error = exc
        with self._cond:
            self._running -= 1
            if error is not None and video.error is None:
                video.error = error
                video.abort.set()
            video.left -= 1
            last = video.left == 0 and video.closed
        if last:
            self._finished(video)

    def wait_for_room(self) -> None:
        """Block while a full round of segments (one per decoder) is already waiting: the caller then prepares
        its next video while the decoders work, and only a bounded number of videos is in flight."""
        self._wait_while(lambda: self._queued >= self.workers)

    def join(self) -> None:
        """Block until every submitted video is done (or the run stopped)."""
        self._wait_while(lambda: self._videos > 0)

    def _wait_while(self, busy: Callable[[], bool]) -> None:
        with self._cond:  # polled too, as a stop is an Event of its own that does not notify this condition
            while busy() and not self._stopped():
                self._cond.wait(0.1)

    def close(self) -> None:
        """Stop what is still running and end the decoder threads."""
        self._closing.set()
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._audio.shutdown(wait=True, cancel_futures=True)


def decode_job(prep: PreparedJob, model: EmotionModel, vad: str, emit: Callable[[Items], None],
               workers: int = 1, stop: threading.Event | None = None, audio: bool = False) -> None:
    """Decode every utterance of one prepared video and emit its chunks: segments decode `workers` at once, and
    chunks of different segments interleave. The first error stops the other segments and is raised. `audio`:
    each utterance's audio too, whatever the model reads (the voice signals)."""
    outcome: list[Exception | None] = []
    with Decoder(model, vad, workers, stop, audio=audio) as decoder:
        decoder.submit(prep, emit, outcome.append)
        decoder.join()
    if outcome and outcome[0] is not None:
        raise outcome[0]


def decode_inputs(prep: PreparedJob, model: EmotionModel, vad: str = "silero", workers: int = 1,
                  audio: bool = False) -> Items:
    """Every utterance's (utterance, input) pair, in time order (for explain and the benchmarks)."""
    out: Items = []
    lock = threading.Lock()

    def emit(items: Items) -> None:
        with lock:
            out.extend(items)

    decode_job(prep, model, vad, emit, workers, audio=audio)
    order = {id(u): k for k, u in enumerate(prep.utterances)}
    return sorted(out, key=lambda pair: order[id(pair[0])])
