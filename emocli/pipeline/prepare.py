"""The producer stage of annotate: each job the reader hands on becomes utterances (its cues, or each speaker's turn
of them), queued on one shared set of decoders (decode.py), so the next video is read and starts decoding while
the current one finishes. A transcript streams through: its utterances are handed on as Whisper finishes them.
What it sends the consumer is a typed message per event (below)."""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass
from typing import Callable, Union

from ..errors import EmocliError
from ..model.network import EmotionModel
from ..text.asr import asr_device
from ..text.language import language_identifier, language_report
from ..text.segments import Utterance, UtteranceStream, make_utterances
from ..text.subtitles import SubtitleReport, validate_cues
from ..text.tracks import choose_audio_track
from .decode import Decoder, Items, decode_workers
from .jobs import AnnotateOptions, Job, PreparedJob
from .reading import Failed, Read, Reader, Skipped, Source, read_source


@dataclass(frozen=True)
class Started:
    """A job's utterances are known (or, `prepared.streamed`, start to arrive from a transcription)."""

    job: Job
    prepared: PreparedJob


@dataclass(frozen=True)
class MoreUtterances:
    """A streamed job has `count` more utterances (a transcription went on)."""

    job: Job
    count: int


@dataclass(frozen=True)
class Decoded:
    """Some of a job's utterances, with the media each needs: ready for the model."""

    job: Job
    items: Items


@dataclass(frozen=True)
class Ended:
    """Every utterance of the job has been handed on."""

    job: Job


ProducerMessage = Union[Skipped, Failed, Started, MoreUtterances, Decoded, Ended]


#: A transcript streams to the decoders in parts of at least this much media time when the model reads the media
#: (each part is a pass of ffmpeg over its frames); a text model takes each batch of utterances as it comes.
STREAM_PART_S = 60.0


def prepare_job(job: Job, model: EmotionModel, options: AnnotateOptions | None = None) -> PreparedJob:
    """Probe the media and turn its subtitles (or its transcript, made now if needed) into utterances; raises
    EmocliError for unusable inputs."""
    options = options or AnnotateOptions()
    return prepare_source(read_source(job, options, asr_device(options.device)).complete(), model, options)


def prepare_source(src: Source, model: EmotionModel, options: AnnotateOptions) -> PreparedJob:
    """A read job (its whole text known) -> its utterances and the report of how its subtitles were read."""
    job, subs, kind, label, heard = src.job, src.subs, src.kind, src.label, src.heard
    valid, report = validate_cues(subs.cues, src.info.duration_s, subs.unreadable, subs.skipped)
    report.noted.update(subs.notes)
    report.file, report.source, report.format, report.encoding = src.where, kind, subs.format, subs.encoding
    if kind == "embedded track":
        report.track = label
    elif kind == "asr":
        report.asr_model = label
    speech = [c for c in valid if c.speech_turns()]
    others = [c for c in valid if not c.speech_turns()]
    if not speech:
        if kind == "asr":  # silence or music: nothing to label is an answer, not an error
            report.noted["no speech found: nothing to label"] += 1
            report.audio_track = heard.describe() if heard else None
            return PreparedJob(job, src.info, [], report, others, src.audio, src.track)
        why = report.warning() or "the file holds no cues"
        where = f"{src.where} {label}" if kind == "embedded track" else src.where
        raise EmocliError(f"{where}: no usable cues ({why})")
    report.language, report.language_warning = language_report([t.text for c in speech for t in c.speech_turns()])
    if kind != "asr" and len(src.audio_tracks) > 1:  # the audio in the subtitles' language, for the audio branch
        heard = choose_audio_track(src.audio_tracks, options.audio_track,
                                   (report.language or {}).get("code", "en"), job.video)
    report.audio_track = heard.describe() if heard else None
    text = model.config.text
    utterances = make_utterances(speech, text.context, text.context_after) if text else make_utterances(speech)
    return PreparedJob(job, src.info, utterances, report, others, src.audio, heard.subtitle_index if heard else 0)


def _stream_source(src: Source, model: EmotionModel, options: AnnotateOptions, decoder: Decoder,
                   put: Callable[[ProducerMessage], None], emit: Callable[[Items], None],
                   done: Callable[[Exception | None], None], more_to_come: bool) -> None:
    """A job being transcribed: its utterances go to the decoders as Whisper finishes them (in parts of
    STREAM_PART_S when the media is decoded), each once the turn after it is known (the model's following
    context); the report is made from the whole transcript at the end."""
    live, job = src.live, src.job
    text = model.config.text
    stream = UtteranceStream(text.context, text.context_after) if text else UtteranceStream()
    prep = PreparedJob(job, src.info, [], SubtitleReport(source=src.kind), [], None, src.track, streamed=True)
    put(Started(job, prep))
    video = decoder.open(prep, emit, done, more_to_come)
    whole = not decoder.needs_media(prep)
    part: list[Utterance] = []

    def hand_on(utterances: list[Utterance], last: bool = False) -> None:
        nonlocal part
        if utterances:
            prep.audio = live.audio
            prep.utterances.extend(utterances)
            put(MoreUtterances(job, len(utterances)))
            part += utterances
        if part and (last or whole or part[-1].end_s - part[0].start_s >= STREAM_PART_S):
            decoder.add(video, part)
            part = []

    error = None
    try:
        warm = threading.Thread(target=language_identifier, daemon=True)  # loaded now, not after the last batch
        warm.start()
        for cues in live.batches():
            valid, _ = validate_cues(cues, src.info.duration_s)
            hand_on(stream.add([c for c in valid if c.speech_turns()]))
        hand_on(stream.close(), last=True)
        prep.report = prepare_source(src.transcribed_so_far(), model, options).report
    except Exception as exc:  # noqa: BLE001 - the job's error, reported by the consumer
        error = exc
    decoder.end(video, error)


def produce(reader: Reader, model: EmotionModel, options: AnnotateOptions, out: queue.Queue,
            stop: threading.Event) -> None:
    """Turn each job the reader hands on into utterances and queue them on one shared set of decoders, so the
    next video is read and starts decoding while the current one finishes; messages go to `out` for the
    consumer (`ProducerMessage`s, then None)."""

    def put(message: ProducerMessage | None) -> None:
        """Called from this thread and the decoder threads; gives up once the run stopped (nobody reads)."""
        while not stop.is_set():
            try:
                out.put(message, timeout=0.1)
                return
            except queue.Full:
                pass

    def done(job: Job, error: Exception | None) -> None:
        if error is None:
            put(Ended(job))
        elif isinstance(error, EmocliError):
            put(Failed(job, error))
        else:  # one broken video must never stop a folder run; the message says it all
            put(Failed(job, EmocliError(f"{job.video}: unexpected {type(error).__name__}: {error}")))

    try:
        with Decoder(model, options.vad, decode_workers(options.decode_workers), stop, options.face,
                     options.voice or options.diarize) as decoder:
            for message in reader:
                if stop.is_set():
                    break
                if not isinstance(message, Read):  # skipped, or failed while reading
                    put(message)
                    continue
                job, src = message.job, message.source
                decoder.wait_for_room()
                more = job is not reader.jobs[-1]
                emit = (lambda items, job=job: put(Decoded(job, items)))
                finished = (lambda error, job=job: done(job, error))
                if src.live is not None:
                    _stream_source(src, model, options, decoder, put, emit, finished, more)
                    continue
                try:
                    prep = prepare_source(src, model, options)
                except Exception as exc:
                    done(job, exc)
                    continue
                put(Started(job, prep))
                if not prep.utterances:  # a silent recording: its (empty) outputs need no decoding
                    put(Ended(job))
                    continue
                decoder.submit(prep, emit, finished, more_to_come=more)
            decoder.join()
    finally:  # the consumer always learns that nothing more comes, even after a bug here
        put(None)
