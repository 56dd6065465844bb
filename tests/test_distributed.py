"""Past one machine: folder annotation on a local Ray cluster, and training under torchrun (gloo, CPU)."""

from __future__ import annotations

import csv
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from emocli.synth import make_media, write_srt

from conftest import SIX_CUES, build_checkpoint
from test_train import synthetic_meld

BIN = Path(sys.executable).parent
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "RAY_USAGE_STATS_ENABLED": "0"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_torchrun_two_ranks_write_one_checkpoint(tmp_path, encoders):
    meld = synthetic_meld(tmp_path / "meld", dialogues=6)
    out = tmp_path / "run"
    proc = subprocess.run([str(BIN / "torchrun"), "--nproc-per-node", "2", "--master-port", str(free_port()),
                           "-m", "emocli", "train", "--meld", str(meld), "--out", str(out), "--text-encoder",
                           encoders["text"], "--epochs", "2", "--batch-size", "4", "--cache", str(tmp_path / "cache"),
                           "--device", "cpu", "-q"], capture_output=True, text=True, env=ENV, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stderr.count("checkpoint written to") == 1  # only rank 0 logs and writes
    config = json.loads((out / "config.json").read_text())
    assert config["provenance"]["world_size"] == 2
    assert len(config["provenance"]["history"]) >= 1
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "config.json", "model.safetensors"]


ray = pytest.importorskip("ray", reason="ray is not installed (pip install 'emocli[ray]')")


@pytest.fixture
def ray_cluster(tmp_path):
    """A head and a worker node on loopback, CPU only; stopped by the test itself."""
    port = free_port()
    ray_bin = str(BIN / "ray")
    temp = Path("/tmp") / f"ray-{port}"  # Ray's socket paths must stay short
    head = subprocess.run([ray_bin, "start", "--head", "--node-ip-address", "127.0.0.1", "--port", str(port),
                           "--num-cpus", "1", "--include-dashboard", "false", "--temp-dir", str(temp),
                           "--disable-usage-stats"], capture_output=True, text=True, env=ENV, timeout=180)
    assert head.returncode == 0, head.stderr[-2000:]
    try:
        worker = subprocess.run([ray_bin, "start", "--address", f"127.0.0.1:{port}", "--node-ip-address",
                                 "127.0.0.1", "--num-cpus", "1"], capture_output=True, text=True, env=ENV,
                                timeout=180)
        assert worker.returncode == 0, worker.stderr[-2000:]
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run([ray_bin, "stop", "--force"], capture_output=True, env=ENV, timeout=120)
        shutil.rmtree(temp, ignore_errors=True)


def test_ray_folder_run_equals_local_run(tmp_path, encoders, text_model, ray_cluster):
    model = build_checkpoint(tmp_path / "tv", encoders, ["text", "video"])
    folder = tmp_path / "season"
    make_media(folder / "ep0.mp4", 6.0, audio=None)
    for i in range(4):
        if i:
            shutil.copy(folder / "ep0.mp4", folder / f"ep{i}.mp4")
        write_srt(folder / f"ep{i}.srt", SIX_CUES)
    (folder / "broken.mp4").write_bytes(b"not a video")
    write_srt(folder / "broken.srt", SIX_CUES)

    def run(*extra: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(BIN / "emocli"), "annotate", str(folder), "--model", str(model), "-q", "-f",
                               "csv,json", *extra], capture_output=True, text=True, env=ENV, timeout=600)

    local = run("-o", str(tmp_path / "local"))
    on_ray = run("-o", str(tmp_path / "ray"), "--ray", ray_cluster, "--actors", "2")
    assert local.returncode == on_ray.returncode == 1  # the broken video fails in both
    assert "broken.mp4" in on_ray.stderr and "Traceback" not in on_ray.stderr
    names = sorted(p.name for p in (tmp_path / "local").iterdir())
    assert len(names) == 8 and names == sorted(p.name for p in (tmp_path / "ray").iterdir())
    for name in names:
        if name.endswith(".csv"):
            assert (tmp_path / "local" / name).read_text() == (tmp_path / "ray" / name).read_text()
    again = run("-o", str(tmp_path / "ray"), "--ray", ray_cluster)  # resume on the cluster
    assert "4 already done (skipped)" in again.stderr

    # the voice and the speakers on the cluster: the same rows as at home (tests/fixtures/voices.*)
    voices = tmp_path / "voices"
    voices.mkdir()
    fixtures = Path(__file__).parent / "fixtures"
    scene = json.loads((fixtures / "voices.json").read_text())
    for name in ("a", "b"):
        shutil.copy(fixtures / "voices.opus", voices / f"{name}.opus")
        write_srt(voices / f"{name}.srt", [(a, b, text or "Hello?") for a, b, text, _ in scene])
    flags = ["annotate", str(voices), "--model", str(text_model), "-q", "--voice", "--diarize", "--num-speakers", "3"]
    home = subprocess.run([str(BIN / "emocli"), *flags, "-o", str(tmp_path / "v-local")], capture_output=True,
                          text=True, env=ENV, timeout=600)
    away = subprocess.run([str(BIN / "emocli"), *flags, "-o", str(tmp_path / "v-ray"), "--ray", ray_cluster],
                          capture_output=True, text=True, env=ENV, timeout=600)
    assert home.returncode == away.returncode == 0, away.stderr
    for name in ("a", "b"):  # Ray's actors run torch with other thread counts: sums differ in the 4th decimal
        with open(tmp_path / "v-local" / f"{name}.emotions.csv", newline="") as a, \
                open(tmp_path / "v-ray" / f"{name}.emotions.csv", newline="") as b:
            here, there = list(csv.DictReader(a)), list(csv.DictReader(b))
        assert len(here) == len(there) == len(scene)
        for x, y in zip(here, there):
            for key in ("speaker", "speaker_source", "emotion", "voice_emotion"):
                assert x[key] == y[key]
            assert abs(float(x["voice_confidence"] or 0) - float(y["voice_confidence"] or 0)) < 2e-3
        assert {x["speaker"] for x in here} == {"SPEAKER_00", "SPEAKER_01", "SPEAKER_02", ""}
        assert sum(bool(x["voice_emotion"]) for x in here) == len(scene) - 1  # the silent cue has none
