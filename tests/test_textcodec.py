"""Subtitle bytes -> text: BOMs, UTF-16/32 without BOM, UTF-8, legacy code pages guessed on realistic dialogue."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emocli.errors import EmocliError, UsageError
from emocli.text.encoding import DecodedText, decode_subtitle_bytes

# --- fixtures: realistic short movie dialogue, {name: (code page, cues)} ----------------------------------------

DIALOGUE = {
    "hr": ("cp1250", [
        "Gdje si bio cijelu noć?", "- Nisam mogao doći ranije.\n- Zašto?", "Đuro je rekao da ćeš zakasniti.",
        "Žao mi je, stvarno.", "Moramo razgovarati o tome\nšto se dogodilo.", "Ne želim više čuti ni riječ.",
        "Čekaj! Kamo ideš?", "Kući. Umorna sam od svega.", "Ostani ovdje večeras.", "Šuti i slušaj me.",
        "<i>Sve će biti u redu, obećavam.</i>", "Hvala ti, Ivane.", "Đakovo je daleko odavde.",
    ]),
    "cs": ("cp1250", [
        "Kde jsi byl celou noc?", "Nemohl jsem přijít dřív.", "Říkal jsem ti, že to nepůjde.",
        "Proč mi nevěříš?", "Protože mi pořád lžeš!", "To není pravda.", "- Počkej, kam jdeš?\n- Domů.",
        "Jsem unavená ze všeho.", "Zítra si o tom promluvíme.", "Dobře. Dobrou noc, Petře.",
        "Ťukni na dveře, až přijdeš.", "Šťastnou cestu.",
    ]),
    "pl": ("cp1250", [
        "Gdzie byłeś całą noc?", "Nie mogłem przyjść wcześniej.", "Dlaczego mi nie powiedziałeś?",
        "Przepraszam, naprawdę.", "Źle się czuję, muszę iść.", "- Zostań jeszcze chwilę.\n- Nie mogę.",
        "Żartujesz? Jest już późno.", "Jutro porozmawiamy.", "Dobranoc, Łukaszu.", "Śpij dobrze.",
        "Ślub jest w sobotę.",
    ]),
    "hu": ("cp1250", [
        "Hol voltál egész éjjel?", "Nem tudtam korábban jönni.", "Miért nem szóltál?", "Bocsáss meg, kérlek.",
        "Ez nem igaz, hazudsz!", "- Várj, hová mész?\n- Haza.", "Fáradt vagyok.", "Holnap megbeszéljük.",
        "Jó éjszakát, Ödön.", "Őszintén szólva, nem érdekel.", "Ülj le, kérlek.", "Szűk az idő, siessünk.",
    ]),
    "sr-Cyrl": ("cp1251", [
        "Где си био целу ноћ?", "- Нисам могао да дођем раније.\n- Зашто?", "Ђорђе је рекао да ћеш закаснити.",
        "Жао ми је, стварно.", "Морамо да разговарамо о томе.", "Не желим више да чујем ни реч.",
        "Чекај! Куда идеш?", "Кући. Уморна сам од свега.", "Љубави, остани вечерас.", "Њега више нема.",
        "Џаба причаш, нећу да слушам.", "Све ће бити у реду, обећавам.",
    ]),
    "ru": ("cp1251", [
        "Где ты был всю ночь?", "- Я не мог прийти раньше.\n- Почему?", "Ты обещал мне позвонить.",
        "Прости меня, пожалуйста.", "Мы должны поговорить о том,\nчто случилось.", "Я не хочу больше ничего слышать.",
        "Подожди! Куда ты идёшь?", "Домой. Я устала от всего.", "Останься сегодня здесь.",
        "Ещё не поздно всё исправить.", "Замолчи и слушай меня.", "Всё будет хорошо, обещаю.",
    ]),
    "bg": ("cp1251", [
        "Къде беше цяла нощ?", "Не можах да дойда по-рано.", "Защо не ми се обади?", "Съжалявам, наистина.",
        "Трябва да поговорим за това,\nкоето стана.", "Не искам да чувам нищо повече.",
        "- Чакай! Къде отиваш?\n- Вкъщи.",
        "Уморена съм.", "Остани тук тази вечер.", "Всичко ще бъде наред, обещавам.",
    ]),
    "el": ("cp1253", [
        "Πού ήσουν όλη τη νύχτα;", "Δεν μπορούσα να έρθω νωρίτερα.", "Γιατί δεν με πήρες τηλέφωνο;",
        "Συγγνώμη, αλήθεια.", "Πρέπει να μιλήσουμε\nγι' αυτό που έγινε.", "Δεν θέλω να ακούσω τίποτα άλλο.",
        "- Περίμενε! Πού πας;\n- Σπίτι.", "Είμαι κουρασμένη.", "Μείνε εδώ απόψε.",
        "Όλα θα πάνε καλά, σου το υπόσχομαι.",
        "Άσε με ήσυχο, Γιώργο.",
    ]),
    "tr": ("cp1254", [
        "Bütün gece neredeydin?", "Daha erken gelemedim.", "Neden beni aramadın?", "Özür dilerim, gerçekten.",
        "Olanlar hakkında konuşmamız lazım.", "Artık hiçbir şey duymak istemiyorum.",
        "- Bekle! Nereye gidiyorsun?\n- Eve.",
        "Her şeyden yoruldum.", "Bu gece burada kal.", "İstanbul'a yarın gidiyoruz.", "Ağlama, her şey düzelecek.",
        "Işıkları kapat.",
    ]),
    "he": ("cp1255", [
        "איפה היית כל הלילה?", "לא יכולתי לבוא מוקדם יותר.", "למה לא התקשרת אליי?", "אני מצטער, באמת.",
        "אנחנו צריכים לדבר\nעל מה שקרה.", "אני לא רוצה לשמוע יותר כלום.", "- חכה! לאן אתה הולך?\n- הביתה.",
        "אני עייפה.", "תישאר כאן הלילה.", "הכול יהיה בסדר, אני מבטיח.",
    ]),
    "ar": ("cp1256", [
        "أين كنت طوال الليل؟", "لم أستطع المجيء مبكراً.", "لماذا لم تتصل بي؟", "أنا آسف، حقاً.",
        "يجب أن نتحدث\nعما حدث.", "لا أريد أن أسمع أي شيء آخر.", "- انتظر! إلى أين تذهب؟\n- إلى البيت.",
        "أنا متعبة.", "ابق هنا الليلة.", "كل شيء سيكون على ما يرام، أعدك.",
    ]),
    "fa": ("cp1256", [  # legacy Persian files use Arabic yeh (U+064A): cp1256 has no U+06CC
        "تمام شب كجا بودي؟", "نتوانستم زودتر بيايم.", "چرا به من زنگ نزدي؟", "متأسفم، واقعاً.",
        "بايد درباره اتفاقي\nكه افتاد حرف بزنيم.", "ديگر نمي‌خواهم چيزي بشنوم.", "- صبر كن! كجا مي‌روي؟\n- خانه.",
        "خسته‌ام.", "امشب اينجا بمان.", "همه چيز درست مي‌شود، قول مي‌دهم.", "ژاله پيش پدرش رفت.",
    ]),
    "lt": ("cp1257", [
        "Kur buvai visą naktį?", "Negalėjau ateiti anksčiau.", "Kodėl man nepaskambinai?", "Atsiprašau, tikrai.",
        "Turime pasikalbėti apie tai,\nkas nutiko.", "Nenoriu nieko daugiau girdėti.", "- Palauk! Kur eini?\n- Namo.",
        "Esu pavargusi.", "Lik čia šiąnakt.", "Viskas bus gerai, pažadu.", "Žinau, kad tau sunku.",
    ]),
    "zh-Hans": ("gb2312", [
        "你昨晚去哪儿了？", "我没办法早点回来。", "你为什么不给我打电话？", "对不起，真的。",
        "我们得谈谈\n发生的事情。", "我不想再听了。", "－等等！你要去哪儿？\n－回家。", "我累了。",
        "今晚留在这里吧。", "一切都会好起来的，我保证。",
    ]),
    "zh-Hans-gbk": ("gbk", [  # 喆 堃 镕 are in GBK, not GB2312
        "张喆，你昨晚去哪儿了？", "我没办法早点回来。", "堃哥在等你。", "对不起，真的。", "朱镕基说过这句话。",
        "我不想再听了。", "等等！你要去哪儿？", "回家。我累了。",
    ]),
    "zh-Hans-gb18030": ("gb18030", [  # 䶮 (U+4DAE) needs GB18030's four-byte form
        "刘䶮是南汉的皇帝。", "你昨晚去哪儿了？", "我没办法早点回来。", "对不起，真的。", "我们得谈谈发生的事情。",
        "等等！你要去哪儿？", "回家。我累了。",
    ]),
    "zh-Hant": ("big5", [
        "你昨晚去哪裡了？", "我沒辦法早點回來。", "你為什麼不打電話給我？", "對不起，真的。",
        "我們得談談\n發生的事情。", "我不想再聽了。", "－等等！你要去哪裡？\n－回家。", "我累了。",
        "今晚留在這裡吧。", "一切都會好起來的，我保證。",
    ]),
    "ja": ("shift_jis", [
        "昨夜はどこにいたの？", "早く帰れなかったんだ。", "どうして電話してくれなかったの？", "ごめん、本当に。",
        "何があったのか\n話し合わないと。", "もう何も聞きたくない。", "（ドアの音）", "待って！どこへ行くの？",
        "家に帰る。疲れたの。", "今夜はここにいて。", "きっと大丈夫、約束する。",
    ]),
    "ko": ("euc_kr", [
        "어젯밤에 어디 있었어?", "일찍 올 수가 없었어.", "왜 전화 안 했어?", "미안해, 정말로.",
        "무슨 일이 있었는지\n얘기해야 해.", "더 이상 아무것도 듣고 싶지 않아.", "- 기다려! 어디 가?\n- 집에.",
        "피곤해.", "오늘 밤은 여기 있어.", "다 괜찮을 거야, 약속해.",
    ]),
    "fr": ("cp1252", [
        "Où étais-tu toute la nuit ?", "Je n'ai pas pu venir plus tôt.", "Pourquoi tu ne m'as pas appelé ?",
        "Je suis désolé, vraiment.", "Il faut qu'on parle\nde ce qui s'est passé.", "Je ne veux plus rien entendre.",
        "- Attends ! Où tu vas ?\n- À la maison.", "Je suis fatiguée.", "Reste ici ce soir.",
        "Ça va aller, je te le promets.", "C’est un chef-d’œuvre… « Magnifique » !",
    ]),
    "es": ("cp1252", [
        "¿Dónde estuviste toda la noche?", "No pude venir antes.", "¿Por qué no me llamaste?", "Lo siento, de verdad.",
        "Tenemos que hablar\nde lo que pasó.", "No quiero oír nada más.", "- ¡Espera! ¿Adónde vas?\n- A casa.",
        "Estoy cansada.", "Quédate aquí esta noche.", "Todo saldrá bien, te lo prometo.", "Mañana será otro día.",
    ]),
    "de": ("cp1252", [
        "Wo warst du die ganze Nacht?", "Ich konnte nicht früher kommen.", "Warum hast du mich nicht angerufen?",
        "Es tut mir leid, wirklich.", "Wir müssen über das reden,\nwas passiert ist.", "Ich will nichts mehr hören.",
        "- Warte! Wohin gehst du?\n- Nach Hause.", "Ich bin müde.", "Bleib heute Nacht hier.",
        "Alles wird gut, versprochen.", "Grüß deine Mutter von mir.", "„Das ist groß“, sagte er.",
    ]),
    "da": ("cp1252", [
        "Hvor var du hele natten?", "Jeg kunne ikke komme før.", "Hvorfor ringede du ikke til mig?",
        "Undskyld, virkelig.", "Vi er nødt til at tale om det,\nder skete.", "Jeg vil ikke høre mere.",
        "- Vent! Hvor skal du hen?\n- Hjem.", "Jeg er træt.", "Bliv her i nat.", "Det skal nok gå, det lover jeg.",
        "Åh nej, ikke igen.",
    ]),
    "en": ("cp1252", [
        "Where were you all night?", "I couldn’t get here sooner.", "- Why didn’t you call?\n- I’m sorry…",
        "We need to talk about what happened.", "I don’t want to hear another word.", "Wait! Where are you going?",
        "Home. I’m tired – of everything.", "“Stay here tonight,” she said.", "It’ll be okay, I promise.",
    ]),
}

DIALOGUE["sr-Latn"] = ("cp1250", [
    "Gde si bio celu noć?", "- Nisam mogao da dođem ranije.\n- Zašto?", "Đorđe je rekao da ćeš zakasniti.",
    "Žao mi je, stvarno.", "Moramo da razgovaramo o tome.", "Ne želim više da čujem ni reč.", "Čekaj! Kuda ideš?",
    "Kući. Umorna sam od svega.", "Ljubavi, ostani večeras.", "Njega više nema.", "Sve će biti u redu, obećavam.",
])
DIALOGUE["ru-koi8"] = ("koi8_r", DIALOGUE["ru"][1])
DIALOGUE["cs-latin2"] = ("iso8859_2", DIALOGUE["cs"][1])


def srt(cues: list[str], count: int | None = None) -> str:
    """An SRT file of `count` cues (cycling through `cues`), two seconds each, with CRLF-free LF line ends."""
    count = len(cues) if count is None else count
    blocks = []
    for i in range(count):
        start = 2 * i + 1
        blocks.append(f"{i + 1}\n00:{start // 60:02d}:{start % 60:02d},250 --> 00:{(start + 1) // 60:02d}:"
                      f"{(start + 1) % 60:02d},900\n{cues[i % len(cues)]}\n")
    return "\n".join(blocks)


# Written after the rules were tuned on DIALOGUE, to check them on text they had not seen.
HOLDOUT = {
    "sk": ("cp1250", ["Čo tu robíš tak neskoro?", "Ľúbim ťa, vieš to.", "Nemôžem zostať, musím ísť.",
        "Počkaj, ešte niečo.", "Ďakujem za všetko.", "Zajtra sa uvidíme v škole."]),
    "sl": ("cp1250", ["Kje si bil včeraj?", "Žal mi je, res.", "Počakaj me pred hišo.", "Šel bom domov.",
        "Nič ne vem o tem."]),
    "ro": ("cp1250", ["Unde ai fost aseară?", "Îmi pare rău, chiar.", "Aşteaptă-mă afară.", "Nu ştiu ce să fac.",
        "Mâine mergem la ţară."]),
    "uk": ("cp1251", ["Де ти був учора?", "Вибач мені, будь ласка.", "Я не знаю, що робити.",
        "Зачекай на мене біля під'їзду.", "Ґанок треба пофарбувати.", "Їжа вже готова."]),
    "mk": ("cp1251", ["Каде беше синоќа?", "Жал ми е, навистина.", "Не знам што да правам.", "Почекај ме надвор.",
        "Ѓорѓи ќе дојде утре.", "Ѕвездите се убави."]),
    "pt": ("cp1252", ["Onde você estava ontem?", "Não sei o que fazer.", "Desculpa, de verdade.",
        "Espera por mim lá fora.", "Amanhã vamos à praia.", "Ação!"]),
    "it": ("cp1252", ["Dov'eri ieri sera?", "Mi dispiace, davvero.", "Non so cosa fare.",
        "Perché non mi hai chiamato?", "Così è la vita.", "Là fuori fa freddo."]),
    "sv": ("cp1252", ["Var var du igår?", "Förlåt, verkligen.", "Jag vet inte vad jag ska göra.",
        "Vänta på mig där ute.", "Vi åker i morgon."]),
    "lv": ("cp1257", ["Kur tu biji vakar?", "Piedod, tiešām.", "Es nezinu, ko darīt.", "Pagaidi mani ārā.",
        "Rīt mēs brauksim uz jūru.", "Ļoti labi."]),
    "zh2": ("gb18030", ["他们已经走了。", "这是真的吗？", "我不相信你说的话。", "快点，我们要迟到了！", "别担心，我会处理的。"]),
    "ja2": ("shift_jis", ["ありがとうございます。", "行きましょう！", "それは本当ですか？", "私は知らない。", "明日また会おう。"]),
    "ko2": ("euc_kr", ["고마워요.", "가자!", "그게 정말이야?", "나는 몰라.", "내일 또 보자."]),
    "zht2": ("big5", ["他們已經走了。", "這是真的嗎？", "我不相信你說的話。", "快點，我們要遲到了！", "別擔心，我會處理的。"]),
    "ar2": ("cp1256", ["شكراً جزيلاً.", "هيا بنا!", "هل هذا صحيح؟", "لا أعرف.", "أراك غداً."]),
    "he2": ("cp1255", ["תודה רבה.", "בוא נלך!", "זה באמת נכון?", "אני לא יודע.", "נתראה מחר."]),
    "el2": ("cp1253", ["Ευχαριστώ πολύ.", "Πάμε!", "Είναι αλήθεια;", "Δεν ξέρω.", "Τα λέμε αύριο."]),
    "tr2": ("cp1254", ["Çok teşekkürler.", "Hadi gidelim!", "Bu doğru mu?", "Bilmiyorum.", "Yarın görüşürüz, Ayşe."]),
    "en-s1": ("cp1252", ["Café – “quoted” …\nsecond line", "MONICA: Hi!"]),
    "en-s2": ("cp1252", ["Café “déjà vu”…", "How are you?"]),
}


SIZES = [1, 2, 3, None, 40]  # cues; None = the whole dialogue (10-13 cues), 40 = cycled to 40 cues


def fixture_srt(cues: list[str], count: int | None) -> str:
    """Small files take the cues with non-ASCII letters first, so that they hold something to guess from."""
    return srt(sorted(cues, key=str.isascii) if count and count <= 3 else cues, count)


@pytest.mark.parametrize("count", SIZES, ids=lambda n: f"{n or 'all'}cues")
@pytest.mark.parametrize("key", sorted(DIALOGUE))
def test_legacy_code_pages_decode_to_the_original_text(key, count):
    page, cues = DIALOGUE[key]
    text = fixture_srt(cues, count)
    got = decode_subtitle_bytes(text.encode(page), "x.srt")
    assert got.text == text
    assert got.bom is False
    if count is None or count >= 3:
        assert got.confident, got
        assert got.text.encode(got.encoding) == text.encode(page) or got.encoding == "gb18030"


#: (fixture, cues) read right but marked doubtful: one or two short cues where another page reads almost as well.
DOUBTFUL_BUT_RIGHT = {("ru", 1), ("el", 1), ("he", 1), ("ja", 1), ("ko", 1), ("ko", 2)}


@pytest.mark.parametrize("key", sorted(DIALOGUE))
def test_small_files_are_right_and_doubtful_only_where_measured(key):
    page, cues = DIALOGUE[key]
    for count in (1, 2):
        got = decode_subtitle_bytes(fixture_srt(cues, count).encode(page))
        assert got.confident == ((key, count) not in DOUBTFUL_BUT_RIGHT), (key, count, got)


@pytest.mark.parametrize("key", sorted(HOLDOUT))
def test_held_out_dialogue_is_never_confidently_wrong(key):
    page, cues = HOLDOUT[key]
    for count in (1, 2, 3, None):
        text = fixture_srt(cues, count)
        got = decode_subtitle_bytes(text.encode(page))
        if count is None or count >= 3:
            assert got.text == text
        assert got.text == text or not got.confident, (count, got)


def test_two_greek_words_are_misread_but_doubtful():
    text = srt(["Ευχαριστώ πολύ."])  # the one held-out failure: Cyrillic gibberish reads as well as Greek
    got = decode_subtitle_bytes(text.encode("cp1253"))
    assert got.text != text and got.encoding == "cp1251" and not got.confident
    assert got.describe() == "cp1251 (guessed)"
    assert decode_subtitle_bytes(text.encode("cp1253"), encoding="cp1253").text == text  # what --encoding is for


def test_gbk_and_gb2312_content_reads_as_gb18030():
    for key in ("zh-Hans", "zh-Hans-gbk", "zh-Hans-gb18030"):
        page, cues = DIALOGUE[key]
        got = decode_subtitle_bytes(srt(cues).encode(page))
        assert got.encoding == "gb18030" and got.text == srt(cues) and got.confident


# --- Unicode: BOMs and BOM-less UTF-16/UTF-32 ------------------------------------------------------------------

SUBTITLES_SRT = ("1\n00:00:01,000 --> 00:00:02,500\nCafé – “quoted” …\nsecond line\n\n"
                 "2\n00:00:03,000 --> 00:00:04,000\nMONICA: Hi!\n")  # tests/test_subtitles.py's file


@pytest.mark.parametrize("codec,expected,bom", [
    ("utf-8", "utf-8", False), ("utf-8-sig", "utf-8", True), ("utf-16", "utf-16-le", True),
    ("utf-16-le", "utf-16-le", False), ("utf-16-be", "utf-16-be", False), ("utf-32", "utf-32-le", True),
    ("utf-32-le", "utf-32-le", False), ("utf-32-be", "utf-32-be", False), ("cp1252", "cp1252", False),
])
@pytest.mark.parametrize("text", [SUBTITLES_SRT, srt(DIALOGUE["hr"][1]), srt(DIALOGUE["zh-Hant"][1]),
                                  srt(DIALOGUE["ru"][1]).replace("\n", "\r\n")], ids=["en", "hr", "zh", "ru-crlf"])
def test_unicode_with_and_without_bom(codec, expected, bom, text):
    try:
        raw = text.encode(codec)
    except UnicodeEncodeError:
        pytest.skip("cp1252 holds only the English file")
    got = decode_subtitle_bytes(raw)
    assert (got.text, got.encoding, got.bom, got.confident) == (text, expected, bom, True)


@pytest.mark.parametrize("bom,codec", [(b"\xff\xfe\x00\x00", "utf-32-le"), (b"\x00\x00\xfe\xff", "utf-32-be"),
                                       (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be")])
def test_explicit_boms(bom, codec):
    text = srt(DIALOGUE["ja"][1])
    assert decode_subtitle_bytes(bom + text.encode(codec)) == DecodedText(text, codec, True, bom=True)


def test_reliability_cp1252_file_reads_right_and_confident():
    text = ("1\n00:00:00,100 --> 00:00:00,900\nCafé “déjà vu”…\n\n"
            "2\n00:00:01,000 --> 00:00:01,800\nHow are you?\n")
    got = decode_subtitle_bytes(text.encode("cp1252"))
    assert got == DecodedText(text, "cp1252", True) and got.describe() == "cp1252"


def test_ascii_is_confident_utf8():
    assert decode_subtitle_bytes(b"1\n00:00:01,000 --> 00:00:02,000\nHi\n") == DecodedText(
        "1\n00:00:01,000 --> 00:00:02,000\nHi\n", "utf-8", True)
    assert decode_subtitle_bytes(b"") == DecodedText("", "utf-8", True)


# --- --encoding ------------------------------------------------------------------------------------------------

def test_encoding_forces_the_codec():
    page, cues = DIALOGUE["hr"]
    raw = srt(cues).encode(page)
    forced = decode_subtitle_bytes(raw, encoding="cp1252")
    assert forced.encoding == "cp1252" and forced.confident and "noæ" in forced.text  # as asked, even if wrong
    assert decode_subtitle_bytes(raw, encoding="CP1250").text == srt(cues)
    assert decode_subtitle_bytes(raw, encoding="windows-1250").encoding == "cp1250"
    assert decode_subtitle_bytes(b"\xef\xbb\xbfHi", encoding="utf-8") == DecodedText("Hi", "utf-8", True, bom=True)
    assert decode_subtitle_bytes("Hi".encode("utf-16"), encoding="utf-16").text == "Hi"


def test_unknown_encoding_is_a_usage_error():
    with pytest.raises(UsageError, match=r"unknown encoding 'klingon' \(--encoding takes a Python codec name such "
                                         r"as cp1250, cp1251, gb18030\)") as info:
        decode_subtitle_bytes(b"Hi", encoding="klingon")
    assert info.value.exit_code == 2
    with pytest.raises(UsageError, match="unknown encoding 'base64'"):
        decode_subtitle_bytes(b"SGk=", encoding="base64")  # a bytes-to-bytes codec is no text encoding


def test_bytes_invalid_in_the_forced_encoding_name_file_codec_and_offset():
    with pytest.raises(EmocliError) as info:
        decode_subtitle_bytes(b"Hello \xff there", "movie.srt", encoding="utf-8")
    assert str(info.value) == "movie.srt: not valid utf-8 text (invalid start byte at byte 6)"
    with pytest.raises(EmocliError, match=r"^movie.srt: not valid cp1253 text .* at byte 3\)$"):
        decode_subtitle_bytes(b"abc\xaa", "movie.srt", encoding="cp1253")  # 0xAA is unassigned in cp1253
    with pytest.raises(EmocliError, match=r"^m.srt: not valid utf-8 text .* at byte 5\)$"):
        decode_subtitle_bytes(b"\xef\xbb\xbfHi\xff", "m.srt")  # offsets count the BOM


# --- binary and hostile bytes ----------------------------------------------------------------------------------

@pytest.mark.parametrize("raw", [bytes(range(256)) * 20, bytes(range(1, 32)) * 10 + b"text" * 10,
                                 b"PK\x03\x04" + bytes(range(1, 256)) * 4, b"\x7fELF\x02\x01\x01\x00" * 50])
def test_binary_data_is_refused(raw):
    with pytest.raises(EmocliError, match=r"^x.srt: binary data, not a subtitle file$"):
        decode_subtitle_bytes(raw, "x.srt")


def test_nothing_plausible_is_doubtful():
    import random

    rng = random.Random(3)
    noise = bytes(rng.randrange(128, 256) for _ in range(300))
    got = decode_subtitle_bytes(noise)
    assert not got.confident and got.describe().endswith("(guessed)")


@settings(max_examples=1500, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.binary(max_size=2000), st.sampled_from([None, None, "utf-8", "cp1250", "utf-16", "utf-32", "idna",
                                                  "shift_jis", "nope"]))
def test_arbitrary_bytes_raise_only_our_error(raw, encoding):
    try:
        got = decode_subtitle_bytes(raw, encoding=encoding)
    except EmocliError as exc:
        assert "\n" not in str(exc)
    else:
        assert isinstance(got.text, str) and got.encoding


@settings(max_examples=300, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.binary(min_size=1, max_size=600).filter(lambda b: b"\x00" not in b).map(lambda b: bytes(x | 0x80 for x in b)))
def test_high_bytes_decode_or_raise_our_error(raw):
    try:
        decode_subtitle_bytes(raw)
    except EmocliError:
        pass
