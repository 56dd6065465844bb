"""annotate: videos + subtitles -> per-utterance emotions, as a pipeline of three threads.

The reader (reading.py) probes each video and finds its text, transcribing its speech where it has no subtitles;
the producer turns the text into utterances and decodes their media (decode.py: segments of the video at once,
one ffmpeg pass each for frames and for audio, chunks handed on as they arrive); the main thread runs the model on
batches formed across utterances and videos, sorted by length. A transcript streams through: its utterances are
labelled while the rest of the speech is still being transcribed. A video is written as soon as its last
utterance is labelled; a failing video is reported and the others go on.
"""

from __future__ import annotations

import queue
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from tqdm import tqdm

from . import LABELS
from .checkpoint import NO_MODEL_MESSAGE, default_model_dir, describe, load_checkpoint, resolve_model
from .dialogue import read_in_dialogue
from .errors import EXIT_INPUT_FAILED, EXIT_OK, EmocliError, UsageError, os_error_text
from .int8 import quantize_text_encoders, require_cpu, use_pytorch
from .decode import Decoder, decode_workers
from .jobs import AnnotateOptions, Job, find_jobs  # noqa: F401 - find_jobs: annotate's API, re-exported
from .media import MediaInfo
from .model import EmotionModel, UtteranceInput
from .language import language_identifier
from .reading import Reader, Source, read_source
from .segments import Utterance, UtteranceStream, make_utterances
from .subtitles import Cue, SubtitleReport, validate_cues
from .writers import Prediction, VideoResult, write_outputs

SORT_WINDOW = 4  # batches gathered before sorting by length


@dataclass
class Outcome:
    """What happened to one job: status is 'done', 'skipped' (already annotated) or 'failed'."""

    video: Path
    status: str
    message: str = ""
    outputs: list[Path] = field(default_factory=list)
    result: VideoResult | None = None
    report: SubtitleReport | None = None
    exit_code: int = EXIT_INPUT_FAILED  # of a failure: EXIT_USAGE when an option did not fit this file


@dataclass
class RunSummary:
    outcomes: list[Outcome]

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == "failed"]

    @property
    def exit_code(self) -> int:
        return EXIT_INPUT_FAILED if self.failed else EXIT_OK

    def line(self) -> str:
        counts = {s: sum(o.status == s for o in self.outcomes) for s in ("done", "skipped", "failed")}
        return (f"{len(self.outcomes)} video(s): {counts['done']} annotated, {counts['skipped']} already done "
                f"(skipped), {counts['failed']} failed")


# --- set-up ---------------------------------------------------------------------------------------------------


def resolve_device(spec: str = "auto") -> torch.device:
    """'auto' -> CUDA when available, else CPU; 'cuda' without a GPU is a usage error."""
    spec = (spec or "auto").lower()
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError("--device cuda was asked for, but no CUDA GPU is visible to PyTorch")
    if spec != "cpu" and not spec.startswith("cuda"):
        raise UsageError(f"--device must be auto, cpu or cuda, not {spec!r}")
    return torch.device(spec)


PRECISIONS = ("auto", "fp32", "bf16", "fp16", "int8")


def cpu_has_native_bf16() -> bool:
    """Whether this CPU runs bf16 matrix products natively (AVX512-BF16 or AMX), so bf16 is faster, not slower."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def amp_dtype(device: torch.device, precision: str = "auto") -> torch.dtype | None:
    """The autocast dtype for model calls (None: full float32). auto: bf16 on CUDA (fp16 where bf16 is
    unsupported) and on CPUs with native bf16; float32 elsewhere. int8 (CPU only) is for the text encoder
    (int8.py); the rest of the model then runs as with auto."""
    if precision not in PRECISIONS:
        raise UsageError(f"--precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    if precision == "int8":
        require_cpu(device)
    if precision == "fp32":
        return None
    if precision in ("bf16", "fp16"):
        return torch.bfloat16 if precision == "bf16" else torch.float16
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if device.type == "cpu" and cpu_has_native_bf16() else None


def precision_name(dtype: torch.dtype | None, precision: str = "auto", modalities: list[str] | None = None) -> str:
    """How outputs and benchmarks name the arithmetic: `amp_dtype`'s choice, and int8 for the text encoder."""
    name = str(dtype).replace("torch.", "") if dtype is not None else "float32"
    if precision == "int8":
        return "int8" if modalities == ["text"] else f"int8 text encoder, {name} elsewhere"
    return name


def load_model(model_dir: str | Path | None, device: torch.device | str = "cpu") -> tuple[EmotionModel, Path]:
    """Load --model (a directory or a Hugging Face repo id), or the installed default; a clear error if none."""
    directory = resolve_model(model_dir) if model_dir else default_model_dir()
    if directory is None:
        raise UsageError(NO_MODEL_MESSAGE)
    return load_checkpoint(directory, device), directory


# --- the producer: subtitles -> utterances, decoded in chunks ---------------------------------------------------

#: A transcript streams to the decoders in parts of at least this much media time when the model reads the media
#: (each part is a pass of ffmpeg over its frames); a text model takes each batch of utterances as it comes.
STREAM_PART_S = 60.0


@dataclass
class _Prepared:
    job: Job
    info: MediaInfo
    utterances: list[Utterance]
    report: SubtitleReport
    non_speech: list[Cue] = field(default_factory=list)  # cues written unlabelled (sound descriptions, credits)
    audio: np.ndarray | None = None  # the whole audio, when transcription decoded it (the audio branch reuses it)
    audio_track: int = 0  # the audio stream heard (the N of 0:a:N), by transcription and the audio branch
    streamed: bool = False  # utterances still arrive from a transcription (the report is final at the end)


def prepare_job(job: Job, model: EmotionModel, options: AnnotateOptions | None = None) -> _Prepared:
    """Probe the media and turn its subtitles (or its transcript, made now if needed) into utterances; raises
    EmocliError for unusable inputs."""
    from .asr import asr_device

    options = options or AnnotateOptions()
    return prepare_source(read_source(job, options, asr_device(options.device)).complete(), model, options)


def prepare_source(src: Source, model: EmotionModel, options: AnnotateOptions) -> _Prepared:
    """A read job (its whole text known) -> its utterances and the report of how its subtitles were read."""
    from .language import language_report
    from .tracks import choose_audio_track

    job, subs, kind, label, heard = src.job, src.subs, src.kind, src.label, src.heard
    valid, report = validate_cues(subs.cues, src.info.duration_s, subs.unreadable)
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
            return _Prepared(job, src.info, [], report, others, src.audio, src.track)
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
    return _Prepared(job, src.info, utterances, report, others, src.audio, heard.subtitle_index if heard else 0)


def _stream_source(src: Source, model: EmotionModel, options: AnnotateOptions, decoder: Decoder,
                   put: Callable[[tuple], None], emit: Callable, done: Callable, more_to_come: bool) -> None:
    """A job being transcribed: its utterances go to the decoders as Whisper finishes them (in parts of
    STREAM_PART_S when the media is decoded), each once the turn after it is known (the model's following
    context); the report is made from the whole transcript at the end."""
    live, job = src.live, src.job
    text = model.config.text
    stream = UtteranceStream(text.context, text.context_after) if text else UtteranceStream()
    prep = _Prepared(job, src.info, [], SubtitleReport(source=src.kind), [], None, src.track, streamed=True)
    put(("start", job, prep))
    video = decoder.open(prep, emit, done, more_to_come)
    whole = not decoder.needs_media(prep)
    part: list[Utterance] = []

    def hand_on(utterances: list[Utterance], last: bool = False) -> None:
        nonlocal part
        if utterances:
            prep.audio = live.audio
            prep.utterances.extend(utterances)
            put(("more", job, len(utterances)))
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


def _produce(reader: Reader, model: EmotionModel, options: AnnotateOptions, out: queue.Queue,
             stop: threading.Event) -> None:
    """Turn each job the reader hands on into utterances and queue them on one shared set of decoders, so the
    next video is read and starts decoding while the current one finishes; messages go to `out` for the
    consumer."""

    def put(message: tuple | None) -> None:
        """Called from this thread and the decoder threads; gives up once the run stopped (nobody reads)."""
        while not stop.is_set():
            try:
                out.put(message, timeout=0.1)
                return
            except queue.Full:
                pass

    def done(job: Job, error: Exception | None) -> None:
        if error is None:
            put(("end", job, None))
        elif isinstance(error, EmocliError):
            put(("failed", job, error))
        else:  # one broken video must never stop a folder run; the message says it all
            put(("failed", job, EmocliError(f"{job.video}: unexpected {type(error).__name__}: {error}")))

    try:
        with Decoder(model, options.vad, decode_workers(options.decode_workers), stop, options.face) as decoder:
            for kind, job, src in reader:
                if stop.is_set():
                    break
                if kind != "source":  # skipped, or failed while reading
                    put((kind, job, src))
                    continue
                decoder.wait_for_room()
                more = job is not reader.jobs[-1]
                emit = (lambda items, job=job: put(("items", job, items)))
                finished = (lambda error, job=job: done(job, error))
                if src.live is not None:
                    _stream_source(src, model, options, decoder, put, emit, finished, more)
                    continue
                try:
                    prep = prepare_source(src, model, options)
                except Exception as exc:
                    done(job, exc)
                    continue
                put(("start", job, prep))
                if not prep.utterances:  # a silent recording: its (empty) outputs need no decoding
                    put(("end", job, None))
                    continue
                decoder.submit(prep, emit, finished, more_to_come=more)
            decoder.join()
    finally:  # the consumer always learns that nothing more comes, even after a bug here
        put(None)


# --- the consumer: batched model calls ------------------------------------------------------------------------


class BatchPredictor:
    """Runs the model on lists of inputs in batches; a CUDA out-of-memory error halves the batch and retries."""

    def __init__(self, model: EmotionModel, batch_size: int, precision: str = "auto",
                 log: Callable[[str], None] | None = None) -> None:
        self.model, self.batch_size = model, max(1, batch_size)
        self.amp = amp_dtype(model.device, precision)
        # the predictor sets the model's arithmetic: int8 swaps its text encoders for quantised graphs
        if precision == "int8":
            quantize_text_encoders(model, log)
        else:
            use_pytorch(model)
        self.precision = precision_name(self.amp, precision, model.config.modalities)

    def __call__(self, inputs: list[UtteranceInput]) -> tuple[np.ndarray, list[dict]]:
        probs, attn = [], []
        i = 0
        while i < len(inputs):
            batch = inputs[i:i + self.batch_size]
            try:
                p, a = self._run(batch)
            except torch.OutOfMemoryError:
                if self.batch_size == 1:
                    raise EmocliError("out of GPU memory even with batch size 1; use --device cpu") from None
                torch.cuda.empty_cache()
                self.batch_size = max(1, self.batch_size // 2)
                continue
            probs.append(p)
            attn.extend(a)
            i += len(batch)
        return np.concatenate(probs) if probs else np.zeros((0, len(LABELS))), attn

    def _run(self, batch: list[UtteranceInput]) -> tuple[np.ndarray, list[dict]]:
        probs, attention, present = self.model.predict(batch, self.amp)
        mods = self.model.config.modalities
        per_item = []
        for b in range(len(batch)):
            item = {m: {o: round(float(attention[m][b, j]), 4) for j, o in enumerate(mods) if o != m}
                    for m in mods if m in attention}
            item["present"] = {m: bool(present[b, j]) for j, m in enumerate(mods)}
            if "frames" in attention:
                item["frames"] = [round(float(x), 4) for x in attention["frames"][b]]
            per_item.append(item)
        return probs, per_item


def _length_key(pair: tuple) -> int:
    item: UtteranceInput = pair[2]
    return (len(item.audio) if item.audio is not None else 0) + len(item.text)


def annotate(jobs: list[Job], model: EmotionModel, options: AnnotateOptions,
             model_info: dict | None = None, reader: Reader | None = None) -> RunSummary:
    """Annotate every job; failures are reported per video. Returns what happened to each. `reader`: the jobs'
    reader, started already (the CLI starts it before the model loads); by default one is started here."""
    from .asr import asr_device

    predictor = BatchPredictor(model, options.batch_size, options.precision,
                               options.log if options.progress else None)  # --quiet: no notes, only errors
    model_info = {**(model_info or describe(model.config)), "precision": predictor.precision}
    reader = reader or Reader(jobs, options, asr_device(options.device)).start()
    messages: queue.Queue = queue.Queue(maxsize=3)  # bounded prefetch: memory stays bounded
    stop = threading.Event()
    producer = threading.Thread(target=_produce, args=(reader, model, options, messages, stop), daemon=True)
    states: dict[Path, dict] = {}
    outcomes: dict[Path, Outcome] = {}
    pending: list[tuple] = []  # (job video, utterance, input)
    # the bar appears with the first video that starts, so an early error stays a single line
    bar = tqdm(total=0, unit="utt", desc="annotating", disable=True)

    def warn(job: Job, report: SubtitleReport) -> None:
        warning = report.warning()
        if warning:
            where = job.subs.name if job.subs is not None else " ".join(filter(None, [job.video.name, report.track]))
            options.log(f"emocli: warning: {where}: {warning}")

    def finish(video: Path) -> None:
        st = states[video]
        if not st["ended"] or len(st["preds"]) < len(st["prep"].utterances):
            return
        prep = st.pop("prep")
        labelled = list(st.pop("preds").values())
        rows = labelled + [Prediction(c.index, c.start_s, c.end_s if c.shown_end_s is None else c.shown_end_s,
                                      c.text, c.speaker, None, position=c.position, non_speech=c.non_speech,
                                      source=prep.report.source)
                           for c in prep.non_speech]
        cue_start = {(p.position, p.index): p.start_s for p in rows if p.turn == 1}
        order = sorted(rows, key=lambda p: (cue_start.get((p.position, p.index), p.start_s), p.position, p.turn))
        info = {**model_info, "asr_model": prep.report.asr_model} if prep.report.asr_model else model_info
        if model.config.dialogue:
            status = read_in_dialogue(order, model.config.dialogue)
            info = {**info, "dialogue_stage": status}
            if status.startswith("not applied") and options.progress:
                options.log(f"emocli: note: {video.name}: the model's dialogue stage was {status}")
        if options.face:
            from .faces import FACE_MODEL

            info = {**info, "face_model": FACE_MODEL}
        result = VideoResult(prep.job.video, prep.info.duration_s, info, order,
                             prep.report.as_json(len(labelled)), prep.job.stem, options.face)
        try:
            paths = write_outputs(result, options.formats, prep.job.output_dir, options.color)
            if options.plot:
                from .report import plot_path, plot_result

                paths.append(plot_result(result, plot_path(video, prep.job.output_dir, prep.job.stem)))
        except OSError as exc:
            message = f"{video}: cannot write outputs ({os_error_text(exc)})"
            outcomes[video] = Outcome(video, "failed", message)
            options.log(f"emocli: error: {message}")
            return
        outcomes[video] = Outcome(video, "done", "", paths, result, prep.report)
        bar.set_postfix_str(f"videos {len(outcomes)}/{len(jobs)}")

    def run(flush: bool) -> None:
        nonlocal pending
        if not pending:
            return
        window = predictor.batch_size * SORT_WINDOW
        if not flush and len(pending) < window:
            return
        # the oldest items go (whole batches of them), sorted by length to limit padding; the newest few wait.
        # Choosing the leftovers by length instead would hold back each video's longest cues until the run's end,
        # and with them every video's outputs.
        cut = len(pending) if flush else len(pending) - len(pending) % predictor.batch_size
        todo, pending = sorted(pending[:cut], key=_length_key), pending[cut:]
        probs, attention = predictor([t[2] for t in todo])
        for (video, utt, item), p, a in zip(todo, probs, attention):
            st = states.get(video)
            if st is None or "preds" not in st:
                continue  # the video failed meanwhile
            used = [m for m, on in a["present"].items() if on]
            # outputs keep the file's timing
            st["preds"][id(utt)] = Prediction(utt.index, utt.out_start_s, utt.out_end_s, utt.text, utt.speaker, p,
                                              used, a if options.attention else None, utt.position, utt.turn,
                                              utt.turns, None, utt.removed, st["prep"].report.source, utt.asr,
                                              item.face)
        bar.update(len(todo))
        for video in list(states):
            if video not in outcomes and "prep" in states[video]:
                finish(video)

    producer.start()
    try:
        while True:
            msg = messages.get()
            if msg is None:
                break
            kind, job, payload = msg
            video = job.video
            if kind == "skipped":
                outcomes[video] = Outcome(video, "skipped", "", job.outputs(options.formats, options.plot))
            elif kind == "failed":  # payload: the EmocliError
                states.pop(video, None)
                pending = [t for t in pending if t[0] != video]
                outcomes[video] = Outcome(video, "failed", payload.message, exit_code=payload.exit_code)
                options.log(f"emocli: error: {payload.message}")
            elif kind == "start":
                states[video] = {"prep": payload, "preds": {}, "ended": False}
                if bar.disable and options.progress:
                    bar = tqdm(total=bar.total, unit="utt", desc="annotating", file=sys.stderr, dynamic_ncols=True)
                bar.total += 0 if payload.streamed else len(payload.utterances)  # streamed: counted as they come
                bar.refresh()
                if not payload.streamed:
                    warn(job, payload.report)
            elif kind == "more":
                bar.total += payload
                bar.refresh()
            elif kind == "items":
                pending.extend((video, u, item) for u, item in payload)
                run(flush=False)
            elif kind == "end":
                states[video]["ended"] = True
                if states[video]["prep"].streamed:  # its report is complete now
                    warn(job, states[video]["prep"].report)
                pending.sort(key=lambda t: t[0] != video)  # its last items go with the next batches
                finish(video)
        run(flush=True)
    finally:
        stop.set()
        reader.close()
        bar.close()
        # wait for the decoders to wind down (ffmpeg killed, running voice detection finished): threads still
        # inside ONNX Runtime or PyTorch while the interpreter exits abort it (SIGABRT) after a Ctrl-C
        producer.join(timeout=60)
    return RunSummary([outcomes.get(j.video) or Outcome(j.video, "failed", f"{j.video}: not processed")
                       for j in jobs])


def annotate_video(video: str | Path, subs: str | Path | None = None, model: EmotionModel | None = None,
                   options: AnnotateOptions | None = None) -> VideoResult:
    """Annotate one video from Python and return its result (also written to options.formats, if any)."""
    options = options or AnnotateOptions(progress=False)
    if model is None:
        model, _ = load_model(None, resolve_device(options.device))
    jobs = find_jobs(video, subs, options.output_dir)
    outcome = annotate(jobs, model, options).outcomes[0]
    if outcome.status == "failed":
        raise EmocliError(outcome.message)
    if outcome.result is None:
        raise EmocliError(f"{video}: already annotated (use overwrite=True to redo it)")
    return outcome.result
