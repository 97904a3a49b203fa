"""The installed version of hpsearch, from the package metadata (pyproject.toml).

Kept apart from the package root so that any module can name the version without
importing ``hpsearch`` itself (which would close an import cycle).
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

__all__ = ["__version__"]

try:
    __version__ = version("hpsearch")
except PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0+unknown"
