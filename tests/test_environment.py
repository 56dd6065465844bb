"""A library that transformers imports whenever it is installed, but that does not load (a torchaudio built for
another torch, the failure a fresh install once hit), must not break emocli: one line names it and its fix, and
annotate still works. The broken builds are simulated by packages that fail on import as the real ones do,
placed ahead of site-packages."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SAMPLE, SAMPLE_SRT = ROOT / "samples" / "sample.mp4", ROOT / "samples" / "sample.srt"
EMOCLI = [sys.executable, "-m", "emocli"]
TORCH = torch.__version__.split("+")[0]

#: what the real broken builds raise: torchaudio 2.11.1 beside torch 2.11.0, and a torchvision for another torch
TORCHAUDIO_ERROR = '''
import os, torch
_lib = os.path.join(os.path.dirname(__file__), "lib", "libtorchaudio.so")
try:
    raise OSError(f"{_lib}: undefined symbol: torch_exception_get_what_without_backtrace")
except OSError as e:
    raise OSError(f"Could not load this library: {_lib}") from e
'''
TORCHVISION_ERROR = 'raise RuntimeError("operator torchvision::nms does not exist")\n'


def broken_package(root: Path, name: str, version: str, body: str) -> Path:
    """A package `name` (with its dist-info, so its version reads as installed) whose import fails like `body`."""
    (root / name).mkdir(parents=True)
    (root / name / "__init__.py").write_text(body)
    info = root / f"{name}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    return root


def run(args: list[str], shadow: Path, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(shadow), str(ROOT)]))
    return subprocess.run(args, capture_output=True, text=True, env=env, cwd=cwd, timeout=600)


def load_minilm_beside(shadow: Path, cwd: Path) -> list[str]:
    """Load the bundled MiniLM through emocli's loader with `shadow` on the path: the model class, then each
    broken library's line."""
    script = ("from emocli.environment import prepare_transformers\n"
              "from emocli.model.encoders import load_pretrained\n"  # transformers' audio/image code imports them
              "print(type(load_pretrained('minilm')).__name__)\n"
              "for b in prepare_transformers(): print(b.message())\n")
    proc = run([sys.executable, "-c", script], shadow, cwd)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines()


@pytest.fixture(scope="module")
def broken_torchaudio(tmp_path_factory) -> Path:
    return broken_package(tmp_path_factory.mktemp("shadow"), "torchaudio", "2.11.1", TORCHAUDIO_ERROR)


def test_annotate_works_beside_a_broken_torchaudio_and_names_the_fix(broken_torchaudio, tmp_path):
    proc = run(EMOCLI + ["annotate", str(SAMPLE), "--subs", str(SAMPLE_SRT), "-o", str(tmp_path)],
               broken_torchaudio, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr and "Could not load this library" not in proc.stderr
    warnings = [line for line in proc.stderr.splitlines() if "torchaudio" in line]
    assert warnings == [f"emocli: warning: torchaudio 2.11.1 does not load beside torch {torch.__version__} "
                        "(libtorchaudio.so: undefined symbol: torch_exception_get_what_without_backtrace); "
                        "emocli does not use it and runs without it; fix: pip install torchaudio==2.11.0"]
    with open(tmp_path / "sample.emotions.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 10 and all(row["emotion"] for row in rows)


def test_info_reports_the_same_line(broken_torchaudio, tmp_path):
    proc = run(EMOCLI + ["info"], broken_torchaudio, tmp_path)
    assert proc.returncode == 0, proc.stderr
    row = [line for line in proc.stdout.splitlines() if line.strip().startswith("torchaudio:")]
    assert len(row) == 1
    assert row[0].split(": ", 1)[1].startswith("torchaudio 2.11.1 does not load beside torch")
    assert row[0].endswith("fix: pip install torchaudio==2.11.0")


def test_quiet_annotate_prints_nothing_and_a_healthy_torchaudio_no_warning(broken_torchaudio, tmp_path):
    quiet = run(EMOCLI + ["annotate", str(SAMPLE), "--subs", str(SAMPLE_SRT), "-o", str(tmp_path / "q"), "-q"],
                broken_torchaudio, tmp_path)
    assert quiet.returncode == 0 and quiet.stderr == ""
    healthy = run(EMOCLI + ["annotate", str(SAMPLE), "--subs", str(SAMPLE_SRT), "-o", str(tmp_path / "h")],
                  tmp_path / "no-shadow", tmp_path)
    assert healthy.returncode == 0 and "warning" not in healthy.stderr


def test_broken_torchvision_fix_names_its_release_for_this_torch(tmp_path):
    shadow = broken_package(tmp_path / "shadow", "torchvision", "0.99.0", TORCHVISION_ERROR)
    model, message = load_minilm_beside(shadow, tmp_path)
    minor = int(TORCH.split(".")[1])
    assert model == "BertModel"
    assert message.startswith("torchvision 0.99.0 does not load beside torch")
    assert "(operator torchvision::nms does not exist)" in message
    assert message.endswith(f"fix: pip install 'torchvision==0.{minor + 15}.*' (the release for torch "
                            f"2.{minor}), or pip uninstall torchvision")


def test_a_transformers_that_cannot_be_told_gets_the_line_as_an_error(broken_torchaudio, tmp_path):
    script = ("import transformers.utils.import_utils as iu\n"
              "del iu._is_package_available\n"  # a transformers without the hook emocli uses
              "from emocli.environment import prepare_transformers\n"
              "from emocli.errors import UsageError\n"
              "try:\n    prepare_transformers()\nexcept UsageError as e:\n    print(e.exit_code, e.message)\n")
    proc = run([sys.executable, "-c", script], broken_torchaudio, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("2 torchaudio 2.11.1 does not load beside torch")
    assert proc.stdout.strip().endswith("fix: pip install torchaudio==2.11.0")


def test_a_broken_library_that_is_not_a_torch_extension_gets_a_reinstall_fix(tmp_path):
    shadow = broken_package(tmp_path / "shadow", "soundfile", "0.13.1",
                            "raise OSError(\"cannot load library '/usr/lib/x86_64-linux-gnu/libsndfile.so.1': "
                            "libmpg123.so.0: cannot open shared object file\")\n")
    assert load_minilm_beside(shadow, tmp_path) == [
        "BertModel",
        "soundfile 0.13.1 does not load (cannot load library 'libsndfile.so.1': libmpg123.so.0: cannot open shared "
        "object file); emocli does not use it and runs without it; fix: pip install --force-reinstall soundfile, "
        "or pip uninstall soundfile"]
