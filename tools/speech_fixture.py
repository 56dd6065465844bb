"""Make the speech fixtures with espeak-ng: tests/fixtures/speech.opus (one voice) and voices.opus (three), each
with a .json of the truth (start, end, text[, speaker]) of every line.

Run once, from the repository root, where espeak-ng is installed (Debian: apt-get install espeak-ng):
    python tools/speech_fixture.py [speech] [voices]       # both without an argument
(speech.opus is also the input of tests/fixtures/speaker_reference.npz: remaking it means remaking that too,
with tools/speaker_reference.py.)
speech.opus: five lines, about 1 s apart, 14 s of 16 kHz mono speech, 24 kbit/s Opus (28 KB).
voices.opus: twelve lines by three espeak-ng voices (an American woman, a low-pitched man and a British woman;
of the variants tried, the three whose speaker embeddings lie farthest apart) in
an uneven order, as a scene's turns come, 0.8 s apart, and one 2 s stretch of silence where a subtitle would
show a cue without speech; 24 kbit/s Opus.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from emocli.media.ffmpeg import ffmpeg_exe
from emocli.synth import espeak, write_wav

LINES = ["I can't believe you did that to me.", "Where are you going tonight?",
         "That's the best news I have heard all year.", "Please leave me alone.", "We won the game!"]
#: (espeak-ng voice, speaker name) of voices.opus
VOICES = {"ANNA": ("en-us+f4", 60), "BORIS": ("en-us+m1", 15), "CLARA": ("en-gb-x-rp+f2", 50)}
SCENE = [("ANNA", "Did you see the letter on the table?"), ("BORIS", "No, I just got home a minute ago."),
         ("ANNA", "It says we have to leave the flat by Friday."), ("CLARA", "Friday? That is impossible."),
         ("BORIS", "They cannot do that to us."), ("BORIS", "We signed the lease for a whole year."),
         (None, None),  # two seconds without speech
         ("CLARA", "I will call the landlord in the morning."), ("ANNA", "Thank you, that would help a lot."),
         ("CLARA", "Do not worry about it."), ("ANNA", "I am so tired of moving."),
         ("BORIS", "Let us have dinner first."), ("CLARA", "Good idea, I am starving.")]
RATE, LEAD_S, GAP_S, SILENCE_S = 16_000, 0.6, 1.0, 2.0


def say(text: str, voice: str, tmp: Path, pitch: int = 50) -> np.ndarray:
    """espeak-ng's speech at 150 words a minute, resampled to RATE, without its own leading and trailing silence."""
    return espeak(text, tmp, voice, pitch, speed=150, rate=RATE)


def write_opus(pieces: list[np.ndarray], path: Path, tmp: Path) -> None:
    wav = write_wav(tmp / "all.wav", pieces, RATE)
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-i", str(wav), "-c:a", "libopus", "-b:a", "24k", str(path)],
                   check=True)


def speech(out: Path) -> None:
    pieces, truth, t = [np.zeros(int(LEAD_S * RATE), np.int16)], [], LEAD_S
    with tempfile.TemporaryDirectory() as tmp:
        for text in LINES:
            x = say(text, "en-us", Path(tmp))
            truth.append((round(t, 3), round(t + len(x) / RATE, 3), text))
            pieces += [x, np.zeros(int(GAP_S * RATE), np.int16)]
            t += len(x) / RATE + GAP_S
        write_opus(pieces, out / "speech.opus", Path(tmp))
    (out / "speech.json").write_text(json.dumps(truth, indent=1) + "\n")


def voices(out: Path, gap_s: float = 0.8) -> None:
    pieces, truth, t = [np.zeros(int(LEAD_S * RATE), np.int16)], [], LEAD_S
    with tempfile.TemporaryDirectory() as tmp:
        for speaker, text in SCENE:
            if speaker is None:
                x = np.zeros(int(SILENCE_S * RATE), np.int16)
                truth.append((round(t, 3), round(t + SILENCE_S, 3), "(silence)", None))
            else:
                voice, pitch = VOICES[speaker]
                x = say(text, voice, Path(tmp), pitch)
                truth.append((round(t, 3), round(t + len(x) / RATE, 3), text, speaker))
            pieces += [x, np.zeros(int(gap_s * RATE), np.int16)]
            t += len(x) / RATE + gap_s
        write_opus(pieces, out / "voices.opus", Path(tmp))
    (out / "voices.json").write_text(json.dumps(truth, indent=1) + "\n")


def main(which: list[str], out: Path = Path("tests/fixtures")) -> None:
    for name in which or ["speech", "voices"]:
        {"speech": speech, "voices": voices}[name](out)


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
