"""The Python API (`import emocli`): the README's example runs as written and writes the same CSV as the command
line; options are checked as the command line checks them; a folder with a broken video keeps the others'
results."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

import emocli
from emocli.synth import make_media, write_srt

ROOT = Path(__file__).resolve().parent.parent


def readme_example() -> tuple[str, str]:
    """The README's Python example, and the output it shows for it."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## From Python"):]
    found = re.search(r"```python\n(.*?)```\s*```\n(.*?)```", section, re.S)
    return found.group(1), found.group(2)


def test_the_readme_example_writes_what_the_command_line_writes(tmp_path):
    (tmp_path / "samples").symlink_to(ROOT / "samples")
    code, shown = readme_example()
    run = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    assert run.stdout == shown  # it prints what the README says it prints
    cli = subprocess.run([sys.executable, "-m", "emocli", "annotate", "samples/sample.mp4", "--subs",
                          "samples/sample.srt", "-o", "out/cli", "-q"], cwd=tmp_path, capture_output=True, text=True,
                         timeout=600)
    assert cli.returncode == 0, cli.stderr
    python_csv = (tmp_path / "out/python/sample.emotions.csv").read_text(encoding="utf-8")
    assert python_csv == (tmp_path / "out/cli/sample.emotions.csv").read_text(encoding="utf-8")
    assert python_csv.count("\n") == 11  # a header and the 10 cues


def test_options_are_checked_as_on_the_command_line(media_dir, six_cue_srt):
    with pytest.raises(emocli.EmocliError, match="--vad must be one of silero, energy, none"):
        emocli.annotate(media_dir / "both.mp4", subs=six_cue_srt, vad="loud")
    with pytest.raises(emocli.EmocliError, match="unknown output format xml"):
        emocli.annotate(media_dir / "both.mp4", subs=six_cue_srt, formats=["xml"])
    with pytest.raises(emocli.EmocliError, match="unexpected keyword argument 'colour'"):
        emocli.annotate(media_dir / "both.mp4", subs=six_cue_srt, colour=True)
    with pytest.raises(emocli.EmocliError, match="--subs and --subs-track both name the subtitles"):
        emocli.annotate(media_dir / "both.mp4", subs=six_cue_srt, subs_track="0")
    with pytest.raises(emocli.EmocliError, match="--pooling must be one of"):
        emocli.train("MELD", "runs/x", pooling="max")
    with pytest.raises(emocli.EmocliError, match="--sentiment-weight needs --finetune-layers"):
        emocli.train("MELD", "runs/x", sentiment_weight=0.5)


def test_a_folder_with_a_broken_video_returns_the_others(tmp_path, text_model):
    folder = tmp_path / "season"
    folder.mkdir()
    for name in ("ep1", "ep2"):
        make_media(folder / f"{name}.mp4", 3.0, video=False)
        write_srt(folder / f"{name}.srt", [(0.2, 1.4, "Hello there."), (1.6, 2.8, "I can't believe it!")])
    (folder / "ep3.mp4").write_bytes(b"not a video" * 100)
    (folder / "ep3.srt").write_text("1\n00:00:00,000 --> 00:00:01,000\nHi.\n", encoding="utf-8")
    model = emocli.load_model(text_model, device="cpu")
    with pytest.raises(emocli.AnnotateError) as caught:
        emocli.annotate(folder, model=model, formats="csv", output_dir=tmp_path / "out")
    err = caught.value
    assert [r.video.name for r in err.results] == ["ep1.mp4", "ep2.mp4"]
    assert [v.name for v, _ in err.failures] == ["ep3.mp4"] and err.exit_code == 1
    assert all(len(r.predictions) == 2 and r.predictions[1].emotion in emocli.LABELS for r in err.results)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["ep1.emotions.csv", "ep2.emotions.csv"]
