"""`emocli transcribe`: transcripts only (`<stem>.transcript.srt`, and `.vtt`), for a file or each file of a folder,
to correct by hand and then annotate with --subs. One file that fails is reported; the others go on."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..errors import EXIT_INPUT_FAILED, EXIT_OK, EmocliError, UsageError
from ..text.asr import asr_device, check_language, transcribe_media
from ..text.tracks import check_track_spec
from .jobs import Job

TRANSCRIPT_FORMATS = ("srt", "vtt")


@dataclass
class TranscribeSummary:
    written: dict[Path, tuple[list[Path], int]] = field(default_factory=dict)  # per file: paths, utterances
    failed: list[str] = field(default_factory=list)  # one message per failed file

    @property
    def exit_code(self) -> int:
        return EXIT_INPUT_FAILED if self.failed else EXIT_OK


def transcript_formats(spec: str) -> list[str]:
    """'srt', 'vtt' or 'srt,vtt' -> the list; a UsageError for anything else."""
    fmt = [f.strip().lower() for f in spec.split(",") if f.strip()]
    if not fmt or any(f not in TRANSCRIPT_FORMATS for f in fmt):
        raise UsageError(f"--format for transcripts is srt, vtt or srt,vtt, not {spec!r}")
    return fmt


def transcribe_jobs(jobs: list[Job], formats: list[str], asr_model: str | None = None, device: str = "auto",
                    language: str = "en", overwrite: bool = False, audio_track: str | None = None,
                    progress: bool = False, log: Callable[[str], None] | None = None) -> TranscribeSummary:
    """Transcribe each job's media; a single job's failure is raised, in a folder each is logged and counted."""
    language = language.lower()
    check_language(asr_model, language)
    audio_track = check_track_spec("--audio-track", audio_track)
    dev = asr_device(device)  # the speech model alone: no PyTorch
    summary = TranscribeSummary()
    for job in jobs:
        try:
            summary.written[job.video] = transcribe_media(job.video, job.output_dir, formats, asr_model, dev,
                                                          language, overwrite, job.stem, audio_track,
                                                          progress=progress)
        except EmocliError as exc:
            if len(jobs) == 1:
                raise
            summary.failed.append(exc.message)
            if log is not None:
                log(f"emocli: error: {exc.message}")
    return summary
