"""The libraries transformers imports whenever they are installed: check that each one loads beside this torch,
and keep a broken one from breaking emocli, which uses none of them.

transformers imports torchaudio (and torchvision, soundfile, accelerate, ...) as soon as any model module loads,
if the package is installed at all. A torchaudio built for another torch (pip put torchaudio 2.11.1 beside torch
2.11.0 once: torchaudio does not pin torch) then failed every model load with "Could not load this library:
.../libtorchaudio.so". emocli now tries each such library first; one that fails is reported in one line with
its fix and hidden from transformers (the one function it asks whether a package is installed), so the models
still load. emocli's own audio needs no torchaudio: ffmpeg decodes and resamples, silero's ONNX model finds voice.
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
import importlib.util
import re
import sys
from dataclasses import dataclass

from .errors import UsageError

#: import name -> distribution name of what transformers' model, tokenizer and processor modules import at load
#: time when installed (read off transformers 5.24's module-level imports), the torch extensions among them
OPTIONAL_LIBRARIES = {"torchaudio": "torchaudio", "torchvision": "torchvision", "accelerate": "accelerate",
                      "torchao": "torchao", "soundfile": "soundfile", "soxr": "soxr", "hqq": "hqq",
                      "kernels": "kernels"}
#: the ones built against one torch release (a mismatch is the usual reason they fail)
TORCH_EXTENSIONS = frozenset({"torchaudio", "torchvision", "torchao", "hqq", "kernels"})
_ABSENT = "emocli_no_such_package"  # a name no package has


@dataclass(frozen=True)
class BrokenLibrary:
    """An installed library that fails to import, with the pip command that mends it."""

    name: str  # import name
    version: str
    reason: str  # the import error's innermost cause, one line, paths cut to file names
    fix: str

    def message(self) -> str:
        """The one line that `emocli info` and every model-loading command print."""
        beside = f" beside torch {_torch_version()}" if self.name in TORCH_EXTENSIONS else ""
        return (f"{self.name} {self.version} does not load{beside} ({self.reason}); "
                f"emocli does not use it and runs without it; fix: {self.fix}")


def _torch_version() -> str:
    import torch

    return torch.__version__


def _base(version: str) -> str:
    return version.split("+")[0]  # 2.11.0+cu130 -> 2.11.0


def installed_version(distribution: str) -> str | None:
    """The installed release of a distribution, or None."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def _emocli_pins() -> dict[str, str]:
    """emocli's exact pins (torch and torchaudio, a tested pair), from its installed metadata."""
    try:
        requires = importlib.metadata.requires("emocli") or []
    except importlib.metadata.PackageNotFoundError:  # run from a source tree without installing
        return {}
    pins = (re.match(r"([A-Za-z0-9_.-]+)\s*==\s*([0-9][0-9A-Za-z.!+-]*)\s*$", r) for r in requires)
    return {m[1].lower(): m[2] for m in pins if m}


def _fix(name: str, distribution: str) -> str:
    torch_now = _base(_torch_version())
    pins = _emocli_pins()
    if distribution in pins:  # torchaudio: pinned beside torch, so install the pair emocli is tested with
        pinned_torch = pins.get("torch", torch_now)
        if pinned_torch == torch_now:
            return f"pip install {distribution}=={pins[distribution]}"
        return f"pip install torch=={pinned_torch} {distribution}=={pins[distribution]}"
    if distribution == "torchaudio":  # no metadata to read: torchaudio releases with torch, same number
        return f"pip install torchaudio=={torch_now}"
    major, minor = (torch_now.split(".") + ["0"])[:2]
    if distribution == "torchvision" and major == "2" and minor.isdigit():  # torch 2.N <-> torchvision 0.(N+15)
        return (f"pip install 'torchvision==0.{int(minor) + 15}.*' (the release for torch {major}.{minor}), "
                f"or pip uninstall torchvision")
    if name in TORCH_EXTENSIONS:
        return f"pip uninstall {distribution}, or install a release of it built for torch {torch_now}"
    return f"pip install --force-reinstall {distribution}, or pip uninstall {distribution}"


def _reason(exc: BaseException) -> str:
    """The innermost cause of an import failure, first line, with directories cut off its paths."""
    seen = {id(exc)}
    while (inner := exc.__cause__ or exc.__context__) is not None and id(inner) not in seen:
        seen.add(id(inner))
        exc = inner
    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return re.sub(r"(?<![^\s'\"(])(?:[A-Za-z]:)?[/\\](?:[^\s/\\:'\"]+[/\\])*([^\s/\\:'\"]+)", r"\1", text)


@functools.cache
def broken_libraries() -> tuple[BrokenLibrary, ...]:
    """The optional libraries that are installed but fail to import (each one tried once per process)."""
    import torch  # noqa: F401  (the libraries below load against it)

    broken = []
    for name, distribution in OPTIONAL_LIBRARIES.items():
        if name in sys.modules or importlib.util.find_spec(name) is None:
            continue
        try:
            importlib.import_module(name)
        except Exception as exc:  # whatever a broken build raises: OSError, ImportError, RuntimeError, ...
            for module in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
                del sys.modules[module]  # its half-imported submodules
            version = installed_version(distribution) or "(version unknown)"
            broken.append(BrokenLibrary(name, version, _reason(exc), _fix(name, distribution)))
    return tuple(broken)


@functools.cache
def prepare_transformers() -> tuple[BrokenLibrary, ...]:
    """Call before loading any transformers model code: hides the broken optional libraries from transformers.

    Returns them (for the caller to report). If this transformers cannot be told, raises the same line as an
    error instead of failing later with a library path.
    """
    broken = broken_libraries()
    if broken:
        try:
            from transformers.utils import import_utils

            is_installed = import_utils._is_package_available
        except (ImportError, AttributeError):
            raise UsageError(broken[0].message()) from None
        hidden = frozenset(b.name for b in broken)

        def is_package_available(pkg_name: str, return_version: bool = False):
            # for a hidden package, the answer this transformers gives for one that is not installed
            return is_installed(_ABSENT if pkg_name in hidden else pkg_name, return_version)

        import_utils._is_package_available = is_package_available
        for name in hidden:  # transformers 4.x asks once, when it is imported, and keeps the answer
            if isinstance(getattr(import_utils, f"_{name}_available", None), bool):
                setattr(import_utils, f"_{name}_available", False)
        for name, fn in list(vars(import_utils).items()):  # transformers 5.x caches each answer
            if name.startswith("is_") and callable(getattr(fn, "cache_clear", None)):
                fn.cache_clear()
    return broken
