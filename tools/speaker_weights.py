"""Convert Resemblyzer's pretrained voice encoder into weights/speaker/speaker_encoder.safetensors for
emocli/signals/speakers.py, once, from the repository's root:

    python tools/speaker_weights.py                      # fetches the wheel with pip download --no-deps
    python tools/speaker_weights.py --wheel DIR_OR_WHL   # or reads Resemblyzer-0.1.4-py3-none-any.whl
    python tools/speaker_weights.py --dtype float16      # half the size (2.8 MB); float32 (shipped) is the default

Source: `resemblyzer` 0.1.4 on PyPI (Apache-2.0, https://github.com/resemble-ai/Resemblyzer), file
`resemblyzer/pretrained.pt`: a checkpoint dict {step, model_state, optimizer_state}; only the model's 14 tensors
are kept (lstm.*_l0..l2 and linear.*; GE2E's similarity_weight/bias and the optimizer state are training-only).
The package itself is not installed or imported; its checkpoint is read with torch.load(weights_only=True).
Prints the SHA-256 of the wheel and of the file written.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import torch

from emocli.signals.speakers import WEIGHTS, SpeakerEncoder

REQUIREMENT = "resemblyzer==0.1.4"
WHEEL_SHA256 = "8f12eb2f1a9982d32e8db7856de754709b59c93a77bcf0ff536584b619a9dd1f"  # Resemblyzer-0.1.4-py3-none-any.whl


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def find_wheel(where: Path | None, tmp: Path) -> Path:
    if where is not None and where.is_file():
        return where
    folder = where or tmp
    found = sorted(folder.glob("[Rr]esemblyzer-0.1.4-*.whl"))
    if not found:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(folder), REQUIREMENT],
                       check=True)
        found = sorted(folder.glob("[Rr]esemblyzer-0.1.4-*.whl"))
    return found[-1]


def convert(whl: Path, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    with zipfile.ZipFile(whl) as z:
        checkpoint = torch.load(io.BytesIO(z.read("resemblyzer/pretrained.pt")), map_location="cpu",
                                weights_only=True)
    state = checkpoint["model_state"]
    net = SpeakerEncoder()
    missing, unexpected = net.load_state_dict(state, strict=False)
    assert not missing, missing
    assert set(unexpected) <= {"similarity_weight", "similarity_bias"}, unexpected
    return {k: v.to(dtype).contiguous() for k, v in net.state_dict().items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--wheel", type=Path, help="the wheel, or a folder holding it (else pip download)")
    ap.add_argument("--out", type=Path, default=WEIGHTS)
    ap.add_argument("--dtype", choices=["float32", "float16"], default="float32")
    args = ap.parse_args()
    from safetensors.torch import save_file

    with tempfile.TemporaryDirectory() as tmp:
        whl = find_wheel(args.wheel, Path(tmp))
        digest = sha256(whl)
        print(f"{whl.name}  sha256 {digest}")
        if digest != WHEEL_SHA256:
            print(f"warning: expected wheel sha256 {WHEEL_SHA256}", file=sys.stderr)
        tensors = convert(whl, getattr(torch, args.dtype))
    save_file(tensors, str(args.out), metadata={
        "source": "resemblyzer 0.1.4 (PyPI), resemblyzer/pretrained.pt, model_state",
        "license": "Apache-2.0", "wheel_sha256": digest, "dtype": args.dtype})
    n = sum(t.numel() for t in tensors.values())
    print(f"{args.out}  {n} parameters, {args.out.stat().st_size} bytes  sha256 {sha256(args.out)}")


if __name__ == "__main__":
    main()
