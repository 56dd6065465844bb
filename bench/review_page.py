"""The review page at scale: its size per cue and, in headless Chromium (Debian's chromium and chromium-driver),
the time to open it and the longest frame while its list scrolls to the end, for 100 to 2,000 cues (a 2-hour film has about 2,000).

    python bench/review_page.py [--cues 100 500 2000] [--record]
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from emocli.labels import LABELS  # noqa: E402
from emocli.outputs.result import Prediction, VideoResult  # noqa: E402
from emocli.outputs.writers import write_outputs

RESULTS = Path(__file__).parent / "results" / f"cpu-2-core-{date.today().isoformat()}.jsonl"


def film(folder: Path, n: int) -> VideoResult:
    rng = np.random.default_rng(0)
    speakers = ["RACHEL", "ROSS", "MONICA", "CHANDLER", "JOEY", "PHOEBE"]
    words = "well I just think that we should really talk about what happened last night okay".split()
    preds = [Prediction(i + 1, 3.6 * i, 3.6 * i + 2.8, " ".join(rng.choice(words, rng.integers(3, 14))).capitalize()
                        + ".", speakers[i % 6], rng.dirichlet(np.ones(len(LABELS)) * 0.5), ["text"], position=i)
             for i in range(n)]
    return VideoResult(folder / "film.mp4", 3.6 * n, {"name": "bench"}, preds)


def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,900"):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cues", type=int, nargs="+", default=[100, 500, 2000])
    ap.add_argument("--record", action="store_true", help=f"append the figures to {RESULTS}")
    args = ap.parse_args()
    driver = browser() if shutil.which("chromium") and shutil.which("chromedriver") else None
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.cues:
            [page] = write_outputs(film(Path(tmp), n), ["html"], Path(tmp))
            row = {"bench": "review_page", "cues": n, "bytes": page.stat().st_size}
            if driver is not None:
                started = time.perf_counter()
                driver.get(page.as_uri())
                driver.execute_script("return document.querySelectorAll('#spacer .row').length")
                row["open_s"] = round(time.perf_counter() - started, 3)
                driver.set_script_timeout(120)
                # scroll the list to its end half a view per frame; the longest frame is the smoothness figure
                total, frames, worst = driver.execute_async_script(
                    "const done = arguments[arguments.length - 1], l = document.getElementById('list');"
                    "const t0 = performance.now(); let y = 0, frames = 0, worst = 0, last = t0;"
                    "function step() { const now = performance.now(); worst = Math.max(worst, now - last);"
                    " last = now; if (y > l.scrollHeight) { done([now - t0, frames, worst]); return; }"
                    " l.scrollTop = y; y += l.clientHeight / 2; frames++; requestAnimationFrame(step); }"
                    "requestAnimationFrame(step);")
                row.update(scroll_frames=frames, scroll_s=round(total / 1000, 2), worst_frame_ms=round(worst, 1))
                row["rows_in_document"] = driver.execute_script(
                    "return document.querySelectorAll('#spacer .row').length")
            rows.append(row)
            print(json.dumps(row))
    if driver is not None:
        driver.quit()
    base = rows[0]
    for row in rows[1:]:
        print(f"{row['cues']} cues: {row['bytes'] / row['cues']:.0f} bytes per cue "
              f"(over the first: {(row['bytes'] - base['bytes']) / (row['cues'] - base['cues']):.0f})")
    if args.record:
        with RESULTS.open("a", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps({**row, "date": date.today().isoformat(), "machine": platform.node()}) + "\n")


if __name__ == "__main__":
    main()
