"""Language of a subtitle file: real whole-file text per language, and tiny English files that must not warn."""

from __future__ import annotations

import pytest

from emocli.text.language import LanguageGuess, detect_language, is_english

LANG_TEXTS = {
    "en": ["Where were you all night?", "I couldn't get here sooner.", "Why didn't you call?", "I'm sorry.",
           "We need to talk about what happened.", "I don't want to hear another word.", "Wait! Where are you going?",
           "Home. I'm tired of everything.", "Stay here tonight.", "It'll be okay, I promise."],
    "fr": ["Où étais-tu toute la nuit ?", "Je n'ai pas pu venir plus tôt.", "Pourquoi tu ne m'as pas appelé ?",
           "Je suis désolé, vraiment.", "Il faut qu'on parle de ce qui s'est passé.", "Reste ici ce soir."],
    "es": ["¿Dónde estuviste toda la noche?", "No pude venir antes.", "¿Por qué no me llamaste?",
           "Lo siento, de verdad.", "Tenemos que hablar de lo que pasó.", "Quédate aquí esta noche."],
    "hr": ["Gdje si bio cijelu noć?", "Nisam mogao doći ranije.", "Đuro je rekao da ćeš zakasniti.",
           "Žao mi je, stvarno.", "Moramo razgovarati o tome što se dogodilo.", "Ne želim više čuti ni riječ.",
           "Kamo ideš?", "Ostani ovdje večeras, tko zna što će biti sutra."],
    "sr-Latn": ["Gde si bio celu noć?", "Nisam mogao da dođem ranije.", "Đorđe je rekao da ćeš zakasniti.",
                "Žao mi je, stvarno.", "Moramo da razgovaramo o tome.", "Ne želim više da čujem ni reč.",
                "Kuda ideš?", "Ostani ovde večeras, ko zna šta će biti sutra."],
    "sr-Cyrl": ["Где си био целу ноћ?", "Нисам могао да дођем раније.", "Ђорђе је рекао да ћеш закаснити.",
                "Жао ми је, стварно.", "Морамо да разговарамо о томе.", "Не желим више да чујем ни реч."],
    "ru": ["Где ты был всю ночь?", "Я не мог прийти раньше.", "Ты обещал мне позвонить.",
           "Прости меня, пожалуйста.", "Мы должны поговорить о том, что случилось.", "Останься сегодня здесь."],
    "da": ["Hvor var du hele natten?", "Jeg kunne ikke komme før.", "Hvorfor ringede du ikke til mig?",
           "Undskyld, virkelig.", "Vi er nødt til at tale om det, der skete.", "Bliv her i nat."],
    "tr": ["Bütün gece neredeydin?", "Daha erken gelemedim.", "Neden beni aramadın?", "Özür dilerim, gerçekten.",
           "Olanlar hakkında konuşmamız lazım.", "Bu gece burada kal."],
    "fa": ["تمام شب کجا بودی؟", "نتوانستم زودتر بیایم.", "چرا به من زنگ نزدی؟", "متأسفم، واقعاً.",
           "باید درباره اتفاقی که افتاد حرف بزنیم.", "امشب اینجا بمان."],
    "yi": ["וווּ ביסטו געווען די גאַנצע נאַכט?", "איך האָב נישט געקענט קומען פֿריער.",
           "פֿאַרוואָס האָסטו מיר נישט אָנגערופֿן?", "זיי מיר מוחל, טאַקע.", "מיר מוזן רעדן וועגן דעם וואָס איז געשען.",
           "בלייב דאָ הײַנט בײַ נאַכט."],
    "zh": ["你昨晚去哪儿了？", "我没办法早点回来。", "你为什么不给我打电话？", "对不起，真的。",
           "我们得谈谈发生的事情。", "今晚留在这里吧。"],
}
SHORT_ENGLISH = {  # tiny English files: a "not English" warning on these would be wrong
    "yeah-okay-what": ["Yeah.", "Okay.", "What?"],
    "three-short": ["Come on.", "Let's go!", "Right now?"],
    "names": ["Hey, Ross.", "Hi, Monica.", "Oh my God!"],
    "hmm": ["Hmm.", "Uh-huh.", "Wow."],
    "no-way": ["No way.", "Are you sure?", "Yes, I am."],
    "thanks": ["Thanks.", "Sure.", "See you tomorrow."],
    "sorry": ["Sorry.", "It's fine.", "Really?"],
    "stop": ["Stop it!", "Get out!", "Now!"],
    "okay-okay": ["Okay, okay.", "I get it.", "Fine."],
    "mom": ["Mom?", "Dad!", "Where are you?"],
    "food": ["Pizza?", "Sounds good.", "Extra cheese."],
    "what-happened": ["What happened?", "I don't know.", "He just left."],
}
SHORT_ENGLISH.update({
    "five-a": ["Yeah.", "Okay.", "What?", "Hey, Ross.", "Hi, Monica."],
    "five-b": ["Oh my God!", "No way.", "Are you sure?", "Yes, I am.", "Thanks."],
    "five-c": ["Hmm.", "Uh-huh.", "Wow.", "Pizza?", "Sounds good.", "Extra cheese."],
    "five-d": ["Mom?", "Dad!", "Where are you?", "Stop it!", "Get out!", "Now!"],
    "names2": ["Joey!", "Chandler?", "Phoebe, Rachel.", "Ross, Monica.", "Gunther."],
    "song": ["La la la.", "Ooh, baby.", "Yeah, yeah, yeah.", "Na na na."],
})


@pytest.mark.parametrize("key,code", [("en", "en"), ("fr", "fr"), ("es", "es"), ("hr", "hr"), ("sr-Latn", "sr"),
                                      ("sr-Cyrl", "sr"), ("ru", "ru"), ("da", "da"), ("tr", "tr"), ("fa", "fa"),
                                      ("yi", "he"), ("zh", "zh")])
@pytest.mark.parametrize("cues", [None, 3])
def test_whole_files_get_their_language(key, code, cues):
    guess = detect_language(LANG_TEXTS[key][:cues])
    assert guess.code == code  # Yiddish is not in py3langid's model: Hebrew is the nearest it has
    assert is_english(guess) == (code == "en")
    if code == "en":
        assert guess.confidence > 0.99
    else:
        assert guess.english < 0.01 and guess.confidence >= 0.5


def test_close_languages_still_warn():
    hr, da = detect_language(LANG_TEXTS["hr"][:3]), detect_language(LANG_TEXTS["da"][:3])
    assert 0.5 <= hr.confidence < 0.9 and 0.5 <= da.confidence < 0.9  # mass shared with Serbian / Norwegian
    assert not is_english(hr) and not is_english(da)
    assert hr.name == "Croatian" and da.name == "Danish"


@pytest.mark.parametrize("key", sorted(SHORT_ENGLISH))
def test_short_english_files_never_warn(key):
    guess = detect_language(SHORT_ENGLISH[key])
    assert is_english(guess)
    assert guess.code in (None, "en") or guess.confidence < 0.5


def test_too_little_text_has_no_code():
    guess = detect_language(["Yeah.", "Okay.", "What?"])
    assert guess == LanguageGuess(None, 0.0, None, 0.0, 12)
    assert detect_language([]).code is None and detect_language(["", "..."]).code is None
    assert is_english(guess) and guess.describe() == "unknown (too little text)"


def test_short_cjk_files_are_not_english():
    guess = detect_language(LANG_TEXTS["zh"][:3])  # 25 characters
    assert guess.code == "zh" and not is_english(guess) and guess.describe().startswith("Chinese (")
