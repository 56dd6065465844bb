"""The dialogue stage: each utterance's probabilities read again beside the dialogue's, speaker by speaker.

A text model reads an utterance with a few neighbouring turns as context, but it cannot see how the same speaker
and the others felt over the last turns. This stage adds that, over the model's own outputs. Features per
utterance, from the model's log-probabilities: its own; the previous and the next utterance's; the mean over the
speaker's own last 3 turns and over the other speakers' last 3 (within the dialogue's last 12 utterances); and
three flags (first, last, speaker changed). A multinomial logistic regression fitted on MELD train (C 0.1, no
class weights) maps them to new probabilities; it is fitted by training/dialogue.py (`emocli dialogue`) and
stored in the checkpoint's config.json as `dialogue` (`weight`, one row of FEATURES numbers per label, and
`bias`), so the arithmetic can be read there. This module applies it.

It needs to know who speaks. MELD says so for every utterance; in annotate the stage runs only when every spoken
utterance of a file has a speaker ("NAME:" prefixes, WebVTT voices, ASS names), and otherwise the model's own
probabilities stand and the output JSON says why. Without speakers the same features (one shared history)
measured nothing on MELD dev (training/results/selection.md, section 10), so no speaker-blind variant is offered.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

import numpy as np

from ..errors import UsageError
from ..labels import LABELS

HISTORY = 12  # how far back (utterances of the same dialogue) the speakers' recent turns are looked for
TURNS = 3  # the speaker's own last turns, and the others' last turns, that are averaged
FEATURES = 5 * len(LABELS) + 3
C = 0.1  # the logistic regression's inverse regularisation strength (fixed beforehand; selection.md section 10)


def _log_probs(probs: np.ndarray) -> np.ndarray:
    return np.log(np.clip(np.asarray(probs, dtype=np.float64), 1e-6, 1.0))


def dialogue_features(probs: np.ndarray, dialogues: Sequence, speakers: Sequence[str]) -> np.ndarray:
    """[N, FEATURES] for utterances in dialogue order: `dialogues[i]` tells which dialogue utterance i belongs to
    (a subtitle file is one), `speakers[i]` who says it (compared case-insensitively)."""
    logp = _log_probs(probs)
    n, k = logp.shape
    who = [str(s).strip().casefold() for s in speakers]
    out = np.zeros((n, FEATURES), dtype=np.float64)
    for i in range(n):
        prev_ok = i > 0 and dialogues[i - 1] == dialogues[i]
        next_ok = i + 1 < n and dialogues[i + 1] == dialogues[i]
        history = [j for j in range(max(0, i - HISTORY), i) if dialogues[j] == dialogues[i]]
        own = [j for j in history if who[j] == who[i]][-TURNS:]
        other = [j for j in history if who[j] != who[i]][-TURNS:]
        out[i, :k] = logp[i]
        if prev_ok:
            out[i, k:2 * k] = logp[i - 1]
        if next_ok:
            out[i, 2 * k:3 * k] = logp[i + 1]
        if own:
            out[i, 3 * k:4 * k] = logp[own].mean(0)
        if other:
            out[i, 4 * k:5 * k] = logp[other].mean(0)
        out[i, 5 * k:] = [not prev_ok, not next_ok, prev_ok and who[i - 1] != who[i]]
    return out


def apply_dialogue(probs: np.ndarray, dialogues: Sequence, speakers: Sequence[str], layer: dict) -> np.ndarray:
    """The stage's probabilities [N, 7] for a model's probabilities over utterances in dialogue order."""
    if len(probs) == 0:
        return np.asarray(probs, dtype=np.float32)
    logits = dialogue_features(probs, dialogues, speakers) @ np.asarray(layer["weight"]).T + np.asarray(layer["bias"])
    logits -= logits.max(axis=1, keepdims=True)
    out = np.exp(logits)
    return (out / out.sum(axis=1, keepdims=True)).astype(np.float32)


def unknown_speakers(speakers: Sequence[str | None]) -> int:
    """How many of these utterances say nothing about who speaks."""
    return sum(1 for s in speakers if s is None or not str(s).strip())


def check_dialogue(layer, where: str) -> None:
    """Refuse a `dialogue` entry that is not a weight row of FEATURES finite numbers per label and a bias each."""

    def numbers(row, n: int) -> bool:
        return isinstance(row, list) and len(row) == n and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in row)

    ok = isinstance(layer, dict) and isinstance(layer.get("weight"), list) and len(layer["weight"]) == len(LABELS) \
        and all(numbers(row, FEATURES) for row in layer["weight"]) and numbers(layer.get("bias"), len(LABELS))
    if not ok:
        raise UsageError(f"{where}: 'dialogue' must hold 'weight' ({len(LABELS)} rows of {FEATURES} numbers) and "
                         f"'bias' ({len(LABELS)} numbers)")


#: With speakers found by voice, the share of utterances without voice (unassigned) the stage still runs with, all
#: read as one speaker: on MELD dev, merging speakers costs the stage little (all of a dialogue's speakers merged
#: into one: +0.002 of its +0.010), splitting them costs more (training/results/dialogue-speaker-errors.md).
MAX_UNASSIGNED = 0.2
UNASSIGNED = "(unassigned)"


def read_in_dialogue(rows: list, layer: dict) -> str:
    """annotate: apply the stage to one file's rows (outputs.result.Prediction, in the file's order; the
    unlabelled non-speech ones are skipped), replacing their probabilities, when every labelled row has a speaker:
    named by the subtitles, or found by voice (--diarize; then up to MAX_UNASSIGNED of them may have none, read
    as one speaker). Returns what happened, for the output JSON: which speakers the stage used."""
    spoken = [r for r in rows if r.labelled]
    if not spoken:
        return "not applied: no labelled utterances"
    sources = Counter(getattr(r, "speaker_source", None) for r in spoken if r.speaker)
    unknown = unknown_speakers([r.speaker for r in spoken])
    by_voice = sources.get("voice", 0)
    if unknown and not (by_voice and unknown <= MAX_UNASSIGNED * len(spoken)):
        why = (f"{unknown} of {len(spoken)} utterances have no speaker, more than {MAX_UNASSIGNED:.0%} (they "
               f"have no voice to find it by)" if by_voice else
               f"{unknown} of {len(spoken)} utterances name no speaker (it needs \"NAME:\" prefixes, WebVTT "
               f"voices or ASS names on every cue, or --diarize)")
        return f"not applied: {why}"
    speakers = [r.speaker if r.speaker else UNASSIGNED for r in spoken]
    probs = apply_dialogue(np.stack([r.probabilities for r in spoken]), [0] * len(spoken), speakers, layer)
    for r, p in zip(spoken, probs):
        r.probabilities = p
    if not by_voice:
        return f"applied to {len(spoken)} utterances"
    used = [f"{sources.get('subtitles', 0)} named by the subtitles", f"{by_voice} found by voice"]
    used += [f"{unknown} without voice, read as one speaker"] if unknown else []
    return f"applied to {len(spoken)} utterances (speakers: {', '.join(used)})"
