"""The review page: a result -> one self-contained HTML file (inline CSS and JavaScript, no server, no CDN) that
plays the video with its emotions as a caption track, a clickable timeline and a filterable list, and lets a
reviewer correct labels and export them as `<stem>.corrections.csv` (which `emocli score` measures the model on).
Also the folder index (`index.html`) that links every video's page.

Untrusted text (cue text, speaker and file names) reaches the page only as JSON inside a
`<script type="application/json">` block, with `<`, `>` and `&` written as \\u escapes, so it can never end the
block or open a tag; the page's script puts it into the document with `textContent`, never as markup."""

from __future__ import annotations

import hashlib
import html
import json
import os
import re
from collections import Counter
from importlib import resources
from pathlib import Path
from urllib.parse import quote

from ..files import atomic_write, remove_stale_temps
from ..labels import EMOTION_COLORS, LABELS
from .result import VideoResult, output_path, rounded

DATA_ID = "emocli-data"
PAGE_EXTENSION = "html"  # (writers.HtmlWriter writes the pages)
INDEX_NAME = "index.html"
NOT_SPEECH = "not speech"  # the reviewer's mark for a row that is no utterance (and what `score` leaves out)

_DATA_BLOCK = re.compile(rf'<script type="application/json" id="{DATA_ID}">(.*?)</script>', re.S)


def _asset(name: str) -> str:
    return resources.files("emocli.outputs").joinpath("assets", name).read_text(encoding="utf-8")


def script_json(data: object) -> str:
    """JSON that is safe inside a <script> block: no character of it can close the block or start markup."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return (text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def video_url(video: Path, page_dir: Path) -> str:
    """The video as a URL relative to the page (so the pair can move together), or a file: URL where there is no
    relative path (another drive)."""
    try:
        rel = os.path.relpath(Path(video).absolute(), Path(page_dir).absolute())
    except ValueError:
        return Path(video).absolute().as_uri()
    return quote(Path(rel).as_posix())


def _r(x: float | None, digits: int = 3) -> float | None:
    return rounded(x, digits)


def page_data(result: VideoResult, page_dir: Path) -> dict:
    """What the page shows, as compact rows (one list per row: the size grows linearly with the cues)."""
    rows = []
    for p in result.predictions:
        r = p.record()
        face = r["face"] if result.faces else None
        probs = r["probabilities"]
        row = [r["index"] if isinstance(r["index"], int) else str(r["index"]), r["turn"], _r(r["start"]),
               _r(r["end"]), r["speaker"] or "", r["text"], r["emotion"], _r(r["confidence"]),
               [_r(v) for v in probs.values()] if probs is not None else None, r["source"],
               r["non_speech"] or "", face.emotion if face is not None else None,
               _r(face.confidence) if face is not None and face.frames else None,
               face.frames if face is not None else None]
        if result.voices:  # only then: pages without --voice stay as they were
            voice = r["voice"]
            row += [voice.emotion if voice else None, _r(voice.confidence) if voice else None]
        rows.append(row)
    video = Path(result.video)
    model = result.model or {}
    data = {"video": video.name, "src": video_url(video, page_dir), "stem": result.stem or video.stem,
            "duration": _r(result.duration_s), "labels": list(LABELS), "colors": EMOTION_COLORS,
            "faces": result.faces, "model": {k: model.get(k) for k in ("name", "modalities", "members", "test_weighted_f1")
                                               if model.get(k) is not None},
            "columns": ["index", "turn", "start", "end", "speaker", "text", "emotion", "confidence",
                        "probabilities", "source", "non_speech", "face_emotion", "face_confidence", "face_frames"]
            + (["voice_emotion", "voice_confidence"] if result.voices else []),
            "rows": rows}
    if result.voices:
        data["voices"] = True
    # the key under which the browser keeps this page's corrections: another run's output gets its own
    data["hash"] = hashlib.sha256(script_json(data).encode("utf-8")).hexdigest()[:16]
    return data


def _document(title: str, body_class: str, markup: str, data: object, script: str) -> str:
    """One self-contained page: the shared stylesheet, the markup, the data block and one script, all inline."""
    body_attr = f' class="{body_class}"' if body_class else ""
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f'<title>{html.escape(title)}</title>\n<meta name="generator" content="emocli">\n'
            f'<style>\n{_asset("review.css")}</style>\n</head>\n'
            f'<body{body_attr}>\n{markup}'
            f'<script type="application/json" id="{DATA_ID}">{script_json(data)}</script>\n'
            f'<script>\n{_asset(script)}</script>\n</body>\n</html>\n')


def render_page(result: VideoResult, page_dir: Path) -> str:
    data = page_data(result, page_dir)
    return _document(f"{data['video']} — emotions (emocli)", "", _asset("review.html"), data, "review.js")


def read_page_data(path: str | Path) -> dict | None:
    """The data block of a review page emocli wrote (None when the file is not one)."""
    try:
        match = _DATA_BLOCK.search(Path(path).read_text(encoding="utf-8"))
        return json.loads(match.group(1)) if match else None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None


def page_summary(data: dict) -> dict:
    """Counts for the index: utterances labelled, rows not speech, the emotions by share, speakers."""
    columns = data["columns"]
    emotion, speaker = columns.index("emotion"), columns.index("speaker")
    labelled = [r for r in data["rows"] if r[emotion]]
    counts = Counter(r[emotion] for r in labelled)
    return {"video": data["video"], "utterances": len(labelled), "not_speech": len(data["rows"]) - len(labelled),
            "speakers": len({r[speaker] for r in labelled if r[speaker]}), "duration": data.get("duration"),
            "emotions": [[label, k] for label, k in counts.most_common()]}


def write_index(pages: list[Path], folder: Path) -> Path | None:
    """`folder/index.html`: every review page in `pages` that exists, with its counts and dominant emotions and a
    link to it (relative). None when there is no page."""
    entries = []
    for page in sorted(set(pages)):
        data = read_page_data(page)
        if data is None:
            continue
        summary = page_summary(data)
        summary["href"] = video_url(page, folder)
        entries.append(summary)
    if not entries:
        return None
    doc = {"labels": list(LABELS), "colors": EMOTION_COLORS, "pages": entries}
    table = ('<header><h1>emocli review pages</h1><p id="summary"></p></header>\n'
             '<main><table id="pages"><thead><tr><th>video</th><th>utterances</th><th>not speech</th>'
             '<th>speakers</th><th>duration</th><th>dominant emotions</th></tr></thead><tbody></tbody></table>'
             '</main>\n')
    body = _document(f"{folder.absolute().name} — emocli review pages", "index", table, doc, "index.js")
    path = Path(folder) / INDEX_NAME
    remove_stale_temps(path)
    return atomic_write(path, body)


def write_run_index(jobs, formats: list[str], folder: str | Path) -> Path | None:
    """Folder mode with html: `folder/index.html` over the pages of the run's jobs, those written now and those
    written by an earlier run for the videos it skipped (a failed video has none). None without html."""
    if PAGE_EXTENSION not in formats:
        return None
    return write_index([output_path(j.video, j.output_dir, PAGE_EXTENSION, j.stem) for j in jobs], Path(folder))
