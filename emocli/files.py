"""Files: atomic writes, output-folder checks, the cache folder, checksums and where shipped weights live.

Every file emocli writes goes through `atomic_write` (a temporary file in the same folder, then a rename), so a
killed run leaves a file complete or not at all; `OutputGroup` does the same for several files that belong
together (one video's outputs)."""

from __future__ import annotations

import glob
import hashlib
import io
import os
import tempfile
from pathlib import Path
from typing import BinaryIO

from .errors import UsageError

#: The folder that holds the emocli package (a checkout's root): subprocesses import emocli from here.
SOURCE_ROOT = Path(__file__).resolve().parent.parent
#: The shipped checkpoints and converted networks (the repository's weights/ folder).
WEIGHTS_DIR = SOURCE_ROOT / "weights"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


FILE_MODE = 0o666 & ~_umask()  # what open() would give; mkstemp alone makes files private (0600)


def default_cache_dir() -> Path:
    """$EMOCLI_CACHE, else ~/.cache/emocli (or $XDG_CACHE_HOME/emocli)."""
    env = os.environ.get("EMOCLI_CACHE")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "emocli"


def file_sha256(source: str | Path | BinaryIO) -> str:
    """SHA-256 of a file, by path or as an open binary stream (read from its start; left at its start)."""
    digest = hashlib.sha256()
    if isinstance(source, (str, Path)):
        with open(source, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 22), b""):
                digest.update(block)
        return digest.hexdigest()
    source.seek(0)
    for block in iter(lambda: source.read(1 << 22), b""):
        digest.update(block)
    source.seek(0)
    return digest.hexdigest()


def check_output_dir(path: str | Path, what: str = "output folder") -> Path:
    """Check, before any work that leads to them, that outputs can go to this folder (it is one, or can be made
    one): a path that cannot fails now, in one line, not after hours of decoding or training. Creates nothing."""
    path = Path(path)
    if path.exists():
        if not path.is_dir():
            raise UsageError(f"{what} {path} is a file, not a folder")
        if not os.access(path, os.W_OK | os.X_OK):
            raise UsageError(f"cannot write to {what} {path}: permission denied")
        return path
    ancestor = path.absolute().parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise UsageError(f"cannot create {what} {path}: {ancestor} is a file")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise UsageError(f"cannot create {what} {path}: permission denied in {ancestor}")
    return path


def can_create_files(folder: str | Path) -> OSError | None:
    """Whether files can be made in an existing folder, tried for real (an empty temp file, removed at once):
    permissions, a read-only file system or a full inode table all show, even for root. None when they can,
    else the error."""
    try:
        with tempfile.TemporaryFile(dir=folder):
            return None
    except OSError as exc:
        return exc


def remove_stale_temps(path: str | Path) -> None:
    """Delete the temp files of `path` that a run killed mid-write left behind (atomic_write names them)."""
    path = Path(path)
    if path.parent.is_dir():
        for stale in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
            stale.unlink(missing_ok=True)


def _named(exc: OSError, path: Path) -> OSError:
    """The error with the file it was about (a full disk's write error names none)."""
    if exc.filename is None and exc.errno is not None:
        return OSError(exc.errno, exc.strerror or str(exc), str(path))
    return exc


def _write_temp(path: Path, data: str | bytes) -> Path:
    """`data` in a new temp file beside `path` (named for remove_stale_temps), flushed to disk; an OSError names
    `path`."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise _named(exc, path) from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data.encode("utf-8") if isinstance(data, str) else data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, FILE_MODE)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise _named(exc, path) from None
        raise
    return Path(tmp)


def atomic_write(path: str | Path, data: str | bytes) -> Path:
    """Write a file so that it either exists complete or not at all (temp file in the same folder + rename)."""
    path = Path(path)
    tmp = _write_temp(path, data)
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_together(files: list[tuple[Path, str | bytes]]) -> list[Path]:
    """Write files that belong together (one video's outputs) all or none: each goes to a temp file beside it
    first, and only once every one is written are they renamed into place. A failure (a full disk) removes the
    temp files and any file already renamed, and raises the OSError naming the file it was about."""
    temps: list[tuple[Path, Path]] = []
    try:
        for path, data in files:
            path = Path(path)
            remove_stale_temps(path)
            temps.append((_write_temp(path, data), path))
    except BaseException:
        for tmp, _ in temps:
            tmp.unlink(missing_ok=True)
        raise
    placed: list[Path] = []
    try:
        for tmp, path in temps:
            os.replace(tmp, path)
            placed.append(path)
    except BaseException as exc:
        for tmp, _ in temps:
            tmp.unlink(missing_ok=True)
        for path in placed:
            path.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise _named(exc, temps[len(placed)][1]) from None
        raise
    return placed


def save_arrays(path: str | Path, arrays: dict, metadata: dict[str, str] | None = None) -> Path:
    """NumPy arrays to a safetensors file, atomically. Each is made C-contiguous first: safetensors' NumPy writer
    stores an array's raw buffer, so a transposed or reversed view (sklearn's coef_, eigenvectors sliced from
    numpy.linalg.eigh) would silently come back scrambled."""
    import numpy as np
    from safetensors.numpy import save

    return atomic_write(path, save({k: np.ascontiguousarray(v) for k, v in arrays.items()}, metadata=metadata))


def figure_png(fig) -> bytes:
    """A matplotlib figure as PNG bytes; the figure is closed."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def save_figure(fig, path: str | Path) -> Path:
    """Save a matplotlib figure as PNG atomically, then close it."""
    return atomic_write(path, figure_png(fig))
