"""annotate: videos + subtitles -> per-utterance emotions, as a pipeline.

A background thread probes each video, reads its subtitles and decodes its media (decode.py: segments of the video
at once, one ffmpeg pass each for frames and for audio, chunks handed on as they arrive) while the main thread runs
the model on batches formed across utterances and videos, sorted by length. A video is written as soon as its last
utterance is labelled; a failing video is reported and the others go on.
"""

from __future__ import annotations

import queue
import re
import sys
import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from tqdm import tqdm

from . import LABELS
from .checkpoint import NO_MODEL_MESSAGE, default_model_dir, describe, load_checkpoint, resolve_model
from .errors import EXIT_INPUT_FAILED, EXIT_OK, EmocliError, UsageError, os_error_text
from .int8 import quantize_text_encoders, require_cpu, use_pytorch
from .decode import Decoder, decode_workers
from .media import MediaInfo, list_media, probe
from .model import EmotionModel, UtteranceInput
from .segments import Utterance, make_utterances
from .subtitles import Cue, SubtitleReport, find_subtitles, read_subtitles, validate_cues
from .textcodec import DecodedText
from .writers import (Prediction, VideoResult, WRITERS, atomic_write, check_output_dir, output_path,
                      remove_stale_temps, write_outputs)

SORT_WINDOW = 4  # batches gathered before sorting by length


@dataclass
class AnnotateOptions:
    """How to annotate: output formats and folder, device, batch size, resume, voice detection."""

    formats: list[str] = field(default_factory=lambda: ["csv"])
    output_dir: Path | None = None  # None: next to each video
    device: str = "auto"
    batch_size: int = 16
    overwrite: bool = False
    vad: str = "silero"
    attention: bool = False  # per-utterance attention weights in the JSON
    color: bool = False  # SRT cues wrapped in <font color> per emotion
    plot: bool = False  # a timeline PNG per video
    decode_workers: int | None = None  # segments decoded at once; None: one per CPU core (at most 16)
    precision: str = "auto"  # model arithmetic: auto, fp32, bf16, fp16 or int8 (see amp_dtype)
    encoding: str | None = None  # the subtitle files' text encoding; None: detected per file
    keep_sound_cues: bool = False  # label sound descriptions and credits too, instead of keeping them unlabelled
    subs_track: str | None = None  # embedded subtitle track to read (number or language); None: English, else first
    transcribe: str = "auto"  # speech recognition: auto (when there are no subtitles), always or never
    asr_model: str | None = None  # faster-whisper model name or folder; None: the bundled tiny.en
    language: str = "en"  # the language spoken, for speech recognition
    audio_track: str | None = None  # audio stream to hear (number or language); None: the subtitles' language
    progress: bool = True
    log: Callable[[str], None] = field(default=lambda msg: tqdm.write(msg, file=sys.stderr))


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


@dataclass
class Outcome:
    """What happened to one job: status is 'done', 'skipped' (already annotated) or 'failed'."""

    video: Path
    status: str
    message: str = ""
    outputs: list[Path] = field(default_factory=list)
    result: VideoResult | None = None
    report: SubtitleReport | None = None


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


def _names(paths: list[Path], at_most: int = 5) -> str:
    names = [p.name for p in paths[:at_most]]
    return ", ".join(names) + (f" and {len(paths) - at_most} more" if len(paths) > at_most else "")


def find_jobs(target: str | Path, subs: str | Path | None = None, output_dir: str | Path | None = None,
              log: Callable[[str], None] | None = None, siblings: bool = True) -> list[Job]:
    """A file -> one job; a folder -> one job per media file in it (sorted), each paired with its subtitles
    (`find_subtitles`: the sibling file, else, at preparation, a text track inside the video). Files in the
    folder that are neither media nor subtitles are named through `log`. `siblings=False` (an embedded track
    was asked for) skips the sibling files.

    Videos of one stem (`ep1.mkv` beside `ep1.mp4`) would write the same output files: theirs are named after the
    whole file name instead (`ep1.mkv.emotions.csv`, `ep1.mp4.emotions.csv`)."""
    target = Path(target)
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


# --- the producer: probe, read subtitles, decode chunks -------------------------------------------------------


@dataclass
class _Prepared:
    job: Job
    info: MediaInfo
    utterances: list[Utterance]
    report: SubtitleReport
    non_speech: list[Cue] = field(default_factory=list)  # cues written unlabelled (sound descriptions, credits)
    audio: np.ndarray | None = None  # the whole audio, when transcription decoded it (the audio branch reuses it)
    audio_track: int = 0  # the audio stream heard (the N of 0:a:N), by transcription and the audio branch


def transcript_path(job: Job) -> Path:
    return job.output_dir / f"{job.stem or job.video.stem}.transcript.srt"


def _transcribe_job(job: Job, info: MediaInfo, options: AnnotateOptions, why: str, track: int = 0):
    """Subtitles from speech recognition: `<stem>.transcript.srt` from an earlier run (unless --overwrite), else
    the whole audio decoded once, transcribed, and the transcript written before any labelling."""
    from .asr import transcribe, transcript_srt
    from .media import decode_audio
    from .subtitles import SubtitleFile

    if not info.has_audio:
        raise EmocliError(f"{job.video}: {why}, and no audio stream to transcribe")
    path = transcript_path(job)
    if path.is_file() and not options.overwrite:
        reused = read_subtitles(path, "utf-8")
        reused.notes["transcript reused from an earlier run"] += 1
        return reused, str(path), None, None
    audio = decode_audio(job.video, track=track)
    utterances, label = transcribe(audio, info.duration_s, options.asr_model, options.device, options.language)
    cues = [Cue(k, u.start_s, u.end_s, u.text, None, None, k, asr=(u.confidence, u.no_speech))
            for k, u in enumerate(utterances, start=1)]
    remove_stale_temps(path)
    atomic_write(path, transcript_srt(utterances))
    parsed = SubtitleFile(cues, 0, "asr", DecodedText("", "utf-8", True))
    parsed.notes[f"utterances transcribed by {label} (no subtitles: {why})"] = len(cues)
    return parsed, str(path), label, audio


def _read_job_subtitles(job: Job, info: MediaInfo, options: AnnotateOptions, track: int = 0):
    """The job's text, read once: its subtitle file (--subs or the sibling), else a text track inside the video,
    else (--transcribe auto) a transcript of its speech. Returns (SubtitleFile, where it came from, source,
    track or ASR model, decoded audio or None)."""
    if options.transcribe == "always":
        subs, where, label, audio = _transcribe_job(job, info, options, "--transcribe always", track)
        return subs, where, "asr", label, audio
    if job.subs is not None:
        subs = read_subtitles(job.subs, options.encoding, options.keep_sound_cues)
        return subs, str(job.subs), "subtitles", None, None
    from .tracks import TRACK_CONTAINERS, read_track

    why = "no subtitle file or text track"
    if job.video.suffix.lower() in TRACK_CONTAINERS or options.subs_track is not None:
        try:
            found = read_track(job.video, options.subs_track, options.keep_sound_cues)
        except UsageError:
            raise
        except EmocliError as exc:  # only image-based tracks: speech recognition can still give the text
            if options.transcribe != "auto":
                raise
            if "image-based" not in exc.message:
                raise
            named = re.search(r"\(track [^)]*\)", exc.message)
            found, why = None, "its subtitle tracks are image-based" + (f" {named.group(0)}" if named else "")
        if found is not None:
            return found[0], str(job.video), "embedded track", found[1], None
    if options.transcribe == "never":
        raise EmocliError(f"{job.video}: no subtitles found (expected {job.video.stem}.srt, .vtt, .ass or .ssa "
                          f"beside it, or a subtitle track inside it; pass --subs, or leave out --transcribe "
                          f"never to transcribe its speech)")
    subs, where, label, audio = _transcribe_job(job, info, options, why, track)
    return subs, where, "asr", label, audio


def prepare_job(job: Job, model: EmotionModel, options: AnnotateOptions | None = None) -> _Prepared:
    """Probe the media and turn its subtitles into utterances; raises EmocliError for unusable inputs."""
    from .language import language_report

    from .tracks import choose_audio_track, list_audio_tracks

    options = options or AnnotateOptions()
    info = probe(job.video)
    audio_tracks = list_audio_tracks(job.video) if info.has_audio else []
    heard = choose_audio_track(audio_tracks, options.audio_track, options.language, job.video)  # for transcription
    subs, source, kind, label, audio = _read_job_subtitles(job, info, options, heard.subtitle_index if heard else 0)
    valid, report = validate_cues(subs.cues, info.duration_s, subs.unreadable)
    report.noted.update(subs.notes)
    report.file, report.source, report.format, report.encoding = source, kind, subs.format, subs.encoding
    if kind == "embedded track":
        report.track = label
    elif kind == "asr":
        report.asr_model = label
    where = f"{source} {label}" if kind == "embedded track" else source
    if not any(c.speech_turns() for c in valid):
        if kind == "asr":  # silence or music: nothing to label is an answer, not an error
            report.noted["no speech found: nothing to label"] += 1
            report.audio_track = heard.describe() if heard else None
            return _Prepared(job, info, [], report, [c for c in valid if not c.speech_turns()], audio,
                             heard.subtitle_index if heard else 0)
        why = report.warning() or "the file holds no cues"
        raise EmocliError(f"{where}: no usable cues ({why})")
    report.language, report.language_warning = language_report([t.text for c in valid for t in c.speech_turns()])
    if kind != "asr" and len(audio_tracks) > 1:  # the audio in the subtitles' language, for the audio branch
        heard = choose_audio_track(audio_tracks, options.audio_track,
                                   (report.language or {}).get("code", "en"), job.video)
    report.audio_track = heard.describe() if heard else None
    text = model.config.text
    speech = [c for c in valid if c.speech_turns()]
    utterances = make_utterances(speech, text.context, text.context_after) if text else make_utterances(speech)
    return _Prepared(job, info, utterances, report, [c for c in valid if not c.speech_turns()], audio,
                     heard.subtitle_index if heard else 0)


def _produce(jobs: list[Job], model: EmotionModel, options: AnnotateOptions, out: queue.Queue,
             stop: threading.Event) -> None:
    """Prepare each video (probe, subtitles) and queue its segments on one shared set of decoders, so the next
    video is probed and starts decoding while the current one finishes; messages go to `out` for the consumer."""

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
            put(("failed", job, error.message))
        else:  # one broken video must never stop a folder run; the message says it all
            put(("failed", job, f"{job.video}: unexpected {type(error).__name__}: {error}"))

    try:
        with Decoder(model, options.vad, decode_workers(options.decode_workers), stop) as decoder:
            for k, job in enumerate(jobs):
                if stop.is_set():
                    break
                wanted = job.outputs(options.formats, options.plot)
                if wanted and not options.overwrite and all(p.is_file() for p in wanted):
                    for path in wanted:  # what a killed run may have left beside them
                        remove_stale_temps(path)
                    put(("skipped", job, None))
                    continue
                decoder.wait_for_room()
                try:
                    prep = prepare_job(job, model, options)
                except Exception as exc:
                    done(job, exc)
                    continue
                put(("start", job, prep))
                if not prep.utterances:  # a silent recording: its (empty) outputs need no decoding
                    put(("end", job, None))
                    continue
                decoder.submit(prep, lambda items, job=job: put(("items", job, items)),
                               lambda error, job=job: done(job, error), more_to_come=k < len(jobs) - 1)
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
             model_info: dict | None = None) -> RunSummary:
    """Annotate every job; failures are reported per video. Returns what happened to each."""
    predictor = BatchPredictor(model, options.batch_size, options.precision,
                               options.log if options.progress else None)  # --quiet: no notes, only errors
    model_info = {**(model_info or describe(model.config)), "precision": predictor.precision}
    messages: queue.Queue = queue.Queue(maxsize=3)  # bounded prefetch: memory stays bounded
    stop = threading.Event()
    producer = threading.Thread(target=_produce, args=(jobs, model, options, messages, stop), daemon=True)
    states: dict[Path, dict] = {}
    outcomes: dict[Path, Outcome] = {}
    pending: list[tuple] = []  # (job video, utterance, input)
    # the bar appears with the first video that starts, so an early error stays a single line
    bar = tqdm(total=0, unit="utt", desc="annotating", disable=True)

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
        result = VideoResult(prep.job.video, prep.info.duration_s, info, order,
                             prep.report.as_json(len(labelled)), prep.job.stem)
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
        for (video, utt, _), p, a in zip(todo, probs, attention):
            st = states.get(video)
            if st is None or "preds" not in st:
                continue  # the video failed meanwhile
            used = [m for m, on in a["present"].items() if on]
            # outputs keep the file's timing
            st["preds"][id(utt)] = Prediction(utt.index, utt.out_start_s, utt.out_end_s, utt.text, utt.speaker, p,
                                              used, a if options.attention else None, utt.position, utt.turn,
                                              utt.turns, None, utt.removed, st["prep"].report.source, utt.asr)
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
            elif kind == "failed":
                states.pop(video, None)
                pending = [t for t in pending if t[0] != video]
                outcomes[video] = Outcome(video, "failed", payload)
                options.log(f"emocli: error: {payload}")
            elif kind == "start":
                states[video] = {"prep": payload, "preds": {}, "ended": False}
                if bar.disable and options.progress:
                    bar = tqdm(total=bar.total, unit="utt", desc="annotating", file=sys.stderr, dynamic_ncols=True)
                bar.total += len(payload.utterances)
                bar.refresh()
                warning = payload.report.warning()
                if warning:
                    track = payload.report.track
                    where = job.subs.name if job.subs is not None else " ".join(filter(None, [job.video.name, track]))
                    options.log(f"emocli: warning: {where}: {warning}")
            elif kind == "items":
                pending.extend((video, u, item) for u, item in payload)
                run(flush=False)
            elif kind == "end":
                states[video]["ended"] = True
                pending.sort(key=lambda t: t[0] != video)  # its last items go with the next batches
                finish(video)
        run(flush=True)
    finally:
        stop.set()
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
