"""Errors raised by hpsearch.

Every error a user can cause derives from :class:`HpsearchError`; the CLI prints
its message on one line and exits with code 2. Anything else is a bug and shows
a traceback.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ConfigError",
    "HpsearchError",
    "NoTrialCompleted",
    "SetupError",
    "StudyNotFoundError",
    "TrialFailed",
]


class HpsearchError(Exception):
    """Base class of every error caused by user input."""


class ConfigError(HpsearchError):
    """A study file (or an override) is invalid.

    The message names the file, the key path, the value received and what is
    allowed, e.g. ``studies/x.yaml: search.sampler: got 'tpee'; allowed: tpe, random``.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        value: Any = None,
        source: str | None = None,
        has_value: bool = False,
    ) -> None:
        self.path = path
        self.value = value
        self.source = source
        self.reason = message
        self.has_value = has_value
        super().__init__(self._format())

    def _format(self) -> str:
        parts = []
        if self.source:
            parts.append(self.source)
        if self.path:  # a key path can be as long as the keys a user wrote
            path = self.path
            parts.append(path if len(path) <= 200 else f"{path[:140]} ... {path[-40:]}")
        text = self.reason
        if self.has_value:
            text = f"got {_short_repr(self.value)}; {text}"
        parts.append(text)
        return ": ".join(parts)

    def with_source(self, source: str) -> ConfigError:
        """Return the same error attributed to ``source`` (a file name)."""
        return type(self)(
            self.reason, path=self.path, value=self.value, source=source, has_value=self.has_value
        )


def _short_repr(value: Any, limit: int = 200) -> str:
    """``repr(value)``, cut in the middle when longer than ``limit`` (a pasted list, an
    alias-expanded tree), and never an exception (an integer too long to print)."""
    try:
        text = repr(value)
    except Exception:  # e.g. ValueError: an int beyond sys.get_int_max_str_digits()
        return f"<{type(value).__name__}>"
    if len(text) <= limit:
        return text
    return f"{text[: limit - 60]} ... {text[-40:]} ({len(text):,} characters)"


class SetupError(ConfigError):
    """A set-up mistake every trial would hit, told apart from a trial's own failure.

    A user builder that cannot be called as hpsearch calls it, that cannot be imported,
    or that returns something other than a ``keras.Model``: the run stops at the first
    one (exit code 2) instead of failing trial after trial. A builder may raise it
    itself to stop the search (KerasTuner's ``FatalError``); any other exception it
    raises fails that trial only.
    """


class NoTrialCompleted(HpsearchError):
    """A run ended and its study holds no COMPLETE trial (exit code 3 in the CLI).

    Attributes:
        study: the Optuna study, to look at its failed trials.
    """

    exit_code = 3

    def __init__(self, message: str, study: Any = None) -> None:
        super().__init__(message)
        self.study = study


class StudyNotFoundError(HpsearchError):
    """The named study does not exist in the storage."""


class TrialFailed(Exception):
    """One trial failed (NaN loss, out of memory, a bad layer combination).

    The trial is recorded as FAIL with this reason; the study goes on.
    """


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled like Ctrl-C: the running trial is failed cleanly and re-queued."""
