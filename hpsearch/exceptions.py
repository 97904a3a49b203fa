"""Errors raised by hpsearch.

Every error a user can cause derives from :class:`HpsearchError`; the CLI prints
its message on one line and exits with code 2. Anything else is a bug and shows
a traceback.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ConfigError", "HpsearchError", "StudyNotFoundError", "TrialFailed"]


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
        if self.path:
            parts.append(self.path)
        text = self.reason
        if self.has_value:
            text = f"got {self.value!r}; {text}"
        parts.append(text)
        return ": ".join(parts)

    def with_source(self, source: str) -> ConfigError:
        """Return the same error attributed to ``source`` (a file name)."""
        return ConfigError(
            self.reason, path=self.path, value=self.value, source=source, has_value=self.has_value
        )


class StudyNotFoundError(HpsearchError):
    """The named study does not exist in the storage."""


class TrialFailed(Exception):
    """One trial failed (NaN loss, out of memory, a bad layer combination).

    The trial is recorded as FAIL with this reason; the study goes on.
    """


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled like Ctrl-C: the running trial is failed cleanly and re-queued."""
