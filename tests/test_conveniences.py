"""Summaries, plots, attention, coloured SRT, ASS, explain, model listing and hub errors."""

from __future__ import annotations

import json
import re

import pysrt
import pytest
from typer.testing import CliRunner

from emocli.labels import LABELS
from emocli.cli import app
from emocli.labels import EMOTION_COLORS

from conftest import SIX_CUES, build_checkpoint

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def test_summary_plot_attention_colour_and_ass(media_dir, trimodal_model, six_cue_srt, tmp_path):
    result = invoke("annotate", media_dir / "both.mp4", "--subs", six_cue_srt, "--model", trimodal_model, "-o",
                    tmp_path, "-f", "srt,ass", "--color", "--plot", "--attention", "--vad", "energy", "--device",
                    "cpu")
    assert result.exit_code == 0, result.output
    # summary: counts per emotion that add up, a dominant emotion for the named speaker
    counts = {label: int(n) for label, n in re.findall(r"(\w+) (\d+) \(\d+%\)", result.output)}
    assert set(counts) <= set(LABELS) and sum(counts.values()) == len(SIX_CUES)
    assert "dominant emotion per speaker" in result.output and re.search(r"JOEY\s+\w+\s+1/1", result.output)

    png = tmp_path / "both.emotions.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and 20_000 < png.stat().st_size < 2_000_000
    from PIL import Image

    width, height = Image.open(png).size
    assert width > 800 and height > 500

    doc = json.loads((tmp_path / "both.emotions.json").read_text())  # --attention adds the JSON
    for utt in doc["utterances"]:
        att = utt["attention"]
        assert set(att["text"]) == {"audio", "video"} and set(att["audio"]) == {"text", "video"}
        for m in ("text", "audio", "video"):
            assert sum(att[m].values()) == pytest.approx(1.0, abs=1e-3)
        assert len(att["frames"]) == 8 and sum(att["frames"]) == pytest.approx(1.0, abs=1e-3)

    srt = pysrt.open(tmp_path / "both.emotions.srt")
    assert len(srt) == len(SIX_CUES)
    for item, utt in zip(srt, doc["utterances"]):
        assert item.text.startswith(f'<font color="{EMOTION_COLORS[utt["emotion"]]}">[{utt["emotion"]} ')
        assert item.text.endswith("</font>")

    ass = (tmp_path / "both.emotions.ass").read_text()
    styles = re.findall(r"^Style: (\w+),", ass, re.M)
    assert styles == list(LABELS)
    events = re.findall(r"^Dialogue: 0,([\d:.]+),([\d:.]+),(\w+),([^,]*),", ass, re.M)
    assert [e[2] for e in events] == [u["emotion"] for u in doc["utterances"]]
    assert events[1][3] == "JOEY" and events[0][0] == "0:00:00.20" and events[0][1] == "0:00:01.00"


def test_quiet_prints_nothing_verbose_prints_every_line(media_dir, trimodal_model, six_cue_srt, tmp_path):
    quiet = invoke("annotate", media_dir / "noaudio.mp4", "--subs", six_cue_srt, "--model", trimodal_model, "-o",
                   tmp_path / "q", "-q")
    assert quiet.exit_code == 0 and quiet.output.strip() == ""
    verbose = invoke("annotate", media_dir / "noaudio.mp4", "--subs", six_cue_srt, "--model", trimodal_model,
                     "-o", tmp_path / "v", "-v")
    assert sum(1 for line in verbose.output.splitlines() if re.match(r"\s+\d+\.\d+-\s*\d+\.\d+ ", line)) == 6


def test_explain_writes_a_figure(media_dir, trimodal_model, six_cue_srt, tmp_path):
    out = tmp_path / "cue3.png"
    result = invoke("explain", media_dir / "both.mp4", "--subs", six_cue_srt, "--index", "3", "--model",
                    trimodal_model, "-o", out, "--vad", "energy", "--device", "cpu")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output.splitlines()[0])
    assert data["emotion"] in LABELS and len(data["attention"]["frames"]) == 8
    assert out.stat().st_size > 20_000
    missing = invoke("explain", media_dir / "both.mp4", "--subs", six_cue_srt, "--index", "99", "--model",
                     trimodal_model)
    assert missing.exit_code == 2 and "no labelled cue number 99" in missing.output


def test_hub_id_offline_is_one_clear_error(media_dir, six_cue_srt, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    result = invoke("annotate", media_dir / "both.mp4", "--subs", six_cue_srt, "--model", "someone/emotions")
    assert result.exit_code == 2
    assert "'someone/emotions' is not a local directory" in result.output and "offline" in result.output


def test_models_lists_checkpoints_with_scores(tmp_path, encoders):
    build_checkpoint(tmp_path / "runs" / "a", encoders, ["text"])
    (tmp_path / "runs" / "broken").mkdir()
    (tmp_path / "runs" / "broken" / "config.json").write_text("{not json")
    result = invoke("ensemble", tmp_path / "runs" / "a", build_checkpoint(tmp_path / "b", encoders, ["text"], seed=1),
                    "--out", tmp_path / "runs" / "pair")
    assert result.exit_code == 0, result.output
    result = invoke("models", tmp_path / "runs", "--json")
    found = {m["path"].split("/")[-1]: m for m in json.loads(result.output)}
    assert found["a"]["modalities"] == ["text"] and "error" in found["broken"]
    assert (found["a"]["members"], found["pair"]["members"]) == (1, 2)
    assert "[text, ensemble of 2]" in invoke("models", tmp_path / "runs").output


def test_info_says_where_each_modality_runs(trimodal_model):
    data = json.loads(invoke("info", "--model", trimodal_model, "--json").output)
    assert set(data["modalities"]) == {"text", "audio", "video"}
    assert data["cuda_available"] in (True, False)
