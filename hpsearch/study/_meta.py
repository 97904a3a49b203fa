"""What hpsearch records on a study, as a typed record: the ``hpsearch`` user attribute.

Every reader (the CLI, the dashboards, export, results, the engines) goes through
:class:`StudyMeta`; the dict it is stored as is the same one earlier versions wrote,
so their studies still open.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import optuna

__all__ = ["STUDY_ATTR", "StudyMeta"]

STUDY_ATTR = "hpsearch"


@dataclass(frozen=True)
class StudyMeta:
    """What produced a study: hpsearch's version, the engine, the study file, the
    configuration it ran with, the objectives' names and a summary of the data.

    Example:
        >>> meta = StudyMeta(engine="sklearn", objectives=["accuracy"])
        >>> StudyMeta.from_dict(meta.to_dict()) == meta
        True
        >>> StudyMeta.from_dict(None).engine   # a study hpsearch did not create
        'optuna'
    """

    version: str | None = None
    engine: str = "optuna"
    source: str | None = None
    config: dict[str, Any] | None = None
    objectives: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    recorded: bool = True  # False for a study without the attribute

    def to_dict(self) -> dict[str, Any]:
        """The stored form (the keys and values earlier versions wrote)."""
        return {
            "version": self.version,
            "engine": self.engine,
            "source": self.source,
            "config": self.config,
            "objectives": list(self.objectives),
            "data": dict(self.data),
        }

    @classmethod
    def from_dict(cls, raw: Any) -> StudyMeta:
        """Read the stored form; anything missing takes its default."""
        if not isinstance(raw, dict):
            return cls(recorded=False)
        return cls(
            version=raw.get("version"),
            engine=raw.get("engine") or "optuna",
            source=raw.get("source"),
            config=raw.get("config") if isinstance(raw.get("config"), dict) else None,
            objectives=list(raw.get("objectives") or []),
            data=dict(raw.get("data") or {}),
        )

    @classmethod
    def of(cls, study: optuna.Study) -> StudyMeta:
        """The record of a loaded study."""
        return cls.from_dict(study.user_attrs.get(STUDY_ATTR))

    def write(self, study: optuna.Study) -> None:
        study.set_user_attr(STUDY_ATTR, self.to_dict())

    @property
    def description(self) -> str | None:
        return (self.config or {}).get("description")

    @property
    def task(self) -> str:
        """``classification`` or ``regression`` (a study of an older version: classification)."""
        return str(self.data.get("task") or "classification")

    @property
    def regression(self) -> bool:
        """Whether the study predicts numbers (no classes, no accuracy)."""
        return self.task == "regression"

    @property
    def target_scaling(self) -> dict[str, float] | None:
        """A standardized target's ``{"mean": ..., "std": ...}`` (training split), or None."""
        target = self.data.get("target")
        return dict(target) if isinstance(target, dict) else None

    @property
    def fingerprint(self) -> str | None:
        """The training data's fingerprint when the study was created."""
        return self.data.get("fingerprint")
