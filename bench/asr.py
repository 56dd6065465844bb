"""Benchmark transcription: a synthetic unsubtitled episode of espeak-ng speech (MELD dev lines, or built-in ones),
transcribed alone, then annotated end to end, in one run.

    python bench/asr.py                           # 22-minute episode, the shipped text model, CPU
    python bench/asr.py --minutes 5 --device cuda

Figures (a table, then one JSON line):
  transcribe_s     the bundled Whisper tiny.en alone on the decoded audio (model loaded before the clock)
  rtf              transcribe_s / episode length (target on the 2-core CPU: <= 0.15)
  transcribe_cli_s `emocli transcribe` on the video, end to end (a fresh process: decoding the audio, loading
                   the speech model, transcribing, writing the transcript): transcription alone, as a user runs it
  annotate_s       `emocli annotate` on the video with no subtitles, end to end (a fresh process: decoding,
                   transcription, loading the emotion model, labelling, writing)
  ratio            annotate_s / transcribe_cli_s: what labelling adds to transcribing (target <= 1.2)
  ratio_core       annotate_s / transcribe_s: the same against the bare transcription (stricter: the fresh
                   process, the audio decoding and the model loading count only on the annotate side)
  wer              word error rate of the transcript against the spoken lines (jiwer)
  lines, utterances  spoken lines, and utterances emocli made of them
Needs espeak-ng (Debian: apt-get install espeak-ng). Not a test: numbers depend on the machine.
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
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from emocli.text.asr import load_asr, transcribe  # noqa: E402
from emocli.media.ffmpeg import decode_audio, ffmpeg_exe  # noqa: E402
from emocli.synth import espeak, write_wav  # noqa: E402

MELD_DEV = Path(__file__).resolve().parents[2] / "shared" / "data" / "meld" / "dev_sent_emo.csv"
RATE = 16_000
FALLBACK = ["I can't believe you did that.", "Where are you going tonight?", "That's the best news all year.",
            "Please leave me alone.", "We won the game!", "Oh my God, you got the job?", "I miss her so much."]


def lines(n: int) -> list[str]:
    if MELD_DEV.is_file():
        with open(MELD_DEV, newline="", encoding="utf-8") as fh:
            texts = [" ".join(r["Utterance"].replace("\x92", "'").split()) for r in csv.DictReader(fh)]
        texts = [t for t in texts if 3 <= len(t.split()) <= 25 and t.isascii()]
    else:
        texts = FALLBACK
    return [texts[i % len(texts)] for i in range(n)]


def speak(texts: list[str], minutes: float, folder: Path) -> tuple[Path, list[str]]:
    """espeak-ng speech of the lines, 0.8 s apart, up to `minutes`; returns the WAV and the lines spoken."""
    pieces, spoken, total = [], [], 0.0
    for i, text in enumerate(texts):
        x = espeak(text, folder, trim=False)
        pieces += [x, np.zeros(int(0.8 * RATE), np.int16)]
        spoken.append(text)
        total += len(x) / RATE + 0.8
        if total >= minutes * 60:
            break
    return write_wav(folder / "speech.wav", pieces), spoken


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=22.0)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--model", default=None, help="annotate --model (default: the shipped model)")
    args = ap.parse_args()
    import jiwer

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        wav, spoken = speak(lines(2000), args.minutes, folder)
        video = folder / "episode.mp4"
        seconds = len(decode_audio(wav)) / RATE
        subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i",
                        f"color=c=gray:s=320x240:r=25:d={seconds:.2f}", "-i", str(wav), "-c:v", "libx264",
                        "-preset", "ultrafast", "-c:a", "aac", "-shortest", str(video)], check=True)
        audio = decode_audio(video)
        load_asr(None, args.device)
        t0 = time.perf_counter()
        utterances, label = transcribe(audio, seconds, None, args.device)
        transcribe_s = time.perf_counter() - t0
        hypothesis = " ".join(u.text for u in utterances)

        def norm(text: str) -> str:
            return " ".join("".join(c.lower() if c.isalnum() or c in "' " else " " for c in text).split())

        wer = jiwer.wer(norm(" ".join(spoken)), norm(hypothesis))
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "emocli", "transcribe", str(video), "-o", str(folder / "alone"), "-q",
                        "--device", args.device], check=True)
        transcribe_cli_s = time.perf_counter() - t0
        cmd = [sys.executable, "-m", "emocli", "annotate", str(video), "-o", str(folder / "out"), "-q",
               "--device", args.device] + (["--model", args.model] if args.model else [])
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True)
        annotate_s = time.perf_counter() - t0
        with open(folder / "out" / "episode.emotions.csv", newline="", encoding="utf-8") as fh:
            labelled = sum(1 for _ in csv.DictReader(fh))
    result = {"date": time.strftime("%Y-%m-%d"), "machine": f"{platform.machine()} {os.cpu_count()} cores",
              "device": args.device, "asr_model": label, "episode_s": round(seconds, 1), "lines": len(spoken),
              "utterances": labelled, "transcribe_s": round(transcribe_s, 1), "rtf": round(transcribe_s / seconds, 3),
              "transcribe_cli_s": round(transcribe_cli_s, 1), "annotate_s": round(annotate_s, 1),
              "ratio": round(annotate_s / transcribe_cli_s, 2), "ratio_core": round(annotate_s / transcribe_s, 2),
              "wer": round(wer, 3)}
    for key, value in result.items():
        print(f"{key:>14}: {value}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
