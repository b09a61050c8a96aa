"""Atomic file output: write to a temporary name beside the target, rename only on success."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], *, directory: bool = False) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; move it onto ``path`` when the block succeeds.

    On any exception (Ctrl-C included) the temporary file or folder is removed and ``path`` is left untouched,
    so readers never see a partial output. The temporary name keeps the suffix so format-sniffing writers work.

    Args:
        path: the final file (or folder with ``directory=True``).
        directory: create a temporary folder instead of reserving a file name.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    if directory:
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent))
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes private (0700) folders
    else:
        fd, name = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=f".partial{target.suffix}", dir=target.parent)
        os.close(fd)
        tmp = Path(name)
        # mkstemp creates private (0600) files; give the output the permissions a plain open() would.
        os.chmod(tmp, 0o666 & ~_umask())
    try:
        yield tmp
        if directory:
            if target.exists():
                shutil.rmtree(target)
            os.replace(tmp, target)
        else:
            # Some writers (safetensors) replace the reserved file with a new private one: set the mode again.
            os.chmod(tmp, 0o666 & ~_umask())
            os.replace(tmp, target)
    except BaseException:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
        raise


def check_writable(path: str | os.PathLike[str]) -> None:
    """Raise :class:`~tami.errors.InputError` unless ``path`` can be created (its nearest existing ancestor is a
    writable folder): checked before any work, so a long run cannot fail at its very end for want of a folder."""
    from .errors import InputError

    target = Path(path)
    existing = next(p for p in [target.parent, *target.parent.parents] if p.exists() or p == p.parent)
    if not existing.is_dir():
        raise InputError(f"cannot write {target}: {existing} is a file, not a folder; choose a writable output path")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise InputError(f"cannot write {target}: folder {existing} is not writable; choose a writable output path")
