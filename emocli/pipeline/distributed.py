"""Folder annotation on a Ray cluster: one model actor per GPU (or per few CPUs), one model load per actor.

Each actor runs the same pipeline as a local run on the videos it is handed (its decoding thread on the worker's
CPUs, the model on its GPU), so outputs, resume and failure reporting are those of a local run. Videos and the
output folder must be on storage every node can reach (a shared filesystem), as for any Ray file job.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from ..errors import UsageError
from .annotate import Outcome, RunSummary, annotate
from .jobs import AnnotateOptions, Job


class Annotator:
    """A Ray actor: loads the model once, then annotates one job per call."""

    def __init__(self, model_ref: str | None, options: dict) -> None:
        from ..device import resolve_device
        from ..model.checkpoint import load_model

        self.options = AnnotateOptions(**options, progress=False, log=lambda msg: None)
        self.model = load_model(model_ref, resolve_device(self.options.device))

    def run(self, job: Job) -> Outcome:
        return annotate([job], self.model, self.options).outcomes[0]


def annotate_on_ray(jobs: list[Job], model_ref: str | Path | None, options: AnnotateOptions,
                    address: str | None = None, actors: int | None = None) -> RunSummary:
    """Spread the jobs over a Ray cluster (`address`: 'auto', host:port, or None for a local one)."""
    try:
        import ray
        from ray.util import ActorPool
    except ImportError:
        raise UsageError("--ray needs Ray: pip install 'emocli[ray]'") from None
    try:
        ray.init(address=None if address in (None, "", "local") else address, ignore_reinit_error=True,
                 log_to_driver=False, include_dashboard=False, configure_logging=False)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise UsageError(f"cannot connect to the Ray cluster at {address!r}: {exc}") from None
    resources = ray.cluster_resources()
    gpus, cpus = int(resources.get("GPU", 0)), int(resources.get("CPU", 1))
    count = actors or (gpus if gpus else max(1, cpus // 2))
    count = max(1, min(count, len(jobs)))
    remote = ray.remote(num_gpus=1 if gpus else 0, num_cpus=1)(Annotator)
    fields = {f.name: getattr(options, f.name) for f in dataclasses.fields(options)
              if f.name not in ("log", "progress")}
    if gpus == 0:
        fields["device"] = "cpu"
    model = str(model_ref) if model_ref is not None else None
    pool = ActorPool([remote.remote(model, fields) for _ in range(count)])
    outcomes = []
    for job, outcome in zip(jobs, pool.map(lambda actor, job: actor.run.remote(job), jobs)):
        outcomes.append(outcome)
        if outcome.status == "failed":
            options.log(f"emocli: error: {outcome.message}")
    return RunSummary(outcomes)
