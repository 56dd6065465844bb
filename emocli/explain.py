"""explain: one utterance, with what the model looked at — cross-modal attention, the weight of each of its
8 frames, and the probabilities — as a figure (the reference design's attention visualisation)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import LABELS
from .annotate import AnnotateOptions, BatchPredictor, Job, _Prepared, prepare_job
from .decode import decode_inputs
from .errors import EmocliError
from .model import EmotionModel, UtteranceInput
from .segments import Utterance
from .writers import EMOTION_COLORS, save_figure


@dataclass
class Explanation:
    utterance: Utterance
    probabilities: np.ndarray
    attention: dict
    inputs: UtteranceInput


def explain_utterance(video: Path, subs: Path | None, index: int | str, model: EmotionModel, vad: str = "silero",
                      turn: int = 1, options: AnnotateOptions | None = None) -> Explanation:
    """Run the model on the cue numbered `index` (the file's own cue number, or WebVTT identifier) and keep its
    attention; `turn` picks one speaker's turn of a two-speaker cue."""
    prep = prepare_job(Job(Path(video), Path(subs) if subs else None, Path(video).parent), model, options)
    same = [u for u in prep.utterances if str(u.index) == str(index)]
    chosen = [u for u in same if u.turn == turn][:1]
    if not chosen:
        known = [u.index for u in prep.utterances]
        if same:
            raise EmocliError(f"cue {index} has {same[0].turns} turn(s); --turn {turn} is not one of them", 2)
        raise EmocliError(f"{subs or video}: no labelled cue number {index} (cues run {known[0]}..{known[-1]}; "
                          f"sound descriptions and credits are not labelled)", 2)
    one = _Prepared(prep.job, prep.info, chosen, prep.report)
    (utt, item), = decode_inputs(one, model, vad)
    probs, attention = BatchPredictor(model, 1)([item])
    return Explanation(utt, probs[0], attention[0], item)


def plot_explanation(ex: Explanation, path: Path, modalities: list[str]) -> Path:
    """PNG: attention between modalities, the sampled frames with their attention weights, probabilities."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    frames = ex.inputs.frames
    fig = plt.figure(figsize=(13, 6.2), dpi=110)
    grid = fig.add_gridspec(2, 8, height_ratios=[1.3, 1.0], hspace=0.45, wspace=0.3)
    mat_ax = fig.add_subplot(grid[0, 0:3])
    matrix = np.full((len(modalities), len(modalities)), np.nan)
    for i, m in enumerate(modalities):
        for j, o in enumerate(modalities):
            if o in ex.attention.get(m, {}):
                matrix[i, j] = ex.attention[m][o]
    mat_ax.imshow(np.nan_to_num(matrix), cmap="Purples", vmin=0, vmax=1)
    mat_ax.set_xticks(range(len(modalities)), modalities)
    mat_ax.set_yticks(range(len(modalities)), modalities)
    mat_ax.set_xlabel("attends to")
    mat_ax.set_ylabel("query")
    for i in range(len(modalities)):
        for j in range(len(modalities)):
            mat_ax.text(j, i, "self" if i == j else f"{matrix[i, j]:.2f}", ha="center", va="center", fontsize=9)
    used = [m for m, on in ex.attention.get("present", {}).items() if on]
    mat_ax.set_title(f"cross-modal attention (used: {', '.join(used)})", fontsize=10)

    prob_ax = fig.add_subplot(grid[0, 4:8])
    prob_ax.barh(list(LABELS), ex.probabilities, color=[EMOTION_COLORS[x] for x in LABELS])
    prob_ax.invert_yaxis()
    prob_ax.set_xlim(0, 1)
    prob_ax.set_title("probabilities", fontsize=10)
    weights = ex.attention.get("frames")
    if frames is not None:
        for k in range(len(frames)):
            ax = fig.add_subplot(grid[1, k])
            ax.imshow(frames[k])
            ax.set_xticks([])
            ax.set_yticks([])
            if weights is not None:
                w = weights[k]
                ax.set_title(f"{w:.2f}", fontsize=9, color="black" if w < max(weights) else "darkred")
                for spine in ax.spines.values():
                    spine.set_linewidth(1 + 6 * w)
                    spine.set_color("darkred")
    else:
        ax = fig.add_subplot(grid[1, :])
        ax.axis("off")
        ax.text(0.5, 0.5, "no frames (the model has no video branch, or the media has no video stream)",
                ha="center", va="center")
    u = ex.utterance
    label = LABELS[int(np.argmax(ex.probabilities))]
    speaker = f"{u.speaker}: " if u.speaker else ""
    fig.suptitle(f"cue {u.index} ({u.start_s:.2f}-{u.end_s:.2f} s) {speaker}{u.text[:90]}\n-> {label} "
                 f"{ex.probabilities.max():.2f}; frame titles: video attention weight per sampled frame",
                 fontsize=10)
    return save_figure(fig, path)
