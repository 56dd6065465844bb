"""int8 inference for text encoders on CPUs (`--precision int8`).

The encoder is exported to ONNX once, its matrix products are quantised to int8 (weights per output channel,
activations on the fly: ONNX Runtime dynamic quantisation) and ONNX Runtime runs it. On CPUs with VNNI this is the
one route measured here past bf16 (bench/annotate.py), at a small accuracy cost measured on MELD dev (docs/performance.md).

The export runs in a child process, because `torch.onnx.export` leaves state behind in the process that ran it:
later PyTorch calls there were slower, and the exported model's own PyTorch outputs changed. The quantised graph is
cached under the emocli cache folder, keyed by a hash of the encoder's config and weights, so the export happens
once per set of weights.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..device import require_cpu
from ..errors import EmocliError, UsageError
from ..files import SOURCE_ROOT, default_cache_dir

RECIPE = "onnx-opset17-dynamic-qint8-per-channel-matmul-v1"  # part of the cache key: change it with the recipe
INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")
PARITY_TOLERANCE = 1e-3  # largest |ONNX fp32 - PyTorch| hidden-state difference accepted before quantising


def require_onnxruntime():
    """The onnxruntime module, or a clear error saying how to install it."""
    try:
        import onnx  # noqa: F401  (needed by the quantiser)
        import onnxruntime
    except ImportError:
        raise UsageError("--precision int8 needs ONNX Runtime: pip install onnxruntime onnx") from None
    return onnxruntime


def cache_root() -> Path:
    return default_cache_dir() / "int8"


def weights_key(model: torch.nn.Module, names: list[str]) -> str:
    """A hash of what the quantised graph depends on: the recipe, the model's config and every weight."""
    digest = hashlib.sha256(f"{RECIPE}|{','.join(names)}|{model.config.to_json_string()}".encode())
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().to(torch.float32).cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:24]


class OnnxEncoder:
    """Runs a quantised encoder graph: token tensors in, last hidden states [B, T, D] (float32) out."""

    def __init__(self, path: Path, names: list[str], threads: int) -> None:
        ort = require_onnxruntime()
        options = ort.SessionOptions()
        options.intra_op_num_threads = max(1, threads)
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        # no busy-waiting between calls: spinning threads would take the cores from the PyTorch work in between
        # (measured: 3.2 s -> 1.8 s for the default model over 350 utterances on 2 cores)
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types for unreadable graphs
            raise EmocliError(f"cannot load the int8 text encoder {path}: {str(exc).splitlines()[0]}") from None
        self.names, self.path = list(names), path

    def __call__(self, **inputs: torch.Tensor) -> torch.Tensor:
        feeds = {n: inputs[n].detach().cpu().numpy().astype(np.int64) for n in self.names}
        return torch.from_numpy(self.session.run(None, feeds)[0])


def quantize_text_encoders(model: torch.nn.Module, log: Callable[[str], None] | None = None,
                           cache_dir: Path | None = None, split_threads: bool = True) -> list[Path]:
    """Switch every text encoder in `model` (each ensemble member's) to int8; returns the graphs used.

    `split_threads`: give each of an ensemble's encoders an equal share of the cores, as `EnsembleModel.predict`
    runs them at once; False gives each all of them (callers that run the members one after another)."""
    from .encoders import TextEncoder

    require_cpu(next(model.parameters()).device)
    require_onnxruntime()
    root = Path(cache_dir) if cache_dir else cache_root()
    from .network import EnsembleModel

    encoders = list({id(m): m for m in model.modules() if isinstance(m, TextEncoder)}.values())
    # an ensemble's members run their encoders at once (EnsembleModel.predict): the cores are split between them;
    # a blend's parts run one after another, so a part that is not an ensemble has all the cores
    at_once = {id(e): len(ens.members) for ens in model.modules() if isinstance(ens, EnsembleModel)
               for e in ens.modules() if isinstance(e, TextEncoder)}
    paths = []
    for enc in encoders:
        threads = max(1, torch.get_num_threads() // (at_once.get(id(enc), 1) if split_threads else 1))
        if enc.onnx is not None:  # already quantised (e.g. at load, so that its cost counts as loading)
            paths.append(enc.onnx.path)
            continue
        names = [n for n in INPUT_NAMES if n in enc.tokenizer.model_input_names]
        path = root / f"{weights_key(enc.model, names)}.onnx"
        if path.is_file():
            try:
                enc.onnx = OnnxEncoder(path, names, threads)
            except EmocliError:  # a damaged cache file (e.g. a full disk): build it again
                path.unlink()
        if enc.onnx is None:
            if log:
                which = f" {len(paths) + 1} of {len(encoders)}" if len(encoders) > 1 else ""
                log(f"int8: quantising text encoder{which} (about 10 s, once; cached in {root})")
            export_quantized(enc.model, names, path)
            enc.onnx = OnnxEncoder(path, names, threads)
        paths.append(path)
    return paths


def use_pytorch(model: torch.nn.Module) -> None:
    """Undo `quantize_text_encoders`: every text encoder runs its PyTorch weights again."""
    from .encoders import TextEncoder

    for enc in model.modules():
        if isinstance(enc, TextEncoder):
            enc.onnx = None


def export_quantized(model: torch.nn.Module, names: list[str], path: Path) -> None:
    """Export a Hugging Face encoder to ONNX and quantise it to int8, in a child process; writes `path` atomically."""
    package_root = str(SOURCE_ROOT)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")])),
           "HF_HUB_OFFLINE": "1"}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=path.parent, prefix=".export-") as tmp:
            model.save_pretrained(tmp)
            proc = subprocess.run([sys.executable, "-m", "emocli.model.int8", tmp, str(path), ",".join(names)],
                                  capture_output=True, text=True, env=env)
    except OSError as exc:
        raise EmocliError(f"cannot write the int8 cache in {path.parent} ({exc.strerror or exc}); point "
                          f"$EMOCLI_CACHE at a writable folder") from None
    if proc.returncode != 0 or not path.is_file():
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        raise EmocliError("cannot quantise the text encoder to int8: " + (lines[-1] if lines else "export failed"))


def _export_main(source: str, target: str, names: list[str]) -> None:
    """Child process: load the saved encoder, export it to ONNX, check it against PyTorch, quantise, write."""
    import logging

    import onnx
    import onnxruntime as ort
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from ..environment import prepare_transformers

    prepare_transformers()
    from transformers import AutoModel

    logging.getLogger().setLevel(logging.ERROR)  # the quantiser's "consider pre-processing" advice
    torch.set_num_threads(1)
    model = AutoModel.from_pretrained(source, dtype=torch.float32).eval()

    class Hidden(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
            return self.model(**dict(zip(names, tensors))).last_hidden_state

    # two rows of different lengths, so padding and the attention mask are traced, not constant-folded away
    ids = torch.randint(1000, 2000, (2, 12))
    mask = torch.ones(2, 12, dtype=torch.long)
    mask[1, 7:] = 0
    example = {"input_ids": ids, "attention_mask": mask, "token_type_ids": torch.zeros(2, 12, dtype=torch.long)}
    example["token_type_ids"][:, 6:] = 1
    inputs = tuple(example[n] for n in names)
    target_path = Path(target)
    fp32 = target_path.parent / f".{target_path.name}.fp32.onnx"
    quantized = target_path.parent / f".{target_path.name}.tmp"
    try:
        with torch.no_grad():
            reference = Hidden()(*inputs).numpy()  # before exporting: the export changes the model's later results
            torch.onnx.export(Hidden(), inputs, str(fp32), input_names=names, output_names=["hidden"],
                              dynamic_axes={n: {0: "batch", 1: "tokens"} for n in [*names, "hidden"]},
                              opset_version=17, dynamo=False)
        session = ort.InferenceSession(str(fp32), providers=["CPUExecutionProvider"])
        got = session.run(None, {n: t.numpy() for n, t in zip(names, inputs)})[0]
        valid = mask.bool().numpy()
        error = float(np.abs(got - reference)[valid].max())
        if error > PARITY_TOLERANCE:
            sys.exit(f"the ONNX export differs from PyTorch by {error:.2g} (tolerance {PARITY_TOLERANCE})")
        quantize_dynamic(str(fp32), str(quantized), weight_type=QuantType.QInt8, per_channel=True,
                         op_types_to_quantize=["MatMul"],
                         extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
        os.replace(quantized, target_path)
    finally:
        for leftover in (fp32, quantized):
            leftover.unlink(missing_ok=True)


if __name__ == "__main__":
    _export_main(sys.argv[1], sys.argv[2], sys.argv[3].split(","))
