"""annotate: videos + subtitles -> per-utterance emotions, as a pipeline of three threads.

The reader (reading.py) probes each video and finds its text, transcribing its speech where it has no subtitles;
the producer (prepare.py) turns the text into utterances and decodes their media (decode.py: segments of the
video at once, one ffmpeg pass each for frames and for audio, chunks handed on as they arrive); the consumer here,
on the main thread, runs the model on batches formed across utterances and videos, sorted by length (predict.py).
A transcript streams through: its utterances are labelled while the rest of the speech is still being
transcribed. A video is written as soon as its last utterance is labelled; a failing video is reported and the
others go on. Threads pass typed messages (reading.ReaderMessage, prepare.ProducerMessage).
"""

from __future__ import annotations

import queue
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from tqdm import tqdm

from ..errors import EXIT_INPUT_FAILED, EXIT_OK, os_error_text
from ..model.checkpoint import Model, describe
from ..model.dialogue import read_in_dialogue
from ..model.network import UtteranceInput
from ..outputs.result import Prediction, VideoResult
from ..outputs.writers import write_outputs
from ..signals.voice import VOICE_MODEL
from ..text.asr import asr_device
from ..text.segments import Utterance
from ..text.subtitles import SubtitleReport
from .jobs import AnnotateOptions, Job, PreparedJob
from .predict import BatchPredictor, SignalReader
from .prepare import Decoded, Ended, Failed, MoreUtterances, Skipped, Started, produce
from .reading import Reader

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

    def video_lines(self, verbose: bool = False) -> list[str]:
        """What the command line prints after a run: each annotated video's summary (with every row if
        `verbose`) and where its outputs went, and the videos skipped as already annotated."""
        from ..outputs.report import row_line, summary_text

        lines = []
        for outcome in self.outcomes:
            if outcome.status == "done":
                if verbose:
                    lines += [row_line(p) for p in outcome.result.predictions]
                lines.append(summary_text(outcome.result, outcome.report))
                lines.append(f"  -> {', '.join(str(p) for p in outcome.outputs)}")
            elif outcome.status == "skipped":
                lines.append(f"{outcome.video.name}: already annotated, skipped (use --overwrite to redo)")
        return lines

    def line(self) -> str:
        counts = {s: sum(o.status == s for o in self.outcomes) for s in ("done", "skipped", "failed")}
        return (f"{len(self.outcomes)} video(s): {counts['done']} annotated, {counts['skipped']} already done "
                f"(skipped), {counts['failed']} failed")


@dataclass
class VideoState:
    """The consumer's view of one video in flight: its utterances, the labels so far, whether all have come."""

    prepared: PreparedJob
    labels: dict[int, Prediction] = field(default_factory=dict)  # by id() of the utterance
    ended: bool = False  # every utterance has been handed on
    done: bool = False  # written (or failed while writing)

    @property
    def complete(self) -> bool:
        return self.ended and not self.done and len(self.labels) >= len(self.prepared.utterances)


class _Pending(NamedTuple):
    """An utterance waiting for the model, with the media it needs."""

    video: Path
    utterance: Utterance
    input: UtteranceInput

    def length(self) -> int:
        return (len(self.input.audio) if self.input.audio is not None else 0) + len(self.input.text)


def video_result(state: VideoState, model: Model, model_info: dict, options: AnnotateOptions) -> VideoResult:
    """A finished video's rows in the file's order, with its unlabelled cues, after the model's dialogue stage
    (where the model has one and the speakers are known)."""
    prep = state.prepared
    labelled = list(state.labels.values())
    rows = labelled + [Prediction(c.index, c.start_s, c.end_s if c.shown_end_s is None else c.shown_end_s,
                                  c.text, c.speaker, None, position=c.position, non_speech=c.non_speech,
                                  source=prep.report.source)
                       for c in prep.non_speech]
    cue_start = {(p.position, p.index): p.start_s for p in rows if p.turn == 1}
    order = sorted(rows, key=lambda p: (cue_start.get((p.position, p.index), p.start_s), p.position, p.turn))
    info = {**model_info, "asr_model": prep.report.asr_model} if prep.report.asr_model else model_info
    heard = [name for name, on in (("--voice", options.voice), ("--diarize", options.diarize)) if on]
    if heard and not prep.info.has_audio and options.progress:
        options.log(f"emocli: note: {prep.job.video.name} has no audio stream: {' and '.join(heard)} "
                    f"found no voice in it")
    if options.voice:
        info = {**info, "voice_model": VOICE_MODEL}
    if options.diarize:
        from ..signals.diarize import diarize

        info = {**info, "diarization": diarize([r for r in order if r.labelled], options.num_speakers,
                                               options.min_speakers, options.max_speakers)}
        for row in order:  # an unlabelled cue (a sound description) keeps the name its subtitle gives, if any
            if not row.labelled and row.speaker:
                row.speaker_source = "subtitles"
        if "doubtful" in info["diarization"]:
            options.log(f"emocli: warning: {prep.job.video.name}: --diarize: {info['diarization']['doubtful']}")
    if model.config.dialogue:
        status = read_in_dialogue(order, model.config.dialogue)
        info = {**info, "dialogue_stage": status}
        if status.startswith("not applied") and options.progress:
            options.log(f"emocli: note: {prep.job.video.name}: the model's dialogue stage was {status}")
    if options.face:
        from ..signals.faces import FACE_MODEL

        info = {**info, "face_model": FACE_MODEL}
    result = VideoResult(prep.job.video, prep.info.duration_s, info, order, prep.report.as_json(len(labelled)),
                         prep.job.stem, options.face, voices=options.voice, speakers=options.diarize)
    result.media_gaps, warning = media_gaps(prep, labelled)
    if warning:
        options.log(f"emocli: warning: {prep.job.video.name}: {warning}")
    return result


def media_gaps(prep: PreparedJob, labelled: list[Prediction]) -> tuple[dict, str | None]:
    """Where the media stopped decoding short of utterances that needed it (a truncated file, a picture stream
    that ends before the audio): the JSON's `media_gaps` block and one warning line, or ({}, None)."""
    gaps, parts = {}, []
    duration = f" of {prep.info.duration_s:.1f} s" if prep.info.duration_s else ""
    for modality, stream, reached, unit in (("video", "video", prep.decoded.video_to_s, "frames"),
                                            ("audio", "audio", prep.decoded.audio_to_s, "audio")):
        rows = [p for p in labelled if modality in p.missing]
        if not rows:
            continue
        none = sum(1 for p in rows if p.missing[modality].startswith("no "))
        since = min(p.start_s for p in rows)
        gaps[modality] = {"last_decoded_s": round(reached, 3) if reached is not None else None,
                          "missing_from_s": round(since, 3), f"utterances_without_{unit}": none,
                          "utterances_with_some_missing": len(rows) - none}
        where = (f"{stream} decodes only to {reached:.1f} s{duration} (nothing from {since:.1f} s on)"
                 if reached is not None else f"no {stream} could be decoded{duration}")
        counts = [f"{none} utterance(s) without {unit}"] if none else []
        counts += [f"{len(rows) - none} with some {unit} missing"] if len(rows) > none else []
        parts.append(f"{where}: {', '.join(counts)} (masked; see media_missing in the JSON)")
    return gaps, "; ".join(parts) or None


def annotate(jobs: list[Job], model: Model, options: AnnotateOptions, model_info: dict | None = None,
             reader: Reader | None = None) -> RunSummary:
    """Annotate every job; failures are reported per video. Returns what happened to each. `reader`: the jobs'
    reader, started already (the CLI starts it before the model loads); by default one is started here."""
    predictor = BatchPredictor(model, options.batch_size, options.precision,
                               options.log if options.progress else None)  # --quiet: no notes, only errors
    signals = SignalReader(options.voice, options.diarize, model.device)
    model_info = {**(model_info or describe(model.config, model.directory)), "precision": predictor.precision}
    reader = reader or Reader(jobs, options, asr_device(options.device)).start()
    messages: queue.Queue = queue.Queue(maxsize=3)  # bounded prefetch: memory stays bounded
    stop = threading.Event()
    producer = threading.Thread(target=produce, args=(reader, model, options, messages, stop), daemon=True)
    states: dict[Path, VideoState] = {}
    outcomes: dict[Path, Outcome] = {}
    pending: list[_Pending] = []
    # the bar appears with the first video that starts, so an early error stays a single line
    bar = tqdm(total=0, unit="utt", desc="annotating", disable=True)

    def warn(job: Job, report: SubtitleReport) -> None:
        warning = report.warning()
        if warning:
            where = job.subs.name if job.subs is not None else " ".join(filter(None, [job.video.name, report.track]))
            options.log(f"emocli: warning: {where}: {warning}")

    def finish(video: Path) -> None:
        state = states[video]
        if not state.complete:
            return
        state.done = True
        prep = state.prepared
        result = video_result(state, model, model_info, options)
        states[video] = VideoState(prep, ended=True, done=True)  # its rows are no longer held here
        try:
            extra = []
            if options.plot:
                from ..files import figure_png
                from ..outputs.report import plot_figure, plot_path

                extra.append((plot_path(video, prep.job.output_dir, prep.job.stem), figure_png(plot_figure(result))))
            paths = write_outputs(result, options.formats, prep.job.output_dir, options.color, extra)
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
        todo, pending = sorted(pending[:cut], key=_Pending.length), pending[cut:]
        probs, attention = predictor([t.input for t in todo])
        voices, prints = signals([t.input for t in todo]) if signals else ([None] * len(todo),) * 2
        for (video, utt, item), p, a, voice, voiceprint in zip(todo, probs, attention, voices, prints):
            state = states.get(video)
            if state is None or state.done:
                continue  # the video failed meanwhile
            used = [m for m, on in a["present"].items() if on]
            # outputs keep the file's timing
            state.labels[id(utt)] = Prediction(utt.index, utt.out_start_s, utt.out_end_s, utt.text, utt.speaker, p,
                                               used, a if options.attention else None, utt.position, utt.turn,
                                               utt.turns, None, utt.removed, state.prepared.report.source, utt.asr,
                                               item.face, item.missing, voice, voiceprint)
        bar.update(len(todo))
        for video in list(states):
            if video not in outcomes:
                finish(video)

    producer.start()
    try:
        while True:
            msg = messages.get()
            if msg is None:
                break
            job = msg.job
            video = job.video
            if isinstance(msg, Skipped):
                outcomes[video] = Outcome(video, "skipped", "", job.outputs(options.formats, options.plot))
            elif isinstance(msg, Failed):
                states.pop(video, None)
                pending = [t for t in pending if t.video != video]
                outcomes[video] = Outcome(video, "failed", msg.error.message, exit_code=msg.error.exit_code)
                options.log(f"emocli: error: {msg.error.message}")
            elif isinstance(msg, Started):
                prep = msg.prepared
                states[video] = VideoState(prep)
                if bar.disable and options.progress:
                    bar = tqdm(total=bar.total, unit="utt", desc="annotating", file=sys.stderr, dynamic_ncols=True)
                bar.total += 0 if prep.streamed else len(prep.utterances)  # streamed: counted as they come
                bar.refresh()
                if not prep.streamed:
                    warn(job, prep.report)
            elif isinstance(msg, MoreUtterances):
                bar.total += msg.count
                bar.refresh()
            elif isinstance(msg, Decoded):
                pending.extend(_Pending(video, u, item) for u, item in msg.items)
                run(flush=False)
            elif isinstance(msg, Ended):
                states[video].ended = True
                if states[video].prepared.streamed:  # its report is complete now
                    warn(job, states[video].prepared.report)
                pending.sort(key=lambda t: t.video != video)  # its last items go with the next batches
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
