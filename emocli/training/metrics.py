"""Scores: accuracy, weighted and macro F1 and the per-class report (scikit-learn), and the confusion matrix as a CSV
and a PNG. Shared by evaluate (MELD), score (your own material), train and the dialogue stage's fitting."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, classification_report, confusion_matrix, f1_score

from ..files import atomic_write, save_figure
from ..labels import LABELS


def compute_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict:
    """Accuracy, weighted and macro F1, and per-class precision/recall/F1/support (scikit-learn), for y_true and
    y_pred given as indices into LABELS."""
    labels = list(range(len(LABELS)))
    report = classification_report(y_true, y_pred, labels=labels, target_names=list(LABELS), output_dict=True,
                                   zero_division=0)
    return {"n": int(len(y_true)),
            "accuracy": round(float(accuracy_score(y_true, y_pred)), 4),
            "weighted_f1": round(float(f1_score(y_true, y_pred, labels=labels, average="weighted",
                                                zero_division=0)), 4),
            # over the classes in either (scikit-learn's default): a class absent from both is not a zero
            "macro_f1": round(float(f1_score(y_true, y_pred, average="macro", zero_division=0)), 4),
            "per_class": {name: {k: round(float(v), 4) if k != "support" else int(v)
                                 for k, v in report[name].items()} for name in LABELS}}


def write_confusion(out: Path, y_true: np.ndarray, y_pred: np.ndarray, title: str) -> np.ndarray:
    """confusion_matrix.csv (counts, true classes as rows) and confusion_matrix.png in `out`."""
    matrix = confusion_matrix(y_true, y_pred, labels=list(range(len(LABELS))))
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / "confusion_matrix.csv",
                 pd.DataFrame(matrix, index=list(LABELS), columns=list(LABELS)).to_csv(index_label="true\\pred"))
    plot_confusion(matrix, out / "confusion_matrix.png", title)
    return matrix


def plot_confusion(matrix: np.ndarray, path: Path, title: str) -> None:
    """Row-normalised confusion matrix with counts, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    norm = matrix / np.maximum(matrix.sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(6.4, 5.6), dpi=120)
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(LABELS)), LABELS, rotation=40, ha="right")
    ax.set_yticks(range(len(LABELS)), LABELS)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=10)
    for i in range(len(LABELS)):
        for j in range(len(LABELS)):
            ax.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize=8,
                    color="white" if norm[i, j] > 0.5 else "black")
    fig.colorbar(im, ax=ax, fraction=0.046, label="share of the true class")
    fig.tight_layout()
    save_figure(fig, path)


def per_class_text(metrics: dict) -> str:
    """The per-class precision / recall / F1 / support table."""
    lines = [f"{'class':<10}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>9}"]
    for name, row in metrics["per_class"].items():
        lines.append(f"{name:<10}{row['precision']:>10.3f}{row['recall']:>10.3f}{row['f1-score']:>10.3f}"
                     f"{row['support']:>9d}")
    return "\n".join(lines)
