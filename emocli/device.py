"""Where and in which arithmetic the networks run: the device (`--device`) and the precision (`--precision`).

Shared by annotate, train and evaluate, so that none of them imports another's pipeline for it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import UsageError

if TYPE_CHECKING:  # PyTorch loads where a device is resolved, not where options are checked
    import torch

#: --precision values: auto picks bf16 where it is native (GPUs, CPUs with AVX512-BF16/AMX), float32 elsewhere.
PRECISIONS = ("auto", "fp32", "bf16", "fp16", "int8")
DEVICES = ("auto", "cpu", "cuda")


def check_device(spec: str) -> str:
    """A --device value, checked without touching PyTorch's CUDA state: auto, cpu, cuda or cuda:N."""
    spec = (spec or "auto").lower()
    if spec not in DEVICES and not spec.startswith("cuda:"):
        raise UsageError(f"--device must be auto, cpu or cuda, not {spec!r}")
    return spec


def resolve_device(spec: str = "auto") -> torch.device:
    """'auto' -> CUDA when available, else CPU; 'cuda' without a GPU is a usage error."""
    import torch

    spec = check_device(spec)
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError("--device cuda was asked for, but no CUDA GPU is visible to PyTorch")
    return torch.device(spec)


def check_precision(precision: str) -> str:
    if precision not in PRECISIONS:
        raise UsageError(f"--precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    return precision


def require_cpu(device: torch.device) -> None:
    """int8 runs on ONNX Runtime's CPU provider only."""
    if device.type != "cpu":
        raise UsageError("--precision int8 runs on the CPU only; on a GPU use bf16 or fp16")


def cpu_has_native_bf16() -> bool:
    """Whether this CPU runs bf16 matrix products natively (AVX512-BF16 or AMX), so bf16 is faster, not slower."""
    import torch

    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def amp_dtype(device: torch.device, precision: str = "auto") -> torch.dtype | None:
    """The autocast dtype for model calls (None: full float32). auto: bf16 on CUDA (fp16 where bf16 is
    unsupported) and on CPUs with native bf16; float32 elsewhere. int8 (CPU only) is for the text encoder
    (model/int8.py); the rest of the model then runs as with auto."""
    import torch

    check_precision(precision)
    if precision == "int8":
        require_cpu(device)
    if precision == "fp32":
        return None
    if precision in ("bf16", "fp16"):
        return torch.bfloat16 if precision == "bf16" else torch.float16
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if device.type == "cpu" and cpu_has_native_bf16() else None


def precision_name(dtype: torch.dtype | None, precision: str = "auto", modalities: list[str] | None = None) -> str:
    """How outputs and benchmarks name the arithmetic: `amp_dtype`'s choice, and int8 for the text encoder."""
    name = str(dtype).replace("torch.", "") if dtype is not None else "float32"
    if precision == "int8":
        return "int8" if modalities == ["text"] else f"int8 text encoder, {name} elsewhere"
    return name
