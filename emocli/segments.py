"""Cues -> utterances: the unit the model labels, with its dialogue context (previous utterances)."""

from __future__ import annotations

from dataclasses import dataclass

from .subtitles import Cue

CONTEXT_SEPARATOR = " | "


@dataclass(frozen=True)
class Utterance:
    """One utterance to label: times in seconds, text, speaker, and its previous utterances as context text."""

    index: int
    start_s: float
    end_s: float
    text: str
    speaker: str | None = None
    context: str = ""


def format_context(previous: list[tuple[str | None, str]], n: int) -> str:
    """The last `n` previous (speaker, text) turns, most recent first, as one string ("" when n == 0)."""
    if n <= 0 or not previous:
        return ""
    turns = previous[-n:][::-1]  # most recent first, so truncation drops the oldest turns
    return CONTEXT_SEPARATOR.join(f"{spk}: {txt}" if spk else txt for spk, txt in turns)


def make_utterances(cues: list[Cue], context: int = 0) -> list[Utterance]:
    """One utterance per (valid, time-sorted) cue; context = the previous `context` cues of the same file."""
    out = []
    for i, cue in enumerate(cues):
        previous = [(c.speaker, c.text) for c in cues[max(0, i - context):i]]
        out.append(Utterance(cue.index, cue.start_s, cue.end_s, cue.text, cue.speaker,
                             format_context(previous, context)))
    return out


def frame_times(start_s: float, end_s: float, n: int = 8) -> list[float]:
    """`n` timestamps uniformly spaced inside [start, end]: the centres of n equal slices."""
    step = (end_s - start_s) / n
    return [start_s + step * (k + 0.5) for k in range(n)]
