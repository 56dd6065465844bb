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
    shown_end_s: float | None = None  # the subtitle file's end time where end_s was clipped to the media


FOLLOWING_SEPARATOR = " || "


def _turns(turns: list[tuple[str | None, str]]) -> str:
    return CONTEXT_SEPARATOR.join(f"{spk}: {txt}" if spk else txt for spk, txt in turns)


def format_context(previous: list[tuple[str | None, str]], n: int,
                   following: list[tuple[str | None, str]] | None = None, n_after: int = 0) -> str:
    """Dialogue context as one string: the last `n` previous (speaker, text) turns, most recent first, then
    (after " || ") the next `n_after` turns, nearest first. "" when there is none. Truncation (from the end)
    therefore drops the farthest turns first."""
    before = _turns(previous[-n:][::-1]) if n > 0 and previous else ""
    after = _turns(following[:n_after]) if n_after > 0 and following else ""
    if not after:
        return before
    return f"{before}{FOLLOWING_SEPARATOR}{after}"


def dialogue_contexts(turns: list[tuple[str | None, str]], n: int, n_after: int = 0) -> list[str]:
    """The context string of every turn of one dialogue (or one subtitle file): its `n` previous and `n_after`
    following turns, as `format_context` writes them."""
    return [format_context(turns[max(0, i - n):i], n, turns[i + 1:i + 1 + n_after], n_after)
            for i in range(len(turns))]


def make_utterances(cues: list[Cue], context: int = 0, context_after: int = 0) -> list[Utterance]:
    """One utterance per (valid, time-sorted) cue; context = the previous `context` cues of the same file and,
    with `context_after`, the next ones (a subtitle file is complete, so later cues are known)."""
    contexts = dialogue_contexts([(c.speaker, c.text) for c in cues], context, context_after)
    return [Utterance(cue.index, cue.start_s, cue.end_s, cue.text, cue.speaker, ctx, cue.shown_end_s)
            for cue, ctx in zip(cues, contexts)]


def frame_times(start_s: float, end_s: float, n: int = 8) -> list[float]:
    """`n` timestamps uniformly spaced inside [start, end]: the centres of n equal slices."""
    step = (end_s - start_s) / n
    return [start_s + step * (k + 0.5) for k in range(n)]
