"""Folders written all at once: a temporary sibling renamed into place.

Used for export folders (:mod:`hpsearch.export`) and kept trial weights
(:mod:`hpsearch.artifacts`): a reader sees the old folder or the new one, never a
half-written mix, and a failure leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = ["DestinationExists", "atomic_dir", "plain_permissions"]


class DestinationExists(FileExistsError):
    """The destination of :func:`atomic_dir` exists and ``replace`` was not given."""


@contextlib.contextmanager
def atomic_dir(dest: str | Path, *, replace: bool = False) -> Iterator[Path]:
    """Yield an empty temporary folder beside ``dest``; rename it to ``dest`` on success.

    The temporary folder (``.NAME.XXXX.tmp`` in ``dest``'s parent, with the
    permissions of a plain ``mkdir``) is removed if the block raises, together with
    the parent folders made for it. An existing ``dest`` is replaced only with
    ``replace``; it is moved aside first and put back if the rename fails.

    Raises:
        DestinationExists: ``dest`` exists (before the block, or when it ends)
            and ``replace`` is false; nothing is written.

    Example:
        >>> with atomic_dir("exports/best") as tmp:
        ...     _ = (tmp / "model.keras").write_bytes(b"weights")
        >>> [p.name for p in Path("exports/best").iterdir()]
        ['model.keras']
        >>> with atomic_dir("exports/best") as tmp:
        ...     pass
        Traceback (most recent call last):
        hpsearch.atomic.DestinationExists: exports/best already exists
        >>> with atomic_dir("exports/best", replace=True) as tmp:
        ...     raise RuntimeError("the export failed half-way")
        Traceback (most recent call last):
        RuntimeError: the export failed half-way
        >>> [p.name for p in Path("exports").iterdir()]  # no temporary folder left behind
        ['best']
        >>> with atomic_dir("exports/best", replace=True) as tmp:
        ...     _ = (tmp / "model.onnx").write_bytes(b"other weights")
        >>> [p.name for p in Path("exports/best").iterdir()]
        ['model.onnx']
    """
    dest = Path(dest)
    _refuse_existing(dest, replace)
    created = _make_parents(dest.parent)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent))
    try:
        plain_permissions(tmp)
        yield tmp
        _refuse_existing(dest, replace)  # it may have appeared while we worked
        _move_into_place(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        _remove_empty(created)
        raise


def plain_permissions(folder: Path) -> None:
    """Give a ``mkdtemp`` folder (0700) the permissions a plain ``mkdir`` would."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(folder, 0o777 & ~umask)


def _refuse_existing(dest: Path, replace: bool) -> None:
    if not replace and (dest.exists() or dest.is_symlink()):
        raise DestinationExists(f"{dest} already exists")


def _make_parents(folder: Path) -> list[Path]:
    """Create ``folder`` and its missing parents; return those created, innermost first."""
    created = [p for p in (folder, *folder.parents) if not p.exists()]
    folder.mkdir(parents=True, exist_ok=True)
    return created


def _remove_empty(folders: list[Path]) -> None:
    for folder in folders:  # innermost first; a folder something else now uses stays
        with contextlib.suppress(OSError):
            folder.rmdir()


def _move_into_place(tmp: Path, dest: Path) -> None:
    """Rename ``tmp`` to ``dest``, replacing ``dest`` (moved aside, restored on failure)."""
    if not (dest.exists() or dest.is_symlink()):
        os.replace(tmp, dest)
        return
    old = dest.with_name(f".{dest.name}.{os.getpid()}.old")
    os.replace(dest, old)
    try:
        os.replace(tmp, dest)
    except BaseException:
        os.replace(old, dest)
        raise
    _remove(old)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            path.unlink()
