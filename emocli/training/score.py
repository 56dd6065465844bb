"""score: emocli's predictions for a video against a reviewer's labels (the review page's corrections CSV, or any
CSV with index/start/end and a label column) -> the same metrics, per-class report and confusion matrix as
`evaluate`, on the user's own material.

Rows are matched by cue index (and turn, where both files have one), else by start and end time; rows that were
not reviewed (an empty label) are left out, and so are rows the reviewer marked "not speech". Every problem with
the files is one clear line (a UsageError), never a traceback or a silently short score."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import UsageError
from ..files import atomic_write, check_output_dir
from ..labels import LABELS
from ..outputs.review import NOT_SPEECH

#: the columns a gold file's label may be in, in order of preference (a corrections CSV has both of the first)
GOLD_COLUMNS = ("corrected", "gold", "label", "emotion")
NOT_SPEECH_NAMES = {NOT_SPEECH, "not_speech", "non-speech", "non speech", "nonspeech"}
TIME_TOLERANCE_S = 0.05  # start/end of the same cue in the two files (CSV rounds to ms)


def _read_table(path: Path, role: str) -> pd.DataFrame:
    """A CSV, or emocli's JSON (its utterances), as a table of strings; column names lower-cased."""
    if not path.is_file():
        raise UsageError(f"{role} file not found: {path}")
    try:
        if path.suffix.lower() == ".json":
            doc = json.loads(path.read_text(encoding="utf-8-sig"))
            if not isinstance(doc, dict) or not isinstance(doc.get("utterances"), list):
                raise UsageError(f"{path}: not an emocli JSON file (no 'utterances' list)")
            table = pd.DataFrame([{k: v for k, v in u.items() if not isinstance(v, (dict, list))}
                                  for u in doc["utterances"] if isinstance(u, dict)])
            table = table.astype(object).where(table.notna(), "").astype(str)
        else:
            table = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except UsageError:
        raise
    except (UnicodeDecodeError, json.JSONDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise UsageError(f"{path}: not a readable {'JSON' if path.suffix.lower() == '.json' else 'CSV'} file "
                         f"({str(exc).splitlines()[0][:120]})") from None
    table.columns = [str(c).strip().lower() for c in table.columns]
    if table.empty:
        raise UsageError(f"{path}: no rows")
    return table


def _labels(values: pd.Series, path: Path, column: str) -> pd.Series:
    """Labels mapped onto LABELS case-insensitively ("" stays "": not reviewed; NOT_SPEECH for its spellings);
    every unknown one named in one error."""
    clean = values.str.strip().str.lower()
    clean = clean.where(~clean.isin(NOT_SPEECH_NAMES), NOT_SPEECH)
    unknown = clean[(clean != "") & (clean != NOT_SPEECH) & ~clean.isin(LABELS)]
    if len(unknown):
        counts = values[unknown.index].str.strip().value_counts()
        named = ", ".join(f"{v!r} ({k} row{'s' if k > 1 else ''})" for v, k in counts.head(6).items())
        raise UsageError(f"{path}: unknown labels in column '{column}': {named}"
                         f"{' and more' if len(counts) > 6 else ''}; the labels are {', '.join(LABELS)} "
                         f"(any case) or '{NOT_SPEECH}'")
    return clean


def _times(table: pd.DataFrame, path: Path) -> pd.DataFrame:
    for name in ("start", "end"):
        if name in table:
            numbers = pd.to_numeric(table[name].str.strip(), errors="coerce")
            bad = numbers.isna() & (table[name].str.strip() != "")
            if bad.any():
                row = int(np.flatnonzero(bad.to_numpy())[0])
                raise UsageError(f"{path}: row {row + 2}: {name} {table[name].iloc[row]!r} is not a number of "
                                 f"seconds")
            table[name] = numbers
    return table


def _keys(table: pd.DataFrame, use_turn: bool) -> list[tuple]:
    if "index" in table:
        return list(zip(table["index"].str.strip(), table["turn"].str.strip() if use_turn else [""] * len(table)))
    return list(zip(table["start"].round(2), table["end"].round(2)))


def read_pair(predictions: str | Path, gold: str | Path, label_column: str | None = None) -> dict:
    """Match the two files' rows -> y_true, y_pred (indices into LABELS) and the counts of what was left out."""
    pred_path, gold_path = Path(predictions), Path(gold)
    pred, truth = _read_table(pred_path, "predictions"), _read_table(gold_path, "gold")
    pred_column = next((c for c in ("emotion", "predicted") if c in pred), None)
    if pred_column is None:
        raise UsageError(f"{pred_path}: no 'emotion' column: give emocli's CSV or JSON output (or a corrections "
                         f"file, whose 'predicted' column is read)")
    if label_column is not None:
        gold_column = label_column.strip().lower()
        if gold_column not in truth:
            raise UsageError(f"{gold_path}: no column '{label_column}' (it has {', '.join(truth.columns)})")
    else:
        gold_column = next((c for c in GOLD_COLUMNS if c in truth), None)
        if gold_column is None:
            raise UsageError(f"{gold_path}: no label column: name it with --label-column (looked for "
                             f"{', '.join(GOLD_COLUMNS)}; it has {', '.join(truth.columns)})")
    for table, path in ((pred, pred_path), (truth, gold_path)):
        if "index" not in table and not {"start", "end"} <= set(table.columns):
            raise UsageError(f"{path}: rows cannot be matched: it needs an 'index' column or 'start' and 'end'")
        _times(table, path)
    if "index" in truth and "index" not in pred or "index" not in truth and not {"start", "end"} <= set(pred):
        raise UsageError(f"{pred_path} and {gold_path} share no way to match rows (index, or start and end)")
    use_turn = "turn" in pred and "turn" in truth and "index" in truth
    if "index" not in truth:
        pred = pred.drop(columns=["index"], errors="ignore")
    pred_labels, gold_labels = _labels(pred[pred_column], pred_path, pred_column), \
        _labels(truth[gold_column], gold_path, gold_column)
    pred_keys, gold_keys = _keys(pred, use_turn), _keys(truth, use_turn)
    if len(set(pred_keys)) < len(pred_keys):
        raise UsageError(f"{pred_path}: rows share an index: match by time instead (drop the index column)")
    first_row: dict = {}
    for row, key in enumerate(gold_keys, start=2):  # row numbers as a spreadsheet shows them (1: the header)
        if key in first_row:
            what = f"index {key[0]}" + (f", turn {key[1]}" if use_turn else "") if "index" in truth \
                else f"{key[0]}-{key[1]} s"
            raise UsageError(f"{gold_path}: row {row} repeats row {first_row[key]} ({what}): each cue may be "
                             f"labelled once; remove the duplicate rows")
        first_row[key] = row
    where = {key: i for i, key in enumerate(pred_keys)}

    reviewed = gold_labels != ""
    missing = [k for k, r in zip(gold_keys, reviewed) if r and k not in where]
    if missing:
        first = missing[0]
        raise UsageError(f"{gold_path}: {len(missing)} of its {int(reviewed.sum())} labelled rows are not in "
                         f"{pred_path} (first: {'index ' + first[0] if 'index' in truth else f'{first[0]}-{first[1]} s'})"
                         f": are they of the same video and run?")
    y_true, y_pred, not_speech, unlabelled = [], [], 0, 0
    for g, key, label in zip(range(len(truth)), gold_keys, gold_labels):
        if label == "":
            continue
        i = where[key]
        for name in ("start", "end"):
            if name in truth and name in pred and not pd.isna(truth[name].iloc[g]) and \
                    abs(truth[name].iloc[g] - pred[name].iloc[i]) > TIME_TOLERANCE_S:
                raise UsageError(f"{gold_path}: row {g + 2} ({key[0]}) {name}s at {truth[name].iloc[g]:.3f} s but "
                                 f"at {pred[name].iloc[i]:.3f} s in {pred_path}: not the same cues")
        if label == NOT_SPEECH:
            not_speech += 1
        elif pred_labels.iloc[i] in ("", NOT_SPEECH):
            unlabelled += 1  # the reviewer labelled a cue emocli left as not speech: outside the 7-class score
        else:
            y_true.append(LABELS.index(label))
            y_pred.append(LABELS.index(pred_labels.iloc[i]))
    if not y_true:
        raise UsageError(f"{gold_path}: no row to score (no labelled row of {len(truth)} matched a labelled "
                         f"prediction; column '{gold_column}')")
    return {"y_true": np.array(y_true), "y_pred": np.array(y_pred), "gold_column": gold_column,
            "rows": len(truth), "not_reviewed": int((~reviewed).sum()), "not_speech": not_speech,
            "unlabelled_by_model": unlabelled}


def score(predictions: str | Path, gold: str | Path, output_dir: str | Path | None = None,
          label_column: str | None = None) -> dict:
    """Score predictions against gold labels; writes metrics.json and confusion_matrix.{csv,png} to
    `output_dir` (default: `<gold stem>.score/` beside the gold file) and returns the metrics."""
    from .metrics import compute_metrics, write_confusion

    gold = Path(gold)
    out = Path(output_dir) if output_dir else gold.with_name(f"{gold.stem}.score")
    check_output_dir(out)
    pair = read_pair(predictions, gold, label_column)
    metrics = compute_metrics(pair["y_true"], pair["y_pred"])
    metrics.update({"predictions": str(predictions), "gold": str(gold), "gold_column": pair["gold_column"],
                    "rows": pair["rows"], "not_reviewed": pair["not_reviewed"], "not_speech": pair["not_speech"],
                    "unlabelled_by_model": pair["unlabelled_by_model"]})
    write_confusion(out, pair["y_true"], pair["y_pred"],
                    f"{Path(predictions).name} against {gold.name}: weighted F1 {metrics['weighted_f1']:.3f}")
    atomic_write(out / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    metrics["output_dir"] = str(out)
    return metrics


def score_text(metrics: dict) -> str:
    from .metrics import per_class_text

    left = [f"{metrics['not_reviewed']} not reviewed", f"{metrics['not_speech']} marked not speech"]
    if metrics["unlabelled_by_model"]:
        left.append(f"{metrics['unlabelled_by_model']} labelled by the reviewer but left unlabelled by emocli")
    return "\n".join([f"{Path(metrics['predictions']).name} against {Path(metrics['gold']).name} "
                      f"(column '{metrics['gold_column']}'): {metrics['n']} scored; left out: {', '.join(left)}",
                      f"accuracy {metrics['accuracy']:.4f}, weighted F1 {metrics['weighted_f1']:.4f}, "
                      f"macro F1 {metrics['macro_f1']:.4f}", "", per_class_text(metrics), "",
                      f"-> {metrics['output_dir']}"])
