"""Library log levels, changed for the length of a call and then restored.

hpsearch's own progress lines report failed and pruned trials, so Optuna's
per-trial log lines (a traceback per failed trial) are held back while hpsearch
runs; a notebook that uses Optuna afterwards finds its level as it was.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["quiet_optuna"]


@contextmanager
def quiet_optuna(level: int = logging.ERROR) -> Iterator[None]:
    """Optuna logs only ``level`` and above inside the block; its level is restored after.

    Example:
        >>> import optuna
        >>> before = optuna.logging.get_verbosity()
        >>> with quiet_optuna():
        ...     optuna.logging.get_verbosity() == logging.ERROR
        True
        >>> optuna.logging.get_verbosity() == before
        True
    """
    import optuna

    before = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(level)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(before)
