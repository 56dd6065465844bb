"""Subtitle files as people have them: sound cues and credits, two-speaker lines, the file's own cue numbers,
rolling auto-captions, ASS/SSA, zero-length cues, invisible characters, unsupported formats, sibling names.
Each fixture is a small copy of a shape found in real files (see issue 16)."""

from __future__ import annotations

import pytest

from emocli.text.cues import CREDIT, MUSIC, SOUND, clean_cue, share_time
from emocli.errors import EmocliError
from emocli.text.segments import make_utterances
from emocli.text.subtitles import SIGN, find_subtitles, parse_subtitles, read_subtitles, validate_cues


def srt(*blocks: tuple) -> str:
    """SRT text from (number, start, end, text) blocks, the numbers as given."""
    return "\n".join(f"{n}\n{a} --> {b}\n{t}\n" for n, a, b, t in blocks)


# --- 1. sound descriptions, music, credits --------------------------------------------------------------------

@pytest.mark.parametrize("raw,kind", [
    ("[Music]", SOUND), ("(laughs)", SOUND), ("[siren wailing]", SOUND), ("(LAUGHTER)", SOUND),
    ("- [gasps]\n- (screams)", SOUND), ("<i>[door slams]</i>", SOUND), ("♪ ♪", MUSIC),
    ("♪ Happy birthday to you ♪", MUSIC), ("♪ And I will always\nlove you ♪", MUSIC), ("# Jingle bells #", MUSIC),
    ("www.OpenSubtitles.org", CREDIT), ("Downloaded From www.example.org", CREDIT), ("Translation: Ana Kovač", CREDIT),
    ("Subtitles by explosiveskull", CREDIT), ("Synced and corrected by VitoSilans", CREDIT),
    ("Support us and become VIP member\nto remove all ads from www.example.org", CREDIT),
    ("http://subs.example.net/show/123", CREDIT), ("Prevod: Marko", CREDIT),
])
def test_non_speech_cues_are_recognised(raw, kind):
    cue = clean_cue(raw)
    assert cue.non_speech == kind and cue.turns == ()


@pytest.mark.parametrize("raw,text,removed", [
    ("(laughs) You're kidding.", "You're kidding.", ["(laughs)"]),
    ("[sighs] I know. [door closes]", "I know.", ["[sighs]", "[door closes]"]),
    ("Well, (WHISPERING) come here.", "Well, come here.", ["(WHISPERING)"]),
    ("He said (twice) no.", "He said (twice) no.", []),  # mid-sentence parentheses in lower case are speech
    ("♪ La la la ♪\nWhat is that song?", "What is that song?", ["♪ La la la ♪"]),
    ("I saw it on www.example.com yesterday, it was great.", "I saw it on www.example.com yesterday, it was great.",
     []),  # an address inside a sentence is speech
])
def test_descriptions_inside_speech_are_removed_from_the_model_text(raw, text, removed):
    cue = clean_cue(raw)
    assert cue.non_speech is None and cue.text == text and list(cue.removed) == removed


def test_credit_is_not_a_speaker_and_keep_sound_cues_labels_everything():
    assert clean_cue("Translation: Ana").turns == ()
    kept = clean_cue("(laughs)", keep_sound_cues=True)
    assert kept.non_speech is None and kept.text == "(laughs)"
    assert clean_cue("ROSS: (laughs) Fine.").turns[0].speaker == "ROSS"


# --- 2. two-speaker dash cues ---------------------------------------------------------------------------------

@pytest.mark.parametrize("raw,turns", [
    ("- You're on the air.\n- Right now?", ["You're on the air.", "Right now?"]),
    ("-Yes.\n-No.", ["Yes.", "No."]),
    ("You're on the air.\n- Right now?", ["You're on the air.", "Right now?"]),  # a dash on the second line only
    ("– Oui.\n– Non.", ["Oui.", "Non."]),  # en dashes (French, Scandinavian files)
    ("- Yes. - No.", ["Yes.", "No."]),  # both turns on one line
    ("- I told you that\nyou'd be late.\n- No.", ["I told you that you'd be late.", "No."]),
    ("- Just one line.", ["Just one line."]),
    ("It's -5 degrees\n-10 tomorrow", ["It's -5 degrees -10 tomorrow"]),  # minus signs are not dashes
    ("A well-\nknown fact", ["A well- known fact"]),
    (">> Good evening.\n>> Thanks, Tom.", ["Good evening.", "Thanks, Tom."]),  # broadcast captions
])
def test_dash_turns(raw, turns):
    assert [t.text for t in clean_cue(raw).turns] == turns


def test_turns_get_their_own_speakers_and_share_the_cue_time_by_text_length():
    cue = clean_cue("- JOEY: How you doin'?\n- RACHEL: Fine.")
    assert [(t.speaker, t.text) for t in cue.turns] == [("JOEY", "How you doin'?"), ("RACHEL", "Fine.")]
    news = clean_cue("&gt;&gt; ANNA: Breaking news.\n&gt;&gt; TOM: Go ahead.")
    assert [(t.speaker, t.text) for t in news.turns] == [("ANNA", "Breaking news."), ("TOM", "Go ahead.")]
    spans = share_time(10.0, 13.0, ["aaaa", "bb"])
    assert spans == [(10.0, 12.0), (12.0, 13.0)]


def test_a_two_speaker_cue_is_two_utterances_with_one_cue_number():
    subs = parse_subtitles(srt((31, "00:02:49,683", "00:02:52,618", "- You're on the air.\n- Right now?")))
    utts = make_utterances(subs.cues, context=1)
    assert [(u.index, u.turn, u.turns, u.text) for u in utts] == [
        (31, 1, 2, "You're on the air."), (31, 2, 2, "Right now?")]
    assert utts[0].start_s == pytest.approx(169.683) and utts[1].end_s == pytest.approx(172.618)
    assert utts[0].end_s == utts[1].start_s == pytest.approx(169.683 + 2.935 * 15 / 24)  # 15 and 9 letters
    assert utts[1].context == "You're on the air."


# --- 3. the file's own cue numbers ----------------------------------------------------------------------------

def test_srt_cue_numbers_are_kept_from_an_excerpt_and_from_zero():
    excerpt = parse_subtitles(srt((412, "00:30:01,000", "00:30:02,000", "Later."),
                                  (413, "00:30:03,000", "00:30:04,000", "Much later.")))
    assert [c.index for c in excerpt.cues] == [412, 413]
    zero = parse_subtitles(srt((0, "00:00:01,000", "00:00:02,000", "First."), (1, "00:00:03,000", "00:00:04,000",
                                                                              "Second.")))
    assert [c.index for c in zero.cues] == [0, 1] and [c.position for c in zero.cues] == [1, 2]


def test_srt_without_numbers_or_a_blank_line_between_cues():
    text = ("00:00:01,000 --> 00:00:02,000\nNo number here.\n\n7\n00:00:03,000 --> 00:00:04,000\nSeven.\n"
            "8\n00:00:05,000 --> 00:00:06,000\nEight, after a lost blank line.\n")
    cues = parse_subtitles(text).cues
    assert [(c.index, c.text) for c in cues] == [(1, "No number here."), (7, "Seven."),
                                                 (8, "Eight, after a lost blank line.")]


def test_webvtt_identifiers_are_the_index_else_the_position():
    text = "WEBVTT\n\nintro-1\n00:01.000 --> 00:02.000\nHi.\n\n00:03.000 --> 00:04.000\nNo id.\n\n" \
           "42\n00:05.000 --> 00:06.000\nForty-two.\n"
    assert [c.index for c in parse_subtitles(text).cues] == ["intro-1", 2, 42]


def test_webvtt_cues_separated_by_lines_of_spaces_keep_their_identifiers():
    text = "WEBVTT\n\n1\n00:01.000 --> 00:02.000\nHello\n \n2\n00:03.000 --> 00:04.000\nBye\n"
    assert [(c.index, c.text) for c in parse_subtitles(text).cues] == [(1, "Hello"), (2, "Bye")]


# --- 4. YouTube auto-captions ---------------------------------------------------------------------------------

YOUTUBE = """WEBVTT
Kind: captions
Language: en

00:00:00.160 --> 00:00:01.189 align:start position:0%
 
Today<00:00:00.400><c> I'm</c><00:00:00.560><c> going</c>

00:00:01.189 --> 00:00:01.199 align:start position:0%
Today I'm going
 

00:00:01.199 --> 00:00:03.000 align:start position:0%
Today I'm going
to<00:00:01.500><c> show</c><00:00:01.700><c> you</c>

00:00:03.000 --> 00:00:03.010 align:start position:0%
to show you
 

00:00:03.010 --> 00:00:05.000 align:start position:0%
to show you
how<00:00:03.300><c> to</c><00:00:03.600><c> cook</c>

00:00:05.000 --> 00:00:05.010 align:start position:0%
how to cook
 
"""


def test_youtube_auto_captions_give_each_phrase_once_with_its_real_timing():
    subs = parse_subtitles(YOUTUBE)
    assert [(c.start_s, c.end_s, c.text) for c in subs.cues] == [
        (0.16, 1.189, "Today I'm going"), (1.199, 3.0, "to show you"), (3.01, 5.0, "how to cook")]
    assert subs.notes["rolling auto-caption repeats collapsed"] == 5  # 3 flash cues dropped, 2 carried lines


def test_a_repeated_line_in_ordinary_subtitles_is_kept():
    text = srt((1, "00:00:01,000", "00:00:02,000", "No."), (2, "00:00:03,000", "00:00:04,000", "No."),
               (3, "00:00:05,000", "00:00:06,000", "Yes."), (4, "00:00:07,000", "00:00:08,000", "Maybe."),
               (5, "00:00:09,000", "00:00:10,000", "Fine."), (6, "00:00:11,000", "00:00:12,000", "Go."))
    subs = parse_subtitles(text)
    assert [c.text for c in subs.cues] == ["No.", "No.", "Yes.", "Maybe.", "Fine.", "Go."] and not subs.notes


# --- 6. ASS/SSA -----------------------------------------------------------------------------------------------

ASS = r"""[Script Info]
ScriptType: v4.00+

[V4+ Styles]
Format: Name, Fontname, Fontsize, PrimaryColour
Style: Default,Arial,20,&H00FFFFFF
Style: Signs,Arial,20,&H00FFFFFF

[Events]
Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text
Comment: 0,0:00:00.00,0:00:05.00,Default,,0,0,0,,a note for the typesetter
Dialogue: 0,0:00:01.00,0:00:03.50,Default,Mary,0,0,0,,{\an8}{\i1}Well,{\i0} I never\Nsaid that, Tom.
Dialogue: 0,0:00:04.00,0:00:05.00,Default,,0,0,0,,- Who?\n- You!
Dialogue: 0,0:00:05.50,0:00:06.00,Signs,,0,0,0,,{\pos(10,10)}BAKERY
Dialogue: 0,0:00:06.00,0:00:07.00,Default,Tom,0,0,0,,Non\hbreaking{\p1}m 0 0 l 100 0 100 100{\p0}
"""


def test_ass_dialogue_lines_by_their_format_line():
    subs = parse_subtitles(ASS)
    assert subs.format == "ass" and subs.unreadable == 0
    got = [(c.index, c.start_s, c.end_s, c.speaker, c.text, c.non_speech) for c in subs.cues]
    assert got == [(1, 1.0, 3.5, "Mary", "Well, I never said that, Tom.", None),
                   (2, 4.0, 5.0, None, "Who? You!", None),
                   (3, 5.5, 6.0, None, "BAKERY", SIGN),
                   (4, 6.0, 7.0, "Tom", "Non breaking", None)]
    assert [t.text for t in subs.cues[1].turns] == ["Who?", "You!"]


def test_ssa_v4_with_marked_column(tmp_path):
    ssa = ("[Script Info]\nScriptType: v4.00\n\n[Events]\n"
           "Format: Marked, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text\n"
           "Dialogue: Marked=0,0:00:01.00,0:00:02.00,*Default,Bob,0000,0000,0000,,Hello, world\n")
    path = tmp_path / "old.ssa"
    path.write_text(ssa, encoding="utf-8")
    cues = read_subtitles(path).cues
    assert [(c.speaker, c.text, c.start_s) for c in cues] == [("Bob", "Hello, world", 1.0)]


@pytest.mark.parametrize("text,what", [
    ("{1}{25}Hello|there\n{30}{60}Bye\n", "MicroDVD"), ("<SAMI><BODY><SYNC Start=0>Hi</SAMI>", "SAMI"),
    ('<?xml version="1.0"?>\n<tt xmlns="http://www.w3.org/ns/ttml"><body/></tt>', "TTML"),
    ("0:00:01.000,0:00:02.000\nHello\n", "SBV"),
])
def test_a_format_emocli_does_not_read_says_so(tmp_path, text, what):
    path = tmp_path / "x.sub"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(EmocliError, match=what) as caught:
        read_subtitles(path)
    assert "no cues" not in caught.value.message and str(path) in caught.value.message


def test_image_subtitle_files_are_named_as_such(tmp_path):
    path = tmp_path / "movie.sup"
    path.write_bytes(b"PG" + bytes(64))
    with pytest.raises(EmocliError, match="PGS"):
        read_subtitles(path)


# --- 7. zero-length cues --------------------------------------------------------------------------------------

def test_zero_length_cues_end_at_the_next_cue_with_mm_ss_times():
    text = srt((1, "00:05.000", "00:05.000", "Merhaba."), (2, "00:07.500", "00:07.500", "Nasılsın?"),
               (3, "00:20.000", "00:20.000", "İyiyim."))
    subs = parse_subtitles(text)
    assert [(c.start_s, c.end_s) for c in subs.cues] == [(5.0, 7.5), (7.5, 12.5), (20.0, 25.0)]
    assert subs.notes["zero-length cues timed to the next cue (at most 5 s)"] == 3
    valid, report = validate_cues(subs.cues, 30.0)
    report.noted.update(subs.notes)
    assert len(valid) == 3 and "timed to the next cue" in report.warning()


def test_a_few_zero_length_cues_are_still_skipped():
    text = srt((1, "00:00:01,000", "00:00:02,000", "a"), (2, "00:00:03,000", "00:00:03,000", "b"),
               (3, "00:00:04,000", "00:00:05,000", "c"))
    valid, report = validate_cues(parse_subtitles(text).cues, 10.0)
    assert [c.text for c in valid] == ["a", "c"] and report.skipped == {"zero or negative length": 1}


# --- 8. invisible characters ----------------------------------------------------------------------------------

def test_hard_spaces_and_bidi_controls_are_removed():
    assert clean_cue("\u202bשלום\u202c\u200f!").text == "שלום!"
    assert clean_cue("Hi\\hthere\u00a0you\u200e").text == "Hi there you"


# --- validation and sibling files -----------------------------------------------------------------------------

def test_non_speech_cues_are_kept_and_counted_in_the_warning():
    text = srt((5, "00:00:01,000", "00:00:02,000", "[Music]"), (6, "00:00:03,000", "00:00:04,000", "Hello."),
               (7, "00:00:05,000", "00:00:06,000", "www.example.org"))
    valid, report = validate_cues(parse_subtitles(text).cues, 10.0)
    assert [(c.index, c.non_speech) for c in valid] == [(5, SOUND), (6, None), (7, CREDIT)]
    assert report.valid == 1 and report.non_speech == {SOUND: 1, CREDIT: 1}
    assert "2 cues not speech, kept unlabelled" in report.warning()


def test_sibling_subtitles_in_every_format_and_with_language_tags(tmp_path):
    def found(video: str, *names: str) -> str | None:
        folder = tmp_path / video.replace(".", "_")
        folder.mkdir()
        for name in (video, *names):
            (folder / name).write_text("")
        hit = find_subtitles(folder / video)
        return hit.name if hit else None

    assert found("a.mkv", "a.ass") == "a.ass"
    assert found("b.mkv", "b.SSA", "b.fr.srt") == "b.SSA"
    assert found("c.mkv", "c.fr.srt", "c.en.srt", "c.eng.forced.srt") == "c.en.srt"
    assert found("d.mkv", "d.French.srt") == "d.French.srt"
    assert found("e.mkv", "e.part2.srt", "e.emotions.srt") is None  # another video's file; emocli's output
