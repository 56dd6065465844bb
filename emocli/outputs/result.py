"""What annotate gives for one video: its rows (`Prediction`, one per cue or speaker's turn) and the video's
`VideoResult`. Every writer reads a row through `Prediction.record()`, so each field is defined once."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..labels import LABELS


def rounded(x: float | None, digits: int) -> float | None:
    """`x` rounded for an output (None stays None)."""
    return None if x is None else round(float(x), digits)


@dataclass
class Prediction:
    """One row of the outputs: a cue (or one speaker's turn of it) with times in seconds, text, speaker and the
    model's probabilities over LABELS; a non-speech cue has no probabilities and says why (`non_speech`)."""

    index: int | str
    start_s: float
    end_s: float
    text: str
    speaker: str | None
    probabilities: np.ndarray | None
    modalities: list[str] = field(default_factory=list)  # the modalities actually used (others were masked)
    attention: dict | None = None
    position: int = 0  # the cue's place in the subtitle file
    turn: int = 1  # 1-based turn within a two-speaker cue
    turns: int = 1
    non_speech: str | None = None
    removed: tuple[str, ...] = ()  # sound descriptions taken out of the cue's text
    source: str = "subtitles"  # where the text came from: subtitles, embedded track or asr
    asr: tuple[float, float] | None = None  # a transcribed row's (confidence, no-speech probability)
    face: object | None = None  # --face: a signals.faces.FaceReading (None: not looked at, e.g. a non-speech row)
    missing: dict[str, str] = field(default_factory=dict)  # modality -> what of its media could not be decoded
    voice: object | None = None  # --voice: a signals.voice.VoiceReading (None: no voice in it, or not asked)
    voiceprint: object | None = None  # --diarize: a signals.diarize.Voiceprint of its voice (None: no voice)
    speaker_source: str | None = None  # --diarize: where `speaker` came from: subtitles, voice, or None

    @property
    def labelled(self) -> bool:
        return self.probabilities is not None

    @property
    def emotion(self) -> str | None:
        return LABELS[int(np.argmax(self.probabilities))] if self.labelled else None

    @property
    def confidence(self) -> float | None:
        return float(np.max(self.probabilities)) if self.labelled else None

    def record(self) -> dict:
        """The row's fields as every output names them, unrounded (each writer rounds to its own precision);
        None where a field does not apply."""
        return {"index": self.index, "turn": self.turn, "start": self.start_s, "end": self.end_s,
                "speaker": self.speaker, "text": self.text, "emotion": self.emotion,
                "confidence": self.confidence,
                "probabilities": dict(zip(LABELS, map(float, self.probabilities))) if self.labelled else None,
                "modalities": self.modalities, "source": self.source,
                "asr_confidence": self.asr[0] if self.asr else None,
                "no_speech_prob": self.asr[1] if self.asr else None,
                "non_speech": self.non_speech or None, "removed": list(self.removed) or None,
                "attention": self.attention, "face": self.face, "media_missing": self.missing or None,
                "voice": self.voice, "speaker_source": self.speaker_source}


def output_path(video: Path, output_dir: Path, extension: str, stem: str | None = None) -> Path:
    """`<output_dir>/<stem>.emotions.<ext>`, the stem being the video's unless given."""
    return Path(output_dir) / f"{stem or Path(video).stem}.emotions.{extension}"


def group_cues(predictions: list[Prediction]) -> list[list[Prediction]]:
    """Rows (in output order) grouped back into the subtitle file's cues: a cue's turns follow its first."""
    cues: list[list[Prediction]] = []
    for p in predictions:
        if p.turn > 1 and cues and cues[-1][0].position == p.position and cues[-1][0].index == p.index:
            cues[-1].append(p)
        else:
            cues.append([p])
    return cues


@dataclass
class VideoResult:
    """Everything written for one video."""

    video: Path
    duration_s: float | None
    model: dict
    predictions: list[Prediction]
    subtitles: dict = field(default_factory=dict)
    stem: str | None = None  # output file names: <stem>.emotions.<ext>; None: the video's stem
    faces: bool = False  # --face ran: the face columns and blocks are written
    media_gaps: dict = field(default_factory=dict)  # how far the media decoded, where it stopped short (JSON)
    voices: bool = False  # --voice ran: the voice columns and blocks are written
    speakers: bool = False  # --diarize ran: the speaker_source column and field are written

    @property
    def labelled(self) -> list[Prediction]:
        """The rows the model labelled (not the non-speech cues)."""
        return [p for p in self.predictions if p.labelled]
