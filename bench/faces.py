"""Benchmark --face: what reading faces adds to annotate, on a synthetic 854x480 video of the test face
(tests/fixtures/face.jpg, on a gray canvas, moving) with one subtitle cue every 3 s, in one run.

    python bench/faces.py                 # 40 cues, the shipped text model, CPU
    python bench/faces.py --cues 200 --device cuda

Figures (a table, then one JSON line):
  plain_s, face_s     `emocli annotate` end to end (fresh processes) without and with --face, the fastest of
                      --repeat alternating runs
  face_per_utt_s      (face_s - plain_s) / cues: detection (MTCNN on 8 frames at 854x480) and expression per cue
  found               cues whose face_frames is 8 (every one shows the face)
Not a test: numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from emocli.media.ffmpeg import ffmpeg_exe  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cues", type=int, default=40)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeat", type=int, default=2, help="runs of each, alternating; the fastest counts (the "
                    "first run of a session also pays for reading PyTorch from disk)")
    args = ap.parse_args()
    seconds = 3.0 * args.cues
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        video = folder / "faces.mp4"
        subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i",
                        f"color=c=gray:s=854x480:r=25:d={seconds}", "-loop", "1", "-r", "25", "-t", f"{seconds}",
                        "-i", str(ROOT / "tests" / "fixtures" / "face.jpg"), "-f", "lavfi", "-i",
                        f"anullsrc=r=16000:cl=mono:d={seconds}", "-filter_complex",
                        "[0:v][1:v]overlay=x='235+200*sin(t/3)':y=48:shortest=1[v]", "-map", "[v]", "-map", "2:a",
                        "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac",
                        "-shortest", str(video)], check=True)
        srt = "".join(f"{k + 1}\n00:{int(3 * k) // 60:02d}:{int(3 * k) % 60:02d},200 --> "
                      f"00:{int(3 * k + 2) // 60:02d}:{int(3 * k + 2) % 60:02d},800\nLine number {k + 1}.\n\n"
                      for k in range(args.cues))
        (folder / "faces.srt").write_text(srt)
        times: dict[str, float] = {}
        for run in range(args.repeat):
            for name, extra in (("plain", []), ("face", ["--face"])):
                t0 = time.perf_counter()
                subprocess.run([sys.executable, "-m", "emocli", "annotate", str(video), "-o",
                                str(folder / f"{name}{run}"),
                                "-q", "--device", args.device] + extra, check=True)
                times[name] = min(times.get(name, float("inf")), time.perf_counter() - t0)
        with open(folder / "face0" / "faces.emotions.csv", newline="", encoding="utf-8") as fh:
            found = sum(r["face_frames"] == "8" for r in csv.DictReader(fh))
    result = {"date": time.strftime("%Y-%m-%d"), "machine": f"{platform.machine()} {os.cpu_count()} cores",
              "device": args.device, "cues": args.cues, "frame": "854x480",
              "repeat": args.repeat, "plain_s": round(times["plain"], 1),
              "face_s": round(times["face"], 1),
              "face_per_utt_s": round((times["face"] - times["plain"]) / args.cues, 3), "found": found}
    for key, value in result.items():
        print(f"{key:>15}: {value}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
