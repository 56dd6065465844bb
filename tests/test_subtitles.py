"""Subtitle reading: encodings, formats, cleaning, speakers, validation."""

from __future__ import annotations

import pytest

from emocli.errors import EmocliError
from emocli.text.segments import UtteranceStream, dialogue_contexts, format_context, frame_times, make_utterances
from emocli.text.cues import clean_cue_text
from emocli.text.subtitles import Cue, parse_subtitles, read_subtitles, validate_cues
from emocli.text.encoding import decode_subtitle_bytes

SRT = "1\n00:00:01,000 --> 00:00:02,500\nCafé – “quoted” …\nsecond line\n\n2\n00:00:03,000 --> 00:00:04,000\nMONICA: Hi!\n"


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "cp1252"])
def test_every_common_encoding_reads_the_same(tmp_path, encoding):
    text = SRT if encoding != "cp1252" else SRT  # cp1252 holds é, en dash, curly quotes and the ellipsis
    path = tmp_path / "x.srt"
    path.write_bytes(text.encode(encoding))
    subs = read_subtitles(path)
    cues = subs.cues
    assert subs.unreadable == 0
    assert [c.text for c in cues] == ["Café – “quoted” … second line", "Hi!"]
    assert [(c.start_s, c.end_s) for c in cues] == [(1.0, 2.5), (3.0, 4.0)]
    assert cues[1].speaker == "MONICA"


def test_windows_and_old_mac_line_endings():
    for eol in ("\r\n", "\r"):
        cues = parse_subtitles(SRT.replace("\n", eol)).cues
        assert len(cues) == 2 and cues[0].text.endswith("second line")


def test_binary_data_is_refused_with_our_error():
    with pytest.raises(EmocliError, match="binary"):
        decode_subtitle_bytes(bytes(range(256)) * 20)


@pytest.mark.parametrize("raw,text,speaker", [
    ("<i>Hello</i> <b>there</b>", "Hello there", None),
    ("{\\an8}{\\i1}Top line{\\i0}", "Top line", None),
    ("- Are you sure?\n- Yes!", "Are you sure? Yes!", None),
    ("ROSS: We were on a break!", "We were on a break!", "ROSS"),
    ("Rachel Green: No.", "No.", "Rachel Green"),
    ("<v Phoebe>Smelly cat</v>", "Smelly cat", "Phoebe"),
    ("Tom &amp; Jerry", "Tom & Jerry", None),
    ("at 10:30 we meet", "at 10:30 we meet", None),
    ("<font color=\"red\"></font>", "", None),
])
def test_cleaning(raw, text, speaker):
    assert clean_cue_text(raw) == (text, speaker)


def test_webvtt_with_header_notes_settings_and_short_times():
    vtt = ("WEBVTT - a title\n\nNOTE a comment\n\nSTYLE\n::cue { color: red }\n\nintro\n00:01.000 --> 00:02.000 "
           "align:start\n<v Joey>How you doin'?\n\n00:00:03.5 --> 00:00:04.250\nSecond\n")
    subs = parse_subtitles(vtt)
    cues = subs.cues
    assert subs.unreadable == 0 and [c.index for c in cues] == ["intro", 2]
    assert [(c.start_s, c.end_s, c.text, c.speaker) for c in cues] == [
        (1.0, 2.0, "How you doin'?", "Joey"), (3.5, 4.25, "Second", None)]


def test_validation_counts_every_reason():
    cues = [Cue(1, 0.0, 1.0, "a"), Cue(2, 2.0, 2.0, "zero"), Cue(3, 3.0, 2.0, "negative"), Cue(4, 1.5, 2.5, ""),
            Cue(5, 0.5, 1.5, "overlaps 1"), Cue(6, 9.0, 12.0, "clipped"), Cue(7, 10.0, 11.0, "past end"),
            Cue(8, -1.0, 0.4, "negative start"), Cue(9, 5.0, 5.01, "10 ms: as short as a cue may be")]
    valid, report = validate_cues(cues, duration_s=10.0, unreadable=2)
    assert [c.index for c in valid] == [8, 1, 5, 9, 6]
    assert valid[0].start_s == 0.0 and valid[-1].end_s == 10.0 and valid[-1].shown_end_s == 12.0
    assert valid[1].shown_end_s is None
    assert report.total == 11 and report.valid == 5
    assert report.skipped == {"zero or negative length": 2, "empty": 1, "past the end of the media": 1,
                              "with unreadable timing": 2}
    assert report.noted["overlapping"] == 2 and report.noted["clipped at the end of the media"] == 1
    assert "6 of 11 cues skipped" in report.warning()


def test_clean_file_has_no_warning():
    valid, report = validate_cues([Cue(1, 0.0, 1.0, "a"), Cue(2, 1.0, 2.0, "b")], 5.0)
    assert len(valid) == 2 and report.warning() is None


def test_utterance_context_is_previous_cues_most_recent_first():
    cues = [Cue(1, 0, 1, "one", "A"), Cue(2, 1, 2, "two"), Cue(3, 2, 3, "three", "C")]
    utts = make_utterances(cues, context=2)
    assert [u.context for u in utts] == ["", "A: one", "two | A: one"]
    assert make_utterances(cues, context=0)[2].context == ""
    assert format_context([("A", "x")], 0) == ""
    after = make_utterances(cues, context=1, context_after=1)  # a subtitle file is complete: later cues are known
    assert [u.context for u in after] == [" || two", "A: one || C: three", "two"]


@pytest.mark.parametrize("context,after", [(0, 0), (2, 0), (2, 1), (1, 3)])
def test_utterances_of_cues_that_arrive_over_time_are_those_of_the_whole_file(context, after):
    """A transcript streams: each utterance is handed on once the turns after it (its following context) are
    known, and whatever the batches, the utterances are those of the whole file, two-speaker cues included."""
    cues = [Cue(k, k, k + 0.9, f"line {k}", "AB"[k % 2]) for k in range(1, 9)]
    cues[3] = Cue(4, 4, 4.9, "- Yes. - No.")
    plain = make_utterances(cues)
    contexts = dialogue_contexts([(u.speaker, u.text) for u in plain], context, after)
    for cuts in [(), (1,), (3, 4), (1, 2, 3, 5, 8), (0, 7)]:
        stream, out, known = UtteranceStream(context, after), [], 0
        for a, b in zip((0, *cuts), (*cuts, len(cues))):
            got = stream.add(cues[a:b])
            known += sum(len(c.speech_turns()) for c in cues[a:b])
            assert len(out) + len(got) == max(len(out), known - after)  # held back only for what follows
            out += got
        out += stream.close()
        assert [(u.text, u.context) for u in out] == [(u.text, c) for u, c in zip(plain, contexts)]
        assert out == make_utterances(cues, context, after)


def test_frame_times_are_uniform_inside_the_cue():
    times = frame_times(10.0, 12.0, 8)
    assert len(times) == 8 and times[0] == pytest.approx(10.125) and times[-1] == pytest.approx(11.875)
    assert all(b - a == pytest.approx(0.25) for a, b in zip(times, times[1:]))
