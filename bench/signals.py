"""Benchmark what --voice and --diarize add to `emocli annotate`: a synthetic episode of espeak-ng speech (MELD
dev lines, or built-in ones) by several voices taking turns, with subtitles timed to the lines (no names), annotated
with the shipped default model without and with each signal, the runs alternating, each a fresh process.

    python bench/signals.py                              # 22 minutes, 4 voices, --repeat 3
    python bench/signals.py --minutes 3 --repeat 1       # a quick look

Figures (a table, then one JSON line):
  plain_s, voice_s, diarize_s, both_s   median wall time of `emocli annotate` end to end (a fresh process: model
                   loads, decoding, labelling, writing the CSV) without a signal, with --voice, --diarize, both
  per_utterance_s  (signal run - plain run) / utterances, from the medians: what each signal adds per utterance
                   (targets on the 2-core CPU: --voice <= 0.05 s, --diarize <= 0.04 s)
  diarization      the share of utterances whose voice group is right under the best one-to-one mapping of found
                   speakers to voices (count estimated; and, from one more run, count given), the count found and
                   the count true (espeak-ng voices are far apart: an
                   easy case, not a measure of accuracy on real speech; training/diarization.py is that)
Needs espeak-ng (Debian: apt-get install espeak-ng). Not a test: numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from emocli.media.ffmpeg import ffmpeg_exe  # noqa: E402
from emocli.synth import espeak, write_srt, write_wav  # noqa: E402

MELD_DEV = ROOT.parent / "shared" / "data" / "meld" / "dev_sent_emo.csv"
RATE = 16_000
#: espeak-ng voices (variant, pitch) taking turns: two women, two men
VOICES = [("en-us+f4", 60), ("en-us+m1", 15), ("en-gb-x-rp+f2", 50), ("en-gb+m7", 40)]
FALLBACK = ["I can't believe you did that.", "Where are you going tonight?", "That's the best news all year.",
            "Please leave me alone.", "We won the game!", "Oh my God, you got the job?", "I miss her so much."]
RUNS = {"plain": [], "voice": ["--voice"], "diarize": ["--diarize"], "both": ["--voice", "--diarize"]}


def lines(n: int) -> list[str]:
    if MELD_DEV.is_file():
        with open(MELD_DEV, newline="", encoding="utf-8") as fh:
            texts = [" ".join(r["Utterance"].replace("\x92", "'").split()) for r in csv.DictReader(fh)]
        texts = [t for t in texts if 3 <= len(t.split()) <= 25 and t.isascii()]
    else:
        texts = FALLBACK
    return [texts[i % len(texts)] for i in range(n)]


def episode(folder: Path, minutes: float, voices: int, seed: int = 0) -> tuple[Path, Path, list[int]]:
    """A video (a small test picture) with espeak-ng speech of the lines, 0.8 s apart, in turns of 1-3 lines by
    `voices` voices; its SRT (cues timed to the lines, no names); the voice of each cue."""
    rng = np.random.default_rng(seed)
    pieces, cues, who, t, speaker = [], [], [], 0.5, 0
    pieces.append(np.zeros(int(0.5 * RATE), np.int16))
    for text in lines(100_000):
        if not cues or rng.random() < 0.5:
            speaker = int(rng.integers(voices)) if cues else 0
        voice, pitch = VOICES[speaker % len(VOICES)]
        x = espeak(text, folder, voice, pitch)
        cues.append((round(t, 3), round(t + len(x) / RATE, 3), text))
        who.append(speaker)
        pieces += [x, np.zeros(int(0.8 * RATE), np.int16)]
        t += len(x) / RATE + 0.8
        if t >= minutes * 60:
            break
    speech = write_wav(folder / "speech.wav", pieces)
    video = folder / "episode.mp4"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i", f"testsrc2=s=320x240:r=25:d={t:.2f}",
                    "-i", str(speech), "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a",
                    "aac", "-shortest", str(video)], check=True)
    return video, write_srt(folder / "episode.srt", cues), who


def accuracy(found: list[str], truth: list[int]) -> float:
    """The share of utterances right under the best one-to-one mapping of found speakers to true voices."""
    from scipy.optimize import linear_sum_assignment

    names = sorted({f for f in found if f})
    table = np.zeros((len(names), max(truth) + 1))
    for f, t in zip(found, truth):
        if f:
            table[names.index(f), t] += 1
    rows, cols = linear_sum_assignment(-table)
    return float(table[rows, cols].sum() / len(truth))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=22.0)
    ap.add_argument("--voices", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--model", default="default")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "emocli-bench-signals")
    args = ap.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    video, subs, who = episode(args.workdir, args.minutes, args.voices)
    times: dict[str, list[float]] = {name: [] for name in RUNS}
    rows: list[dict] = []
    for _ in range(args.repeat):
        for name, flags in RUNS.items():
            out = args.workdir / f"out-{name}"
            t = time.perf_counter()
            subprocess.run([sys.executable, "-m", "emocli", "annotate", str(video), "--subs", str(subs), "--model",
                            args.model, "--device", args.device, "-o", str(out), "--overwrite", "-q", *flags],
                           check=True, cwd=ROOT)
            times[name].append(time.perf_counter() - t)
            if name == "both":
                with open(out / "episode.emotions.csv", newline="", encoding="utf-8") as fh:
                    rows = list(csv.DictReader(fh))
    given = args.workdir / "out-given"  # once more, the count given, for its accuracy (not timed)
    subprocess.run([sys.executable, "-m", "emocli", "annotate", str(video), "--subs", str(subs), "--model",
                    args.model, "--device", args.device, "-o", str(given), "--overwrite", "-q", "--diarize",
                    "--num-speakers", str(args.voices)], check=True, cwd=ROOT)
    with open(given / "episode.emotions.csv", newline="", encoding="utf-8") as fh:
        found_given = [r["speaker"] for r in csv.DictReader(fh)]
    median = {name: statistics.median(v) for name, v in times.items()}
    n = len(rows)
    added = {name: round((median[name] - median["plain"]) / n, 4) for name in ("voice", "diarize", "both")}
    found = [r["speaker"] for r in rows]
    result = {"bench": "signals", "date": time.strftime("%Y-%m-%d"), "machine": platform.machine(),
              "cpus": os.cpu_count(), "minutes": args.minutes, "utterances": n, "voices": args.voices,
              "model": args.model, "runs": {k: [round(x, 2) for x in v] for k, v in times.items()},
              **{f"{k}_s": round(v, 2) for k, v in median.items()}, "per_utterance_s": added,
              "diarization": {"accuracy": round(accuracy(found, who), 3), "speakers_found": len(set(found) - {""}),
                              "speakers_true": len(set(who)),
                              "unassigned": sum(1 for f in found if not f),
                              "accuracy_count_given": round(accuracy(found_given, who), 3)},
              "voice_agrees_with_text": sum(1 for r in rows if r["voice_emotion"] == r["emotion"] and r["emotion"]),
              "with_voice": sum(1 for r in rows if r["voice_emotion"])}
    print(f"{'run':<10}{'median s':>10}{'added per utterance s':>24}")
    for name in RUNS:
        print(f"{name:<10}{median[name]:>10.2f}{added.get(name, 0.0):>24.4f}")
    print(f"diarization: {result['diarization']}; voice agrees with text on {result['voice_agrees_with_text']} of "
          f"{result['with_voice']}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
