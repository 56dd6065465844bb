"""Subtitle bytes -> text: BOMs, UTF-32/UTF-16 without a BOM, UTF-8, else a guessed legacy code page."""

from __future__ import annotations

import codecs
import re
import unicodedata
from dataclasses import dataclass, replace

from ..errors import EmocliError, UsageError

#: The legacy code pages guessed from, in the order preferred when two read the same. Left out by measurement:
#: cp1258 (Vietnamese; Python cannot map precomposed letters onto it), iso8859_5 and mac code pages (rare in
#: subtitles; each extra Cyrillic or Latin page only adds close runners-up to real cp1250/cp1251 files).
LEGACY_CODEPAGES = ("cp1252", "cp1250", "cp1251", "cp1253", "cp1254", "cp1255", "cp1256", "cp1257", "gb18030",
                    "big5", "shift_jis", "euc_kr", "euc_jp", "koi8_r", "iso8859_2")

#: Languages (py3langid codes) whose subtitles are written in each code page: a reading whose language the page
#: does not serve (Croatian read as cp1252) is unlikely.
_PAGE_LANGUAGES = {page: set(langs.split()) for page, langs in {
    "cp1252": "en fr es de da nl it pt sv no nn fi ca gl eu is fo af ga gd cy br oc lb wa sq et id ms tl sw la "
              "fy an ext lij vec gcr gcf ht pcm",  # py3langid says Creole or Pidgin for some short French/English
    "cp1250": "cs sk pl hu hr sl bs sr ro sq de",
    "iso8859_2": "cs sk pl hu hr sl bs sr ro sq de",
    "cp1251": "ru uk be bg sr mk kk ky tg tt ba mn",
    "koi8_r": "ru", "cp1253": "el", "cp1254": "tr az", "cp1255": "he hbo", "cp1256": "ar fa ur ps ary arz sdh ug",
    "cp1257": "lt lv et ltg", "gb18030": "zh wuu yue", "big5": "zh yue", "shift_jis": "ja", "euc_jp": "ja",
    "euc_kr": "ko",
}.items()}

#: Non-ASCII Latin letters each language writes (lower case): "æ" in Croatian or "õ" in Hungarian means a
#: cp1250 file was read as cp1252.
_LATIN_LETTERS = {
    "en": "àâäçéèêëîïôöùûüñáíóúœæ", "fr": "àâæçéèêëîïôœùûüÿ", "es": "áéíóúüñ", "de": "äöüßé", "da": "æøåé",
    "no": "æøåé", "nn": "æøåé", "sv": "åäöé", "fi": "äöåšž", "nl": "éëïóöüè", "it": "àèéìíîòóùú",
    "pt": "áâãàçéêíóôõú", "ca": "àçéèíïòóúü", "is": "áðéíóúýþæö", "cs": "áčďéěíňóřšťúůýž",
    "sk": "áäčďéíĺľňóôŕšťúýž", "pl": "ąćęłńóśźż", "hu": "áéíóöőúüű", "hr": "čćđšž", "bs": "čćđšž",
    "sr": "čćđšž", "sl": "čšžćđ", "ro": "ăâîșşțţ", "sq": "çë", "tr": "çğıöşüâîû", "az": "çəğıöşü",
    "lt": "ąčęėįšųūž", "lv": "āčēģīķļņšūž", "et": "äöõüšž",
}

#: A guess is confident when its plausibility (about 0..1.5, see decode_subtitle_bytes) is at least CONFIDENT_SCORE
#: and beats every reading with a different text by the margin. Measured on tests/test_textcodec.py's fixtures:
#: every file of 3+ cues clears both; the readings that did not were 1-2 short cues, and no wrong one cleared them.
CONFIDENT_SCORE = 0.6
COHERENCE_WEIGHT = 0.5  # charset-normalizer's letter-frequency fit: tells Hebrew from Hebrew read as cp1251
CHAOS_WEIGHT = 2.0  # its mess ratio: tells Korean from Korean read as GB18030
CONFIDENT_MARGIN = 0.15
CONFIDENT_MARGIN_SHORT = 0.3  # when the non-ASCII lines hold fewer than SHORT_LETTERS letters ("Ευχαριστώ πολύ.")
SHORT_LETTERS = 20
_ODD_CATEGORIES = {"Sm", "Sc", "Sk", "So", "Cc", "Co", "Cn", "Cs"}  # not Cf: Persian writes ZWNJ inside words
_SAMPLE_CHARS = 4000  # the lines holding non-ASCII text that the language check reads
_EDGE = "\"'.,:;!?()[]{}<>«»“”„‘’‚…–—¿¡-*/"
_SCRIPT_FAMILY = {"HIRAGANA": "CJK", "KATAKANA": "CJK", "KATAKANA-HIRAGANA": "CJK", "HALFWIDTH": "CJK",
                  "FULLWIDTH": "CJK", "IDEOGRAPHIC": "CJK"}


@dataclass(frozen=True)
class DecodedText:
    """Decoded subtitle text and how: the Python codec used, whether it was a doubtful guess, whether a BOM said."""

    text: str
    encoding: str
    confident: bool
    bom: bool = False
    nuls_dropped: int = 0  # stray NUL characters taken out (padding or debris of a broken tool)

    def describe(self) -> str:
        return self.encoding if self.confident else f"{self.encoding} (guessed)"


_BOMS = ((b"\xff\xfe\x00\x00", "utf-32-le"), (b"\x00\x00\xfe\xff", "utf-32-be"), (b"\xef\xbb\xbf", "utf-8"),
         (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be"))


def decode_subtitle_bytes(raw: bytes, name: str = "subtitles", encoding: str | None = None) -> DecodedText:
    """Decode subtitle bytes; raises only EmocliError (UsageError for an unknown `encoding`).

    Order: `encoding` if given (strict); a BOM (UTF-32 before UTF-16: FF FE 00 00 starts with FF FE); UTF-32 and
    UTF-16 without a BOM by their NUL pattern; many control bytes otherwise mean binary data; strict UTF-8
    (so pure ASCII is UTF-8); else a legacy code page. charset-normalizer lists the LEGACY_CODEPAGES readings that
    are not a mess; each distinct reading is scored by (py3langid's probability that its language is one its code
    page serves) minus (the share of its non-ASCII words that look broken: mixed scripts, a capital after a small
    letter, symbols or control characters inside, Latin letters the language does not use, or all capitals where
    the page's script has no case), plus COHERENCE_WEIGHT x charset-normalizer's coherence, minus CHAOS_WEIGHT x
    its chaos. The best reading is confident when it scores at least CONFIDENT_SCORE and beats every other reading by
    CONFIDENT_MARGIN (CONFIDENT_MARGIN_SHORT under SHORT_LETTERS letters); otherwise confident=False. Only when nothing reads cleanly is the
    text decoded as cp1252 with replacement characters (confident=False).

    Stray NULs (a file padded with them, or a few inside it, as broken tools leave) are taken out of the text
    and counted (`nuls_dropped`); a file where they are more than a few (MAX_STRAY_NULS) is binary data.
    """
    return _without_nuls(_decode(raw, name, encoding), name)


def _decode(raw: bytes, name: str, encoding: str | None) -> DecodedText:
    if encoding is not None:
        return _forced(raw, encoding, name)
    for bom, codec in _BOMS:
        if raw.startswith(bom):
            return DecodedText(_strict(raw[len(bom):], codec, name, len(bom)), codec, True, bom=True)
    utf32 = _utf32_without_bom(raw)
    if utf32:
        try:
            return DecodedText(raw.decode(utf32), utf32, True)
        except UnicodeDecodeError:
            pass  # four-byte NUL pattern by chance: judge it as bytes below
    if len(raw) >= 4:
        even_nuls = raw[0::2].count(0) / len(raw[0::2])
        odd_nuls = raw[1::2].count(0) / len(raw[1::2])
        if odd_nuls > 0.3 and even_nuls < 0.05:
            return DecodedText(_strict(raw, "utf-16-le", name), "utf-16-le", True)
        if even_nuls > 0.3 and odd_nuls < 0.05:
            return DecodedText(_strict(raw, "utf-16-be", name), "utf-16-be", True)
    core = raw.strip(b"\x00")  # NUL padding at either end
    nuls = raw.count(0)
    if (nuls and not core.strip()) or _control_bytes(core) > max(8, len(core) // 100) \
            or core.count(0) > _stray_nuls(core):
        raise EmocliError(f"{name}: binary data, not a subtitle file")
    raw = raw.replace(b"\x00", b"") if nuls else raw  # before guessing a code page, which NULs would confuse
    try:
        decoded = DecodedText(raw.decode("utf-8"), "utf-8", True)
    except UnicodeDecodeError:
        decoded = _guess_legacy(raw)
    return replace(decoded, nuls_dropped=nuls) if nuls else decoded


def check_encoding(encoding: str) -> str:
    """The canonical name of a text codec (`--encoding`), checked before any work; UsageError if unknown."""
    try:
        info = codecs.lookup(encoding)
    except LookupError:
        info = None
    if info is None or not getattr(info, "_is_text_encoding", True):
        raise UsageError(f"unknown encoding {encoding!r} (--encoding takes a Python codec name such as cp1250, "
                         f"cp1251, gb18030)")
    return info.name


def _forced(raw: bytes, encoding: str, name: str) -> DecodedText:
    try:
        codec = codecs.lookup(encoding).name
        text = raw.decode(codec)
    except LookupError:
        raise UsageError(f"unknown encoding {encoding!r} (--encoding takes a Python codec name such as cp1250, "
                         f"cp1251, gb18030)") from None
    except UnicodeDecodeError as exc:
        raise EmocliError(f"{name}: not valid {codec} text ({exc.reason} at byte {exc.start})") from None
    except Exception as exc:  # codecs such as idna raise bare UnicodeError or ValueError
        raise EmocliError(f"{name}: not valid {codec} text ({exc})") from None
    bom = text.startswith("\ufeff")
    text = text[1:] if bom else text
    core = text.strip("\x00")
    if sum(1 for ch in core if ord(ch) < 32 and ch not in "\t\n\r\f\x00") > max(8, len(core) // 100):
        raise EmocliError(f"{name}: binary data, not a subtitle file")
    return DecodedText(text, codec, True, bom=bom)


def _strict(raw: bytes, codec: str, name: str, offset: int = 0) -> str:
    try:
        return raw.decode(codec)
    except UnicodeDecodeError as exc:  # the offset counts from the start of the file, BOM included
        raise EmocliError(f"{name}: not valid {codec} text ({exc.reason} at byte {offset + exc.start})") from None


def _utf32_without_bom(raw: bytes) -> str | None:
    """"utf-32-le"/"utf-32-be" when every fourth byte is NUL the way UTF-32 text is laid out, else None."""
    if len(raw) < 8 or len(raw) % 4:
        return None
    quarters = [raw[i::4] for i in range(4)]
    nuls = [q.count(0) / len(q) for q in quarters]
    if nuls[3] == 1.0 and nuls[2] > 0.5 and nuls[0] < 0.5:
        return "utf-32-le"
    if nuls[0] == 1.0 and nuls[1] > 0.5 and nuls[3] < 0.5:
        return "utf-32-be"
    return None


def _control_bytes(raw: bytes) -> int:
    """Control bytes other than whitespace and NUL (NULs are judged apart: see MAX_STRAY_NULS)."""
    return sum(raw.count(byte) for byte in range(1, 32) if byte not in b"\t\n\r\f")


#: NULs inside a text file (not at its ends) that are dropped as debris rather than taken as binary data: a few,
#: or one per thousand characters. Padding at either end is dropped whatever its length.
MAX_STRAY_NULS = 16


def _stray_nuls(text: bytes | str) -> int:
    return max(MAX_STRAY_NULS, len(text) // 1000)


def _without_nuls(decoded: DecodedText, name: str) -> DecodedText:
    """The text with its NULs taken out and counted; binary data when there are more than a few inside it."""
    text = decoded.text
    count = text.count("\x00")
    if not count:
        return decoded
    core = text.strip("\x00")
    if not core.strip() or core.count("\x00") > _stray_nuls(core):
        raise EmocliError(f"{name}: binary data, not a subtitle file")
    return replace(decoded, text=text.replace("\x00", ""), nuls_dropped=count)


# --- legacy code pages -----------------------------------------------------------------------------------------


def _guess_legacy(raw: bytes) -> DecodedText:
    try:
        import charset_normalizer

        matches = list(charset_normalizer.from_bytes(raw, cp_isolation=list(LEGACY_CODEPAGES)))
    except Exception:  # a detector bug must not crash the reader: fall through to the last resort
        matches = []
    readings = []  # (score, -chaos, text, code page, letters read)
    seen = set()
    for match in matches:
        text = str(match)
        if text in seen:
            continue
        seen.add(text)
        score, page, letters = _plausibility(text, [p for p in LEGACY_CODEPAGES if p in match.could_be_from_charset])
        score += COHERENCE_WEIGHT * match.coherence - CHAOS_WEIGHT * match.chaos
        readings.append((score, -match.chaos, text, page, letters))
    if not readings:
        return DecodedText(raw.decode("cp1252", errors="replace"), "cp1252", False)
    readings.sort(key=lambda r: (-round(r[0], 2), -r[1]))
    score, _, text, page, letters = readings[0]
    runner_up = readings[1][0] if len(readings) > 1 else 0.0
    margin = CONFIDENT_MARGIN if letters >= SHORT_LETTERS else CONFIDENT_MARGIN_SHORT
    confident = score >= CONFIDENT_SCORE and score - runner_up >= margin
    return DecodedText(text, codecs.lookup(page).name, confident)


def _plausibility(text: str, pages: list[str]) -> tuple[float, str, int]:
    """(score, best code page, letters read) for one reading that any of `pages` produces; see decode_subtitle_bytes."""
    from .language import rank_languages

    sample = "\n".join(line for line in text.splitlines() if not line.isascii())[:_SAMPLE_CHARS]
    letters = " ".join("".join(ch if ch.isalpha() else " " for ch in re.sub(r"<[^>]*>", " ", sample)).split())
    ranked = rank_languages(letters)
    served = [(sum(p for lang, p in ranked if lang in _PAGE_LANGUAGES.get(page, ())), page) for page in pages]
    best, page = max(served, key=lambda s: s[0]) if served else (0.0, "cp1252")
    return best - _broken_words(sample, ranked[0][0] if ranked else None), page, len(letters.replace(" ", ""))


def _broken_words(sample: str, language: str | None) -> float:
    """Share of the non-ASCII words that a wrong code page would explain; +1 for C1 control characters."""
    words = [w.strip(_EDGE) for w in sample.split() if not w.isascii()]
    words = [w for w in words if any(ch.isalpha() for ch in w)]
    penalty = 1.0 if re.search("[\x80-\x9f]", sample) else 0.0
    if not words:
        return penalty
    alphabet = _LATIN_LETTERS.get(language or "")
    broken = 0.0
    for word in words:
        letters = [ch for ch in word if ch.isalpha()]
        scripts = {_script(ch) for ch in letters}
        if (len(scripts) > 1 or any(a.islower() and b.isupper() for a, b in zip(word, word[1:]))
                or unicodedata.category(word[0]).startswith("M")  # a Hebrew point before any letter
                or "ς" in word[:-1].rstrip("ς")  # Greek final sigma inside a word
                or any(unicodedata.category(ch) in _ODD_CATEGORIES for ch in word)
                or (alphabet is not None and any(not ch.isascii() and _script(ch) == "LATIN"
                                                 and ch.lower() not in alphabet for ch in letters))):
            broken += 1.0
        elif len(letters) > 1 and word.isupper() and scripts <= {"CYRILLIC", "GREEK"}:
            broken += 0.5  # Hebrew or Arabic read as KOI8-R comes out in capitals
    return penalty + broken / len(words)


def _script(ch: str) -> str:
    try:
        first = unicodedata.name(ch).split()[0]
    except ValueError:
        return "?"
    return _SCRIPT_FAMILY.get(first, first)
