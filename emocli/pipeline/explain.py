"""explain: one utterance, with what the model looked at — cross-modal attention, the weight of each of its
8 frames, and the probabilities — as a figure (the reference design's attention visualisation)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import EmocliError
from ..files import save_figure
from ..labels import EMOTION_COLORS, LABELS
from ..model.network import EmotionModel, UtteranceInput
from ..text.segments import Utterance
from .decode import decode_inputs
from .jobs import AnnotateOptions, Job, PreparedJob
from .predict import BatchPredictor, SignalReader
from .prepare import prepare_job


@dataclass
class Explanation:
    utterance: Utterance
    probabilities: np.ndarray
    attention: dict
    inputs: UtteranceInput
    face: object | None = None  # --face: the faces.FaceReading of its 8 frames
    face_frames: np.ndarray | None = None  # those frames, at the size faces are read at
    voice: object | None = None  # --voice: the signals.voice.VoiceReading of its voice (None: no voice in it)


def explain_utterance(video: Path, subs: Path | None, index: int | str, model: EmotionModel, vad: str = "silero",
                      turn: int = 1, options: AnnotateOptions | None = None, faces: bool = False,
                      voice: bool = False) -> Explanation:
    """Run the model on the cue numbered `index` (the file's own cue number, or WebVTT identifier) and keep its
    attention; `turn` picks one speaker's turn of a two-speaker cue; `faces`: also the faces in its 8 frames;
    `voice`: also what its voice expresses."""
    prep = prepare_job(Job(Path(video), Path(subs) if subs else None, Path(video).parent), model, options)
    same = [u for u in prep.utterances if str(u.index) == str(index)]
    chosen = [u for u in same if u.turn == turn][:1]
    if not chosen:
        known = [u.index for u in prep.utterances]
        if same:
            raise EmocliError(f"cue {index} has {same[0].turns} turn(s); --turn {turn} is not one of them", 2)
        raise EmocliError(f"{subs or video}: no labelled cue number {index} (cues run {known[0]}..{known[-1]}; "
                          f"sound descriptions and credits are not labelled)", 2)
    one = PreparedJob(prep.job, prep.info, chosen, prep.report)
    (utt, item), = decode_inputs(one, model, vad, audio=voice)
    probs, attention = BatchPredictor(model, 1)([item])
    ex = Explanation(utt, probs[0], attention[0], item)
    if voice:
        ex.voice = SignalReader(True, False, model.device)([item])[0][0]
    if faces and prep.info.has_video:
        from ..media.ffmpeg import sample_frames
        from ..signals.faces import face_frame_size, read_faces
        from ..text.segments import frame_times

        info = prep.info
        ex.face_frames = sample_frames(video, np.array(frame_times(utt.start_s, utt.end_s, 8)),
                                       face_frame_size(info.width, info.height), info.fps, utt.start_s,
                                       utt.end_s - utt.start_s + 1.0 / info.fps)
        if ex.face_frames is not None:
            ex.face = read_faces(ex.face_frames, 8, model.device)[0]
    return ex


def explanation_path(video: Path, index: int | str) -> Path:
    """Where `emocli explain` writes its PNG by default: `<stem>.cue<N>.explain.png` next to the video."""
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in str(index))
    return Path(video).with_name(f"{Path(video).stem}.cue{safe}.explain.png")


def explanation_json(ex: Explanation, index: int | str, model: EmotionModel, faces: bool = False,
                     voice: bool = False) -> dict:
    """What `emocli explain` prints: the label, the probabilities, the attention (and the face's reading)."""
    shown = {"index": index, "emotion": LABELS[int(ex.probabilities.argmax())],
             "probabilities": {k: round(float(v), 4) for k, v in zip(LABELS, ex.probabilities)},
             "attention": ex.attention}
    if faces:
        shown["face"] = ex.face.as_json() if ex.face is not None else None
    if voice:
        shown["voice"] = ex.voice.as_json() if ex.voice is not None else None
    if model.config.dialogue:  # one utterance has no dialogue: say that annotate's label may differ
        shown["dialogue_stage"] = ("not applied: explain shows the model's own probabilities for this utterance; "
                                   "annotate reads them again beside the speakers' last turns when every cue names "
                                   "its speaker")
    return shown


def plot_explanation(ex: Explanation, path: Path, modalities: list[str]) -> Path:
    """PNG: attention between modalities, the sampled frames with their attention weights, probabilities."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    frames = ex.inputs.frames
    face_row = None if ex.face_frames is None else (2 if frames is not None else 1)  # its own row, or the frames'
    rows = 3 if face_row == 2 else 2
    fig = plt.figure(figsize=(13, 6.2 + 2.2 * (rows - 2)), dpi=110)
    grid = fig.add_gridspec(rows, 8, height_ratios=[1.3, 1.0, 1.0][:rows], hspace=0.45, wspace=0.3)
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
    prob_ax.set_title("probabilities" + (f" (voice: {ex.voice.emotion} {ex.voice.confidence:.2f})"
                                         if ex.voice is not None else ""), fontsize=10)
    if ex.voice is not None:  # the voice's own reading, as ticks beside the model's bars
        prob_ax.scatter(ex.voice.probabilities, range(len(LABELS)), marker="|", s=160, color="black", zorder=3)
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
    elif face_row != 1:
        ax = fig.add_subplot(grid[1, :])
        ax.axis("off")
        ax.text(0.5, 0.5, "no frames (the model has no video branch, or the media has no video stream)",
                ha="center", va="center")
    if ex.face_frames is not None:  # --face: each frame with its largest face and that face's expression
        from matplotlib.patches import Rectangle

        for k, frame in enumerate(ex.face_frames):
            ax = fig.add_subplot(grid[face_row, k])
            ax.imshow(frame)
            ax.set_xticks([])
            ax.set_yticks([])
            box = ex.face.boxes[k] if ex.face is not None else None
            probs = ex.face.per_frame[k] if ex.face is not None and ex.face.per_frame else None
            if box is None or probs is None:
                ax.set_title("no face", fontsize=9, color="gray")
                continue
            face_label = LABELS[int(np.argmax(probs))]
            ax.add_patch(Rectangle(box[:2], box[2] - box[0], box[3] - box[1], fill=False, linewidth=1.5,
                                   edgecolor=EMOTION_COLORS[face_label]))
            ax.set_title(f"{face_label} {np.max(probs):.2f}", fontsize=9, color=EMOTION_COLORS[face_label])
        summary = (f"face: {ex.face.emotion} {ex.face.confidence:.2f} over {ex.face.frames}/8 frames"
                   if ex.face is not None and ex.face.frames else "face: none found")
        fig.text(0.5, 0.02, f"{summary} (zero-shot expression, beside the model's label, not part of it)",
                 ha="center", fontsize=9)
    u = ex.utterance
    label = LABELS[int(np.argmax(ex.probabilities))]
    speaker = f"{u.speaker}: " if u.speaker else ""
    fig.suptitle(f"cue {u.index} ({u.start_s:.2f}-{u.end_s:.2f} s) {speaker}{u.text[:90]}\n-> {label} "
                 f"{ex.probabilities.max():.2f}; frame titles: video attention weight per sampled frame",
                 fontsize=10)
    return save_figure(fig, path)
