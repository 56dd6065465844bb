"""MELD: the official split CSVs (and, when present, the MELD.Raw clip folders) -> labelled utterances."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

import ftfy
import pandas as pd

from ..errors import UsageError
from ..labels import LABELS
from ..text.segments import dialogue_contexts

#: split -> (annotation CSV, clip folder inside MELD.Raw)
SPLITS = {"train": ("train_sent_emo.csv", "train_splits"),
          "dev": ("dev_sent_emo.csv", "dev_splits_complete"),
          "test": ("test_sent_emo.csv", "output_repeated_splits_test")}
COLUMNS = ["Utterance", "Speaker", "Emotion", "Dialogue_ID", "Utterance_ID"]
SENTIMENTS = ("negative", "neutral", "positive")


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
    sentiment: int = -1  # index into SENTIMENTS; -1 when the CSV has no Sentiment column


def repair_text(text: str) -> str:
    """Undo mojibake such as 'Iâ\\x80\\x99m' (UTF-8 read as Latin-1/cp1252) found in MELD.Raw's CSVs."""
    return " ".join(ftfy.fix_encoding(str(text)).split())


def _find(meld_dir: Path, name: str) -> Path | None:
    for candidate in (meld_dir / name, meld_dir / "MELD.Raw" / name):
        if candidate.exists():
            return candidate
    return None


def load_split(meld_dir: str | Path, split: str, context: int = 0, limit: int | None = None,
               context_after: int = 0) -> list[MeldUtterance]:
    """Read one split, sorted by dialogue and utterance; `context` previous (and `context_after` next) turns of
    the same dialogue attached.

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
    for column in ("Dialogue_ID", "Utterance_ID"):
        ids = pd.to_numeric(table[column], errors="coerce")
        bad = ids.isna() | (ids != ids.round())
        if bad.any():
            row = int(bad.to_numpy().argmax())
            value = table[column].iloc[row]
            shown = "nothing" if pd.isna(value) else repr(str(value))
            raise UsageError(f"{csv}: {column} must be a whole number; line {row + 2} has {shown}")
        table[column] = ids.astype(int)
    if table.empty:
        raise UsageError(f"{csv} holds no utterances")
    table = table.sort_values(["Dialogue_ID", "Utterance_ID"], kind="stable")
    clip_dir = _find(meld_dir, clip_dir_name)
    label_index = {label: i for i, label in enumerate(LABELS)}
    rows: list[tuple[int, int, str, str, int, int]] = []
    sentiment_index = {s: i for i, s in enumerate(SENTIMENTS)}
    dialogues = 0
    for row in table.itertuples(index=False):
        emotion = str(getattr(row, "Emotion")).strip().lower()
        if emotion not in label_index:
            raise UsageError(f"{csv}: unknown emotion {emotion!r} (dialogue {row.Dialogue_ID})")
        dialogue, utt = int(row.Dialogue_ID), int(row.Utterance_ID)
        if not rows or rows[-1][0] != dialogue:
            if limit is not None and dialogues >= limit:
                break
            dialogues += 1
        sentiment = sentiment_index.get(str(getattr(row, "Sentiment", "")).strip().lower(), -1)
        rows.append((dialogue, utt, repair_text(row.Speaker), repair_text(row.Utterance), label_index[emotion],
                     sentiment))
    contexts: list[str] = []
    for _, group in itertools.groupby(rows, key=lambda r: r[0]):  # rows are sorted by dialogue
        contexts += dialogue_contexts([(r[2], r[3]) for r in group], context, context_after)
    out: list[MeldUtterance] = []
    for (dialogue, utt, speaker, text, label, sentiment), ctx in zip(rows, contexts):
        clip = None
        if clip_dir is not None:
            candidate = clip_dir / f"dia{dialogue}_utt{utt}.mp4"
            clip = candidate if candidate.is_file() else None
        out.append(MeldUtterance(dialogue, utt, speaker, text, label, ctx, clip, sentiment))
    return out


def has_clips(meld_dir: str | Path, split: str) -> bool:
    """Whether the MELD.Raw clip folder of a split is present."""
    return _find(Path(meld_dir), SPLITS[split][1]) is not None


def train_class_counts(meld_dir: str | Path) -> list[int]:
    """How often each label occurs in MELD's train split (in LABELS order)."""
    from ..training.meld import load_split

    labels = [u.label for u in load_split(meld_dir, "train")]
    return [labels.count(i) for i in range(len(LABELS))]
