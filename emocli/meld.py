"""MELD: the official split CSVs (and, when present, the MELD.Raw clip folders) -> labelled utterances."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import ftfy
import pandas as pd

from . import LABELS
from .errors import UsageError
from .segments import format_context

#: split -> (annotation CSV, clip folder inside MELD.Raw)
SPLITS = {"train": ("train_sent_emo.csv", "train_splits"),
          "dev": ("dev_sent_emo.csv", "dev_splits_complete"),
          "test": ("test_sent_emo.csv", "output_repeated_splits_test")}
COLUMNS = ["Utterance", "Speaker", "Emotion", "Dialogue_ID", "Utterance_ID"]


@dataclass(frozen=True)
class MeldUtterance:
    """One labelled MELD utterance; `clip` is its video file when the clip folder is present."""

    dialogue_id: int
    utterance_id: int
    speaker: str
    text: str
    label: int
    context: str = ""
    clip: Path | None = None


def repair_text(text: str) -> str:
    """Undo mojibake such as 'Iâ\\x80\\x99m' (UTF-8 read as Latin-1/cp1252) found in MELD.Raw's CSVs."""
    return " ".join(ftfy.fix_encoding(str(text)).split())


def _find(meld_dir: Path, name: str) -> Path | None:
    for candidate in (meld_dir / name, meld_dir / "MELD.Raw" / name):
        if candidate.exists():
            return candidate
    return None


def load_split(meld_dir: str | Path, split: str, context: int = 0, limit: int | None = None
               ) -> list[MeldUtterance]:
    """Read one split, sorted by dialogue and utterance; `context` previous turns of the same dialogue attached.

    `limit` keeps the first N dialogues' worth of rows (for quick runs and tests).
    """
    if split not in SPLITS:
        raise UsageError(f"split must be one of {', '.join(SPLITS)}, not {split!r}")
    meld_dir = Path(meld_dir)
    csv_name, clip_dir_name = SPLITS[split]
    csv = _find(meld_dir, csv_name)
    if csv is None:
        raise UsageError(f"{meld_dir} holds no {csv_name} (point --meld at the folder with MELD's CSVs)")
    try:
        table = pd.read_csv(csv, encoding="utf-8", encoding_errors="replace")
    except (pd.errors.ParserError, OSError, ValueError) as exc:
        raise UsageError(f"cannot read {csv}: {exc}") from None
    missing = [c for c in COLUMNS if c not in table.columns]
    if missing:
        raise UsageError(f"{csv} lacks the MELD columns {missing}")
    table = table.sort_values(["Dialogue_ID", "Utterance_ID"], kind="stable")
    clip_dir = _find(meld_dir, clip_dir_name)
    label_index = {label: i for i, label in enumerate(LABELS)}
    out: list[MeldUtterance] = []
    history: list[tuple[str, str]] = []
    last_dialogue = None
    for row in table.itertuples(index=False):
        emotion = str(getattr(row, "Emotion")).strip().lower()
        if emotion not in label_index:
            raise UsageError(f"{csv}: unknown emotion {emotion!r} (dialogue {row.Dialogue_ID})")
        dialogue, utt = int(row.Dialogue_ID), int(row.Utterance_ID)
        if dialogue != last_dialogue:
            if limit is not None and len({u.dialogue_id for u in out}) >= limit:
                break
            history, last_dialogue = [], dialogue
        speaker, text = repair_text(row.Speaker), repair_text(row.Utterance)
        clip = None
        if clip_dir is not None:
            candidate = clip_dir / f"dia{dialogue}_utt{utt}.mp4"
            clip = candidate if candidate.is_file() else None
        out.append(MeldUtterance(dialogue, utt, speaker, text, label_index[emotion],
                                 format_context(history, context), clip))
        history.append((speaker, text))
    return out


def has_clips(meld_dir: str | Path, split: str) -> bool:
    """Whether the MELD.Raw clip folder of a split is present."""
    return _find(Path(meld_dir), SPLITS[split][1]) is not None
