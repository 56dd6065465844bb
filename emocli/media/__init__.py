"""Media decoding with ffmpeg: probing, 16 kHz mono audio, the frames at given times in one pass; and voice
activity (which samples hold speech), so silence is masked instead of posing as evidence."""
