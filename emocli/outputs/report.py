"""Human-facing views of a result: the per-video summary table and the emotion timeline plot."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from ..files import save_figure
from ..labels import EMOTION_COLORS, LABELS
from ..text.subtitles import SubtitleReport
from .result import Prediction, VideoResult, output_path

UNKNOWN_SPEAKER = "(no speaker)"


def summary_text(result: VideoResult, report: SubtitleReport | None = None, max_speakers: int = 8) -> str:
    """A short table: utterances per emotion, each speaker's dominant emotion, and skipped cues by reason."""
    preds = result.labelled
    counts = Counter(p.emotion for p in preds)
    n = max(len(preds), 1)
    lines = [f"{Path(result.video).name}: {len(preds)} utterances"]
    lines.append("  " + "  ".join(f"{label} {counts[label]} ({100 * counts[label] / n:.0f}%)"
                                  for label in LABELS if counts[label]))
    speakers: dict[str, Counter] = {}
    for p in preds:
        speakers.setdefault(p.speaker or UNKNOWN_SPEAKER, Counter())[p.emotion] += 1
    ranked = sorted(speakers.items(), key=lambda kv: -sum(kv[1].values()))
    if len(ranked) > 1 or (ranked and ranked[0][0] != UNKNOWN_SPEAKER):
        width = max(len(name) for name, _ in ranked[:max_speakers])
        lines.append("  dominant emotion per speaker:")
        for name, c in ranked[:max_speakers]:
            emotion, k = c.most_common(1)[0]
            lines.append(f"    {name:<{width}}  {emotion:<8} {k}/{sum(c.values())}")
        if len(ranked) > max_speakers:
            lines.append(f"    ... and {len(ranked) - max_speakers} more speakers")
    if result.voices:
        heard = [p for p in preds if p.voice is not None]
        agree = sum(1 for p in heard if p.voice.emotion == p.emotion)
        lines.append(f"  text and voice agree on {agree} of {len(heard)} utterances with voice"
                     + (f" ({len(preds) - len(heard)} without voice)" if len(heard) < len(preds) else ""))
    if report is not None and report.skipped:
        lines.append("  skipped cues: " + ", ".join(f"{k} {why}" for why, k in sorted(report.skipped.items())))
    if report is not None and report.non_speech:
        lines.append("  not speech (unlabelled): " + ", ".join(f"{k} {why}" for why, k in
                                                             sorted(report.non_speech.items())))
    return "\n".join(lines)


def row_line(p: Prediction) -> str:
    """One row for `annotate --verbose`: times, label and confidence (or why it is unlabelled), speaker, text."""
    label = f"{p.emotion:<8} {p.confidence:.2f}" if p.labelled else f"({p.non_speech})"[:13].ljust(13)
    return f"  {p.start_s:8.2f}-{p.end_s:8.2f}  {label}  {(p.speaker + ': ') if p.speaker else ''}{p.text[:80]}"


def plot_path(video: Path, output_dir: Path, stem: str | None = None) -> Path:
    return output_path(video, output_dir, "png", stem)


def plot_result(result: VideoResult, path: Path, max_speakers: int = 10) -> Path:
    """`plot_figure`, saved as a PNG at `path`."""
    return save_figure(plot_figure(result, max_speakers), path)


def plot_figure(result: VideoResult, max_speakers: int = 10):
    """The figure: the emotion timeline (one lane per emotion, opacity = confidence; with --face and --voice a lane
    each of the faces' and the voice's readings, coloured by emotion) over a per-speaker bar chart."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    preds = result.labelled
    end = max([p.end_s for p in preds] + [result.duration_s or 0.0, 1.0])
    fig, (lanes, bars) = plt.subplots(2, 1, figsize=(12, 7.5), dpi=110,
                                      gridspec_kw={"height_ratios": [1.2, 1.0], "hspace": 0.42})
    for p in preds:
        lane = LABELS.index(p.emotion)
        lanes.broken_barh([(p.start_s, max(p.end_s - p.start_s, end / 2000))], (lane - 0.4, 0.8),
                          facecolors=EMOTION_COLORS[p.emotion], alpha=0.25 + 0.75 * p.confidence, linewidth=0)
    names = list(LABELS)
    signals = [("face", lambda p: p.face if p.face is not None and p.face.emotion is not None else None)] \
        if result.faces else []
    signals += [("voice", lambda p: p.voice)] if result.voices else []
    for name, reading in signals:  # one more lane per signal, each utterance's reading in its emotion's colour
        lane = len(names)
        names.append(name)
        for p in result.predictions:
            r = reading(p)
            if r is not None:
                lanes.broken_barh([(p.start_s, max(p.end_s - p.start_s, end / 2000))], (lane - 0.4, 0.8),
                                  facecolors=EMOTION_COLORS[r.emotion], alpha=0.25 + 0.75 * r.confidence,
                                  linewidth=0)
    if signals:
        lanes.axhline(len(LABELS) - 0.5, color="0.5", linewidth=0.8)
    lanes.set_yticks(range(len(names)), names)
    lanes.set_ylim(-0.6, len(names) - 0.4)
    lanes.set_xlim(0, end)
    lanes.invert_yaxis()
    minutes = end > 180
    if minutes:
        lanes.xaxis.set_major_formatter(FuncFormatter(lambda t, _: f"{int(t // 60)}:{int(t % 60):02d}"))
    lanes.set_xlabel("time (min:s)" if minutes else "time (s)")
    lanes.grid(axis="x", alpha=0.3)
    lanes.set_title(f"{Path(result.video).name}: emotion per utterance (opacity = confidence)", fontsize=11)

    speakers: dict[str, Counter] = {}
    for p in preds:
        speakers.setdefault(p.speaker or UNKNOWN_SPEAKER, Counter())[p.emotion] += 1
    ranked = sorted(speakers.items(), key=lambda kv: -sum(kv[1].values()))[:max_speakers]
    names = [name for name, _ in ranked]
    left = np.zeros(len(names))
    for label in LABELS:
        values = np.array([c[label] for _, c in ranked], dtype=float)
        bars.barh(names, values, left=left, color=EMOTION_COLORS[label], label=label)
        left += values
    bars.invert_yaxis()
    bars.xaxis.set_major_locator(MaxNLocator(integer=True))
    bars.set_xlabel("utterances")
    bars.set_title("emotions per speaker" + (f" (top {max_speakers})" if len(speakers) > max_speakers else ""),
                   fontsize=11)
    bars.legend(handles=[Patch(color=EMOTION_COLORS[x], label=x) for x in LABELS], ncol=7, fontsize=9,
                loc="upper center", bbox_to_anchor=(0.5, -0.18), frameon=False)
    return fig
