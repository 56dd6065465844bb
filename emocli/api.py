"""The Python API: what the command line does, as functions (`import emocli`).

    import emocli

    model = emocli.load_model()                      # the shipped default; "large", or a checkpoint folder
    results = emocli.annotate("episode.mp4", subs="episode.srt", model=model)
    for row in results[0].predictions:
        print(row.start_s, row.emotion, row.confidence, row.text)

Each function checks its options as the command line does (the same one-line `emocli.EmocliError`s) and imports
PyTorch only when it needs it.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from .errors import EmocliError

if TYPE_CHECKING:
    from .model.checkpoint import Model
    from .outputs.result import VideoResult
    from .training.train import TrainConfig

PathLike = str | Path


class AnnotateError(EmocliError):
    """Some videos of an `annotate` call failed: `results` holds those that were annotated, `failures` the
    (video, message) of the others. Every finished video's files are written all the same."""

    def __init__(self, message: str, results: list[VideoResult], failures: list[tuple[Path, str]],
                 exit_code: int) -> None:
        super().__init__(message, exit_code)
        self.results, self.failures = results, failures


def _prepare_libraries() -> None:
    """Hide the optional libraries that do not load beside this PyTorch from transformers (each as a warning)."""
    from .environment import prepare_transformers

    for library in prepare_transformers():
        warnings.warn(library.message(), RuntimeWarning, stacklevel=3)


def load_model(name: PathLike | None = None, device: str = "auto") -> Model:
    """Load an emotion model: a shipped one by name (`"default"`, `"large"`), a checkpoint folder (from
    `emocli train`), or a Hugging Face repo id; None: `$EMOCLI_MODEL`, else the shipped default. `device`: auto
    (CUDA when available), cpu or cuda. The model's folder is `model.directory`."""
    from .device import resolve_device
    from .model.checkpoint import load_model as load

    dev = resolve_device(device)
    _prepare_libraries()
    return load(name, dev)


def annotate(paths: PathLike | Sequence[PathLike], subs: PathLike | None = None, *,
             model: Model | PathLike | None = None, formats: str | Iterable[str] = (),
             output_dir: PathLike | None = None, overwrite: bool = True, progress: bool = False,
             log: Callable[[str], None] | None = None, **options: Any) -> list[VideoResult]:
    """Label every utterance of one or more videos (files, or folders of them) with an emotion.

    Returns one `VideoResult` per video annotated, in order: `result.predictions` are its rows (times in
    seconds, speaker, text, `emotion`, `confidence`, the 7 `probabilities`, ...). `subs`: the subtitle file of a
    single video (default: its sibling .srt/.vtt/.ass, else a text track inside it, else its speech is
    transcribed). `model`: a loaded model, or a name or folder for `load_model` (default: the shipped one).
    `formats`: files to write as well ("csv", "json", "srt", "vtt", "ass", "html", "all" or a list), next to each
    video or in `output_dir`; none by default. `overwrite=False` skips (and leaves out) videos whose files all
    exist, as the command line does. Any other keyword is an `AnnotateOptions` field (device, batch_size,
    precision, face, vad, encoding, subs_track, transcribe, language, audio_track, plot, attention, ...).

    Raises `EmocliError` for bad options or a single video that fails, and `AnnotateError` (with the finished
    `results`) when some videos of several fail.
    """
    from .pipeline.annotate import annotate as run
    from .pipeline.jobs import AnnotateOptions, check_writable, find_jobs

    try:
        opts = AnnotateOptions(formats=[formats] if isinstance(formats, str) else list(formats),
                               output_dir=Path(output_dir) if output_dir is not None else None, overwrite=overwrite,
                               progress=progress, **options)
    except TypeError as exc:
        raise EmocliError(f"annotate: {exc}", 2) from None
    if log is not None:
        opts.log = log
    opts.validate()
    targets = [paths] if isinstance(paths, (str, Path)) else list(paths)
    if subs is not None and len(targets) != 1:
        raise EmocliError("subs names the subtitle file of one video: give one path with it", 2)
    jobs = [job for target in targets
            for job in find_jobs(target, subs, opts.output_dir, opts.log if progress else None,
                                 subs_track=opts.subs_track)]
    check_writable(jobs, lambda job: job.outputs(opts.formats, opts.plot), opts.overwrite)
    reader = None
    if isinstance(model, (str, Path, type(None))):  # the first video is read (and transcribed) while it loads
        from .pipeline.reading import Reader
        from .text.asr import asr_device

        reader = Reader(jobs, opts, asr_device(opts.device)).start()
        try:
            model = load_model(model, opts.device)
        except BaseException:
            reader.close()
            raise
    opts.device = str(model.device)
    try:
        summary = run(jobs, model, opts, reader=reader)
    finally:
        if reader is not None:
            reader.close()
    results = [o.result for o in summary.outcomes if o.status == "done" and o.result is not None]
    failed = summary.failed
    if failed:
        if len(jobs) == 1:
            raise EmocliError(failed[0].message, failed[0].exit_code)
        failures = [(o.video, o.message) for o in failed]
        raise AnnotateError(f"{len(failed)} of {len(jobs)} videos failed; the first: {failed[0].message}", results,
                            failures, summary.exit_code)
    return results


def train(meld: PathLike, out: PathLike, config: TrainConfig | None = None, *, cache: PathLike | None = None,
          device: str = "auto", progress: bool = False, log: Callable[[str], None] = print,
          **recipe: Any) -> dict:
    """Train an emotion model on MELD (the folder of its CSVs, and MELD.Raw's clips for audio and video) and write
    the checkpoint to `out`; returns its dev scores. The recipe is `config` (a `TrainConfig`), or its fields as
    keywords (modalities=["text"], context=2, finetune_layers=6, epochs=30, seed=0, ...)."""
    from .device import resolve_device
    from .training.train import TrainConfig
    from .training.train import train as run

    if config is not None and recipe:
        raise EmocliError("train: give a TrainConfig or its fields as keywords, not both", 2)
    try:
        cfg = config or TrainConfig(**recipe)
    except TypeError as exc:
        raise EmocliError(f"train: {exc}", 2) from None
    cfg.validate()
    dev = str(resolve_device(device))
    _prepare_libraries()
    return run(meld, out, cfg, cache, dev, progress=progress, log=log)


def evaluate(model: PathLike, meld: PathLike, split: str = "dev", *, ablations: bool = False,
             output_dir: PathLike | None = None, cache: PathLike | None = None, device: str = "auto",
             precision: str = "fp32", progress: bool = False, log: Callable[[str], None] = print) -> dict:
    """Score a checkpoint (a folder, or a shipped model's name) on a MELD split: accuracy, weighted and macro F1,
    per class (`["per_class"]`), with the confusion matrix written to `output_dir` (default: MODEL/eval-SPLIT).
    Choose models on "dev"; report "test" once."""
    from .device import check_precision, resolve_device
    from .training.evaluate import evaluate as run

    if split not in ("train", "dev", "test"):
        raise EmocliError("--split must be dev or test (or train)", 2)
    check_precision(precision)
    dev = str(resolve_device(device))
    _prepare_libraries()
    return run(model, meld, split, ablations, output_dir, cache, dev, progress=progress, log=log,
               precision=precision)
