"""The README's excerpt of `--voice` and `--diarize`: a short scene cut from RAVDESS recordings of two actors (a man
and a woman, both among the 8 that diarization was never fitted on), the same neutral sentences said with acted
emotions, subtitles without names; annotated with the shipped default model, then the rows printed.

    python tools/voice_demo.py [--ravdess ../shared/data/ravdess] [--out runs/voice-demo]

RAVDESS (CC BY-NC-SA 4.0) is read at run time and never copied into the repository. The voice head was trained on
all 20 actors, these two included: the excerpt shows what the columns say, not how well (that is the model card's
cross-validation by actor).
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from emocli.media.ffmpeg import decode_audio, ffmpeg_exe  # noqa: E402
from emocli.synth import write_srt  # noqa: E402

RATE = 16_000
#: (actor, RAVDESS emotion, statement): turns of a man (03) and a woman (10), strong intensity, first take
SCENE = [(3, "neutral", 1), (10, "happy", 2), (3, "angry", 1), (10, "sad", 1), (10, "fearful", 2),
         (3, "surprised", 2), (10, "angry", 1), (3, "disgust", 2)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ravdess", type=Path, default=ROOT.parent / "shared" / "data" / "ravdess")
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "voice-demo")
    args = ap.parse_args()
    with open(args.ravdess / "index.csv", newline="", encoding="utf-8") as fh:
        index = list(csv.DictReader(fh))
    args.out.mkdir(parents=True, exist_ok=True)
    pieces, cues, t = [np.zeros(RATE // 2, np.float32)], [], 0.5
    for actor, emotion, statement in SCENE:
        sentence = ("Kids are talking by the door", "Dogs are sitting by the door")[statement - 1]
        intensity = "normal" if emotion == "neutral" else "strong"  # neutral has no strong take
        row = next(r for r in index if int(r["actor"]) == actor and r["emotion"] == emotion
                   and r["intensity"] == intensity and r["statement"] == sentence and r["repetition"] == "1")
        x = decode_audio(args.ravdess / row["file"])
        cues.append((round(t, 2), round(t + len(x) / RATE, 2), row["statement"] + "."))
        pieces += [x, np.zeros(RATE // 2, np.float32)]
        t += len(x) / RATE + 0.5
        print(f"{len(cues)}: actor {actor:02d} ({row['gender']}), {emotion}: {row['file']}")
    wav = args.out / "scene.wav"
    audio = (np.clip(np.concatenate(pieces), -1, 1) * 32767).astype("<i2")
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-f", "s16le", "-ar", str(RATE), "-ac", "1", "-i", "-",
                    str(wav)], input=audio.tobytes(), check=True)
    video = args.out / "scene.mp4"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i", f"color=c=gray:s=320x240:r=25:d={t:.2f}",
                    "-i", str(wav), "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac",
                    "-shortest", str(video)], check=True)
    write_srt(args.out / "scene.srt", cues)
    subprocess.run([sys.executable, "-m", "emocli", "annotate", str(video), "--voice", "--diarize", "-f", "csv,json",
                    "-o", str(args.out), "--overwrite", "-q"], check=True, cwd=ROOT)
    with open(args.out / "scene.emotions.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    keep = ["index", "start", "end", "speaker", "speaker_source", "text", "emotion", "confidence", "voice_emotion",
            "voice_confidence"]
    print(",".join(keep))
    for r in rows:
        print(",".join(r[k] for k in keep))


if __name__ == "__main__":
    main()
