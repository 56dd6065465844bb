"""The HTML review page, in a real browser: headless Chromium (Debian's chromium and chromium-driver, driven by
Selenium) opens the page from disk, and the test checks what a reviewer sees and does: the rows, the timeline, the
caption track, seeking by a click, a label changed by key and exported, corrections kept across a reload, a
2,000-cue page that keeps only the rows in view in the document, and hostile text that stays text.

Set EMOCLI_SCREENSHOTS=DIR to keep the screenshots it takes."""

from __future__ import annotations

import csv
import io
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from emocli.labels import LABELS
from emocli.cli import app
from emocli.outputs.review import read_page_data
from emocli.synth import make_media, write_srt
from emocli.outputs.result import Prediction, VideoResult
from emocli.outputs.writers import write_outputs

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
DRIVER = shutil.which("chromedriver")
needs_browser = pytest.mark.skipif(
    not (CHROMIUM and DRIVER), reason="headless Chromium is not installed (Debian: apt-get install chromium "
    "chromium-driver; .ci/run installs them)")

HOSTILE = ['<script>window.pwned = 1</script>', '"><img src=x onerror="window.pwned = 2">',
           'a </script><script>window.pwned = 3</script> b']


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if not (CHROMIUM and DRIVER):
        pytest.skip("headless Chromium is not installed (Debian: apt-get install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    downloads = tmp_path_factory.mktemp("downloads")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--mute-audio",
                "--window-size=1400,900", "--autoplay-policy=no-user-gesture-required"):
        options.add_argument(arg)
    options.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                              "download.prompt_for_download": False})
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)  # the given driver: nothing downloaded
    driver.downloads = downloads
    yield driver
    driver.quit()


def wait_for(driver, script: str, timeout: float = 15.0):
    """Poll a JavaScript expression until it is truthy; return its value."""
    end = time.monotonic() + timeout
    while True:
        value = driver.execute_script(f"return ({script});")
        if value or time.monotonic() > end:
            return value
        time.sleep(0.05)


def screenshot(driver, tmp_path: Path, name: str) -> Path:
    keep = os.environ.get("EMOCLI_SCREENSHOTS")
    path = (Path(keep) if keep else tmp_path) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(path))
    assert path.stat().st_size > 10_000  # a rendered page, not a blank one
    return path


CUES = [(0.2, 1.0, "I can't believe you did that!"), (1.1, 2.0, "JOEY: How you doin'?"),
        (2.1, 3.0, "[door slams]"), (3.2, 4.0, "That's so sad."), (4.1, 5.0, "Get out!"), (5.1, 5.9, "Okay.")]


@pytest.fixture(scope="module")
def annotated(tmp_path_factory, text_model):
    """A 6-second test video annotated by emocli with -f csv,html (one cue a sound description)."""
    root = tmp_path_factory.mktemp("review")
    video = make_media(root / "media" / "clip.mp4", 6.0)
    write_srt(root / "media" / "clip.srt", CUES)
    out = root / "out"
    result = CliRunner().invoke(app, ["annotate", str(video), "--model", str(text_model), "-o", str(out), "-f",
                                      "csv,html", "--device", "cpu", "-q"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return out / "clip.emotions.html", out / "clip.emotions.csv"


@needs_browser
def test_the_page_plays_seeks_and_exports_corrections(browser, annotated, tmp_path):
    page, table = annotated
    import pandas as pd

    predicted = pd.read_csv(table, keep_default_na=False)
    browser.get(page.as_uri())
    assert wait_for(browser, "document.querySelectorAll('#spacer .row').length") == len(CUES)
    labelled = predicted[predicted.emotion != ""]
    assert len(labelled) == len(CUES) - 1  # the sound description is written unlabelled
    assert browser.execute_script("return document.querySelectorAll('#track rect.cue').length") == len(labelled)
    assert wait_for(browser, "document.getElementById('video').readyState >= 1"), "the video did not load"
    cues = browser.execute_script("return Array.from(document.getElementById('video').textTracks[0].cues)"
                                  ".map(c => [c.startTime, c.endTime, c.text])")
    assert [round(c[0], 3) for c in cues] == [c[0] for c in CUES]
    first = labelled.iloc[0]
    assert cues[0][2].startswith(f"<c.{first.emotion}>[{first.emotion} {float(first.confidence):.2f}]")

    rows = browser.find_elements("css selector", "#spacer .row")
    rows[3].find_element("css selector", ".text").click()
    assert wait_for(browser, "Math.abs(document.getElementById('video').currentTime - 3.2) < 0.01")
    assert browser.execute_script("return document.querySelector('#spacer .row.selected .text').textContent") \
        == "That's so sad."  # (the rows are drawn anew, so they are found anew)
    assert wait_for(browser, "document.querySelector('#spacer .row.current .text')?.textContent") == "That's so sad."

    # keyboard: down to the next utterance, "1" sets anger, "0" marks the sound cue's neighbour as not speech
    body = browser.find_element("css selector", "body")
    body.send_keys("\ue015")  # arrow down: row 4, "Get out!"
    assert wait_for(browser, "Math.abs(document.getElementById('video').currentTime - 4.1) < 0.01")
    body.send_keys("1")
    body.send_keys("\ue013", "\ue013", "\ue013", "0")  # up 3 times: row 2 ("How you doin'?"), not speech
    exported = list(csv.DictReader(io.StringIO(browser.execute_script("return emocliReview.correctionsCsv()"))))
    assert [r["text"] for r in exported] == list(predicted.text)
    assert {r["text"]: r["corrected"] for r in exported if r["corrected"]} == {"Get out!": "anger",
                                                                            "How you doin'?": "not speech"}
    assert [r["predicted"] for r in exported] == list(predicted.emotion)
    assert browser.execute_script("return document.querySelectorAll('#track rect.cue').length") == len(labelled) - 1
    shot = screenshot(browser, tmp_path, "review-page.png")

    browser.find_element("id", "export").click()
    download = browser.downloads / "clip.corrections.csv"
    end = time.monotonic() + 10
    while not download.exists() and time.monotonic() < end:
        time.sleep(0.1)
    assert download.read_text(encoding="utf-8") == browser.execute_script("return emocliReview.correctionsCsv()")

    browser.refresh()  # the corrections are kept in the browser, for this page
    wait_for(browser, "document.querySelectorAll('#spacer .row').length")
    again = list(csv.DictReader(io.StringIO(browser.execute_script("return emocliReview.correctionsCsv()"))))
    assert again == exported
    assert "reviewed 2 (2 changed)" in browser.find_element("id", "review-count").text
    browser.execute_script("localStorage.clear()")
    assert shot.exists()
    browser.find_elements("css selector", "#track rect.cue")[-1].click()  # the timeline seeks too: "Okay."
    assert wait_for(browser, "Math.abs(document.getElementById('video').currentTime - 5.1) < 0.01")
    assert browser.execute_script("return document.querySelector('#spacer .row.selected .text').textContent") == "Okay."

    # emocli score reads the exported file against the CSV the same run wrote
    result = CliRunner().invoke(app, ["score", str(table), str(download), "-o", str(tmp_path / "score")])
    assert result.exit_code == 0, result.output
    assert "1 scored" in result.output and "1 marked not speech" in result.output


def hostile_result(folder: Path, n: int = 3, name: str = 'x"><img src=y onerror=alert(1)>.mp4') -> VideoResult:
    rng = np.random.default_rng(0)
    preds = []
    for i in range(n):
        p = rng.dirichlet(np.ones(len(LABELS)))
        preds.append(Prediction(i + 1, 2.0 * i, 2.0 * i + 1.5, HOSTILE[i % 3] + f" #{i + 1}",
                                ['<b onmouseover="window.pwned = 4">BOB</b>', "ANN", ""][i % 3], p, ["text"],
                                position=i))
    return VideoResult(folder / name, 2.0 * n, {"name": "test"}, preds)


@needs_browser
def test_hostile_text_stays_text(browser, tmp_path):
    result = hostile_result(tmp_path)
    [page] = write_outputs(result, ["html"], tmp_path / "out")
    data = read_page_data(page)
    assert [r[5] for r in data["rows"]] == [p.text for p in result.predictions]  # the data round-trips
    raw = page.read_text(encoding="utf-8")
    assert "<img" not in raw and raw.count("</script>") == 2  # the JSON block's and the script's own
    browser.get(page.as_uri())
    assert wait_for(browser, "document.querySelectorAll('#spacer .row').length") == 3
    texts = browser.execute_script("return Array.from(document.querySelectorAll('#spacer .row .text'))"
                                   ".map(e => e.textContent)")
    assert texts == [p.text for p in result.predictions]
    assert browser.execute_script("return document.getElementById('title').textContent") == result.video.name
    speakers = browser.execute_script("return Array.from(document.querySelectorAll('#spacer .row .speaker'))"
                                      ".map(e => e.textContent)")
    assert speakers[0] == result.predictions[0].speaker
    assert browser.execute_script("return document.querySelectorAll('img, b, #spacer script').length") == 0
    assert browser.execute_script("return typeof window.pwned") == "undefined"
    assert browser.title.startswith(result.video.name)


@needs_browser
def test_a_film_of_2000_cues_keeps_only_the_rows_in_view(browser, tmp_path):
    result = hostile_result(tmp_path, n=2000, name="film.mp4")
    [page] = write_outputs(result, ["html"], tmp_path)
    started = time.monotonic()
    browser.get(page.as_uri())
    assert wait_for(browser, "document.querySelectorAll('#spacer .row').length")
    loaded = time.monotonic() - started
    in_document = browser.execute_script("return document.querySelectorAll('#spacer .row').length")
    assert 5 < in_document < 100, in_document  # virtualised
    assert browser.execute_script("return document.querySelectorAll('#track rect.cue').length") == 2000
    browser.execute_script("const l = document.getElementById('list'); l.scrollTop = l.scrollHeight;")
    assert wait_for(browser, "Array.from(document.querySelectorAll('#spacer .row .text'))"
                             ".some(e => e.textContent.endsWith('#2000'))")
    browser.execute_script("document.getElementById('f-speaker').value = 'ANN';"
                           "document.getElementById('f-speaker').dispatchEvent(new Event('change'));")
    assert browser.find_element("id", "shown").text == "showing 667 of 2000"
    assert loaded < 30  # (the bench measures it; this only catches a page that hangs)


def test_folder_mode_writes_an_index_of_the_pages(tmp_path, text_model):
    from conftest import SIX_CUES, season
    from emocli.synth import make_media as make

    media = tmp_path / "media"
    make(media / "both.mp4", 6.0)
    folder = season(media, tmp_path / "season", 2)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["annotate", str(folder), "--model", str(text_model), "-o", str(out), "-f",
                                      "html", "--device", "cpu", "-q"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    data = read_page_data(out / "index.html")
    assert [p["video"] for p in data["pages"]] == ["ep0.mp4", "ep1.mp4"]
    assert [p["href"] for p in data["pages"]] == ["ep0.emotions.html", "ep1.emotions.html"]
    assert all(p["utterances"] == len(SIX_CUES) and sum(k for _, k in p["emotions"]) == len(SIX_CUES)
               for p in data["pages"])
    page = read_page_data(out / "ep0.emotions.html")
    assert page["src"] == "../season/ep0.mp4" and len(page["rows"]) == len(SIX_CUES)


@needs_browser
def test_with_faces_the_page_has_a_face_lane_and_column(browser, tmp_path):
    from emocli.signals.faces import FaceReading

    result = hostile_result(tmp_path, n=3, name="faces.mp4")
    joy = np.eye(len(LABELS))[LABELS.index("joy")] * 0.9 + 0.1 / len(LABELS)
    readings = [FaceReading(joy, 8, [(1.0, 2.0, 50.0, 60.0)] * 8), FaceReading(None, 0, [None] * 8), None]
    for p, face in zip(result.predictions, readings):
        p.face = face
    result.faces = True
    [page] = write_outputs(result, ["html"], tmp_path)
    browser.get(page.as_uri())
    assert wait_for(browser, "document.querySelectorAll('#spacer .row').length") == 3
    lanes = browser.execute_script("return Array.from(document.querySelectorAll('#lanes div')).map(e => e.textContent)")
    assert lanes == [*LABELS, "face"]
    faces = browser.execute_script("return Array.from(document.querySelectorAll('#spacer .row .face-col'))"
                                   ".map(e => e.textContent)")
    assert faces == [f"joy {joy.max():.2f}", "no face", ""]
    # one face rect, in the last lane, coloured as joy
    face_rects = browser.execute_script(
        "return Array.from(document.querySelectorAll('#track rect.cue')).filter(r => r.getAttribute('y') == 7 * 14 + 1)"
        ".map(r => r.getAttribute('fill'))")
    from emocli.labels import EMOTION_COLORS

    assert face_rects == [EMOTION_COLORS["joy"]]


@needs_browser
def test_with_voice_the_page_has_a_voice_lane_and_column(browser, tmp_path):
    from emocli.signals.voice import VoiceReading

    result = hostile_result(tmp_path, n=3, name="voices.mp4")
    anger = np.eye(len(LABELS))[LABELS.index("anger")] * 0.8 + 0.2 / len(LABELS)
    for p, voice in zip(result.predictions, [VoiceReading(anger, 1.4), None, VoiceReading(anger, 0.6)]):
        p.voice = voice
    result.faces, result.voices = True, True  # both lanes, the voice's last
    [page] = write_outputs(result, ["html"], tmp_path)
    browser.get(page.as_uri())
    assert wait_for(browser, "document.querySelectorAll('#spacer .row').length") == 3
    lanes = browser.execute_script("return Array.from(document.querySelectorAll('#lanes div')).map(e => e.textContent)")
    assert lanes == [*LABELS, "face", "voice"]
    voices = browser.execute_script("return Array.from(document.querySelectorAll('#spacer .row .voice-col'))"
                                    ".map(e => e.textContent)")
    assert voices == [f"anger {anger.max():.2f}", "no voice", f"anger {anger.max():.2f}"]
    voice_rects = browser.execute_script(
        "return Array.from(document.querySelectorAll('#track rect.cue')).filter(r => r.getAttribute('y') == 8 * 14 + 1)"
        ".map(r => r.getAttribute('fill'))")
    from emocli.labels import EMOTION_COLORS

    assert voice_rects == [EMOTION_COLORS["anger"]] * 2
    screenshot(browser, tmp_path, "review-voice.png")
