"""Make tests/fixtures/speech.opus (and speech.json, the truth: start, end, text of each line) with espeak-ng.

Run once, from the repository root, where espeak-ng is installed (Debian: apt-get install espeak-ng):
    python tools/speech_fixture.py
Five lines, about 1 s apart, 14 s of 16 kHz mono speech, encoded as 24 kbit/s Opus (28 KB).
"""

from __future__ import annotations

import json
import subprocess
import tempfile
import wave
from pathlib import Path

import numpy as np

from emocli.media.ffmpeg import ffmpeg_exe

LINES = ["I can't believe you did that to me.", "Where are you going tonight?",
         "That's the best news I have heard all year.", "Please leave me alone.", "We won the game!"]
RATE, LEAD_S, GAP_S = 16_000, 0.6, 1.0


def main(out: Path = Path("tests/fixtures")) -> None:
    pieces, truth, t = [np.zeros(int(LEAD_S * RATE), np.int16)], [], LEAD_S
    with tempfile.TemporaryDirectory() as tmp:
        for i, text in enumerate(LINES):
            wav = Path(tmp) / f"{i}.wav"
            subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(wav), text], check=True)
            with wave.open(str(wav)) as w:
                rate, data = w.getframerate(), np.frombuffer(w.readframes(w.getnframes()), np.int16)
            x = np.interp(np.arange(0, len(data) * RATE / rate) * rate / RATE, np.arange(len(data)),
                          data).astype(np.int16)
            voiced = np.nonzero(np.abs(x) > 300)[0]
            x = x[voiced[0]:voiced[-1] + 1]  # espeak's own leading and trailing silence
            truth.append((round(t, 3), round(t + len(x) / RATE, 3), text))
            pieces += [x, np.zeros(int(GAP_S * RATE), np.int16)]
            t += len(x) / RATE + GAP_S
        wav = Path(tmp) / "speech.wav"
        with wave.open(str(wav), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(RATE)
            w.writeframes(np.concatenate(pieces).tobytes())
        subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-i", str(wav), "-c:a", "libopus", "-b:a", "24k",
                        str(out / "speech.opus")], check=True)
    (out / "speech.json").write_text(json.dumps(truth, indent=1) + "\n")


if __name__ == "__main__":
    main()
