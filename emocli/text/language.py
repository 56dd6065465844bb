"""Which language a subtitle file is in (py3langid), so English-only models can warn about other languages."""

from __future__ import annotations

import functools
from dataclasses import dataclass

#: Below this many letters a file is too short to tell (code None).
MIN_LETTERS = 20
#: Claim "not English" only when English is this improbable and the best guess this sure (see is_english).
NON_ENGLISH_MAX_P_ENGLISH = 0.01
NON_ENGLISH_MIN_CONFIDENCE = 0.5
#: Text beyond this many characters adds nothing to the guess and only costs time.
_SAMPLE_CHARS = 20_000

LANGUAGE_NAMES = {
    "af": "Afrikaans", "ar": "Arabic", "bg": "Bulgarian", "bs": "Bosnian", "ca": "Catalan", "cs": "Czech",
    "da": "Danish", "de": "German", "el": "Greek", "en": "English", "es": "Spanish", "et": "Estonian",
    "fa": "Persian", "fi": "Finnish", "fr": "French", "he": "Hebrew", "hi": "Hindi", "hr": "Croatian",
    "hu": "Hungarian", "id": "Indonesian", "is": "Icelandic", "it": "Italian", "ja": "Japanese", "ko": "Korean",
    "lt": "Lithuanian", "lv": "Latvian", "mk": "Macedonian", "ms": "Malay", "nl": "Dutch", "no": "Norwegian",
    "pl": "Polish", "pt": "Portuguese", "ro": "Romanian", "ru": "Russian", "sk": "Slovak", "sl": "Slovenian",
    "sq": "Albanian", "sr": "Serbian", "sv": "Swedish", "th": "Thai", "tr": "Turkish", "uk": "Ukrainian",
    "ur": "Urdu", "vi": "Vietnamese", "zh": "Chinese",
}


@dataclass(frozen=True)
class LanguageGuess:
    """One guess for a whole file: an ISO 639-1 code (None when too little text), its probability and name."""

    code: str | None
    confidence: float
    name: str | None
    english: float = 0.0  # the probability of English itself
    letters: int = 0  # how many letters the guess rests on

    def describe(self) -> str:
        if self.code is None:
            return "unknown (too little text)"
        return f"{self.name} ({self.confidence:.0%})"


@functools.lru_cache(maxsize=None)
def _identifier(common_only: bool = False):
    """py3langid's model with normalised probabilities, loaded once (about 0.4 s); optionally LANGUAGE_NAMES only.

    Restricting detect_language to the common languages measurably helps short English files: "Yeah. Okay. What?"
    scores English 0.34 instead of 0.08 (the mass otherwise spreads over Pidgin, Acehnese, Xhosa...).
    """
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    if common_only:
        identifier.set_languages([code for code in LANGUAGE_NAMES if code in identifier.labels])
    return identifier


def language_identifier():
    """The model `detect_language` uses, loaded once: call it ahead (on a thread) to have it ready."""
    return _identifier(common_only=True)


def rank_languages(text: str) -> list[tuple[str, float]]:
    """Every language py3langid knows (all 140), most probable first, as (code, probability)."""
    return _identifier().rank(text)


def detect_language(texts: list[str]) -> LanguageGuess:
    """Guess the language of a subtitle file from its cue texts (joined) among the ~45 LANGUAGE_NAMES.

    Code None below MIN_LETTERS letters. Yiddish is not in py3langid's model: it comes out as Hebrew.
    """
    joined = "\n".join(t for t in texts if t)[:_SAMPLE_CHARS]
    letters = sum(ch.isalpha() for ch in joined)
    if letters < MIN_LETTERS:
        return LanguageGuess(None, 0.0, None, 0.0, letters)
    ranked = language_identifier().rank(joined)
    code, confidence = ranked[0]
    english = dict(ranked).get("en", 0.0)
    return LanguageGuess(code, float(confidence), LANGUAGE_NAMES.get(code, code), float(english), letters)


def is_english(guess: LanguageGuess) -> bool:
    """False only when the file is clearly in another language; too little text (code None) counts as English.

    Rule (measured on tests/test_language.py): not English when English has probability < NON_ENGLISH_MAX_P_ENGLISH
    and the best guess >= NON_ENGLISH_MIN_CONFIDENCE. Real other-language files of 2+ cues give English 0.000 and
    their best guess >= 0.5 even where close languages share the mass (Croatian 0.6 / Serbian 0.3, Danish 0.5 /
    Norwegian 0.5); short English files give English >= 0.05 or a flat guess (best <= 0.3), so no false warning.
    """
    if guess.code is None or guess.code == "en":
        return True
    return not (guess.english < NON_ENGLISH_MAX_P_ENGLISH and guess.confidence >= NON_ENGLISH_MIN_CONFIDENCE)


def language_report(texts: list[str]) -> tuple[dict | None, str | None]:
    """A file's language for its JSON (`{"code", "name", "confidence"}`, None when too little text to tell) and
    the warning for a file the English-only model should not be trusted on (None for English)."""
    guess = detect_language(texts)
    if guess.code is None:
        return None, None
    doc = {"code": guess.code, "name": guess.name, "confidence": round(guess.confidence, 3)}
    if is_english(guess):
        return doc, None
    return doc, (f"the text looks {guess.name} ({guess.code}, {guess.confidence:.0%}), but the model reads "
                 f"English: its labels of other languages are unreliable")
