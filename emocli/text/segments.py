"""Cues -> utterances: the unit the model labels, with its dialogue context (previous utterances)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from .cues import share_time
from .subtitles import Cue

CONTEXT_SEPARATOR = " | "


@dataclass(frozen=True)
class Utterance:
    """One utterance to label: a cue, or one speaker's turn of a two-speaker cue; times in seconds (those to
    decode, and `shown_*`, the subtitle file's, for the outputs), text, speaker, and its context text."""

    index: int | str
    start_s: float
    end_s: float
    text: str
    speaker: str | None = None
    context: str = ""
    shown_end_s: float | None = None  # the subtitle file's end time where end_s was clipped to the media
    position: int = 0  # the cue's place in the file
    turn: int = 1  # 1-based turn within the cue
    turns: int = 1  # how many turns the cue has
    shown_start_s: float | None = None  # the turn's start in the file's timing, where it differs from start_s
    removed: tuple[str, ...] = ()  # sound descriptions taken out of the cue's text
    asr: tuple[float, float] | None = None  # a transcribed cue's (confidence, no-speech probability)

    @property
    def out_start_s(self) -> float:
        return self.start_s if self.shown_start_s is None else self.shown_start_s

    @property
    def out_end_s(self) -> float:
        return self.end_s if self.shown_end_s is None else self.shown_end_s


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


def cue_utterances(cue: Cue) -> list[Utterance]:
    """A cue's utterances without context: one per speaker turn, the cue's time shared between them in
    proportion to their text (`cues.share_time`); none for a non-speech cue."""
    turns = cue.speech_turns()
    texts = [t.text for t in turns]
    decode = share_time(cue.start_s, cue.end_s, texts)
    shown = share_time(cue.start_s, cue.shown_end_s, texts) if cue.shown_end_s is not None else decode
    out = []
    for k, (turn, (start_s, end_s), (shown_start, shown_end)) in enumerate(zip(turns, decode, shown), start=1):
        out.append(Utterance(cue.index, start_s, end_s, turn.text, turn.speaker, "",
                             shown_end if cue.shown_end_s is not None else None, cue.position, k, len(turns),
                             shown_start if shown_start != start_s else None, cue.removed, cue.asr))
    return out


def make_utterances(cues: list[Cue], context: int = 0, context_after: int = 0) -> list[Utterance]:
    """The utterances of (valid, time-sorted) cues: one per cue, or per turn of a two-speaker cue; context =
    the previous `context` turns of the same file and, with `context_after`, the next ones (a subtitle file is
    complete, so later cues are known). Non-speech cues give none and are not context."""
    stream = UtteranceStream(context, context_after)
    return stream.add(cues) + stream.close()


class UtteranceStream:
    """`make_utterances` for cues that arrive in order over time (a transcript while it is transcribed): `add`
    returns the utterances whose following context is known by now, `close` the rest; together they are
    exactly what `make_utterances` gives for all the cues at once."""

    def __init__(self, context: int = 0, context_after: int = 0) -> None:
        self.context, self.context_after = context, context_after
        self._plain: list[Utterance] = []
        self._done = 0

    def add(self, cues: list[Cue]) -> list[Utterance]:
        self._plain += [u for cue in cues for u in cue_utterances(cue)]
        return self._take(len(self._plain) - self.context_after)

    def close(self) -> list[Utterance]:
        return self._take(len(self._plain))

    def _take(self, upto: int) -> list[Utterance]:
        n, after, plain = self.context, self.context_after, self._plain

        def turns(a: int, b: int) -> list[tuple[str | None, str]]:
            return [(u.speaker, u.text) for u in plain[max(0, a):b]]

        out = [replace(plain[i], context=format_context(turns(i - n, i), n, turns(i + 1, i + 1 + after), after))
               for i in range(self._done, max(self._done, upto))]
        self._done = max(self._done, upto)
        return out


def frame_times(start_s: float, end_s: float, n: int = 8) -> list[float]:
    """`n` timestamps uniformly spaced inside [start, end]: the centres of n equal slices."""
    step = (end_s - start_s) / n
    return [start_s + step * (k + 0.5) for k in range(n)]
