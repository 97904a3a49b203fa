"""What the figures read from a stored study: values, per-epoch curves, times, groups.

Everything comes from Optuna's storage (params, values, intermediate values and user
attributes), so a study made by any engine, or by plain Optuna, can be drawn.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hpsearch.study._record import TrialRecord

if TYPE_CHECKING:
    import optuna
    from optuna.trial import FrozenTrial

__all__ = ["StudyView", "fmt", "group_of", "guess_direction", "load_view"]


def fmt(value: Any) -> str:
    """A short text for a parameter or metric value."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(fmt(v) for v in value) + "]"
    return str(value)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def guess_direction(metric: str) -> str:
    """The direction of a metric that is not one of the study's objectives."""
    low = metric.lower()
    if "loss" in low or low in ("params", "latency") or low.endswith(("_seconds", "_time")):
        return "minimize"
    return "maximize"


@dataclass
class StudyView:
    """A stored study, read once, with what the dashboards need.

    Attributes:
        study: the Optuna study.
        label: how the study is named on the page.
        storage: its storage URL.
        trials: every trial (any state).
        objectives: the objectives' names (``hpsearch`` records them; else ``value``).
        directions: ``maximize`` / ``minimize`` per objective.
        engine: the engine that made it (``optuna``, ``sklearn``, or ``?``).
        task: ``classification`` or ``regression`` (no accuracy to plot).
    """

    study: optuna.Study
    label: str
    storage: str
    trials: list[FrozenTrial] = field(default_factory=list)
    objectives: list[str] = field(default_factory=list)
    directions: list[str] = field(default_factory=list)
    engine: str = "?"
    task: str = "classification"

    @classmethod
    def of(cls, study: optuna.Study, *, storage: str = "", label: str | None = None) -> StudyView:
        """Read a loaded study."""
        from hpsearch.study import StudyMeta

        meta = StudyMeta.of(study)
        directions = [d.name.lower() for d in study.directions]
        names = list(meta.objectives)
        if len(names) != len(directions):
            n = len(directions)
            names = ["value"] if n == 1 else [f"objective {i}" for i in range(1, n + 1)]
        return cls(
            study=study,
            label=label or study.study_name,
            storage=storage,
            trials=study.get_trials(deepcopy=False),
            objectives=names,
            directions=directions,
            engine=meta.engine if meta.recorded else "?",
            task=meta.task,
        )

    @property
    def name(self) -> str:
        return self.study.study_name

    @property
    def single(self) -> bool:
        return len(self.directions) == 1

    def state_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for t in self.trials:
            counts[t.state.name] = counts.get(t.state.name, 0) + 1
        return counts

    def complete(self) -> list[FrozenTrial]:
        """COMPLETE trials with finite values, in trial order."""
        from optuna.trial import TrialState

        return [
            t
            for t in self.trials
            if t.state == TrialState.COMPLETE
            and t.values
            and all(math.isfinite(v) for v in t.values)
        ]

    def metric_name(self, metric: str = "value") -> str:
        """The name shown for ``metric`` (``value`` is the first objective)."""
        return self.objectives[0] if metric == "value" else metric

    def value(self, trial: FrozenTrial, metric: str = "value") -> float | None:
        """``metric`` of a trial: ``value`` (the first objective), a user attribute, or
        an objective by name; None when the trial has no such number."""
        if metric == "value":
            return _number(trial.values[0]) if trial.values else None
        found = _number(TrialRecord.from_trial(trial).get(metric))
        if found is None and metric in self.objectives and trial.values:
            found = _number(trial.values[self.objectives.index(metric)])
        return found

    def direction(self, metric: str = "value", override: str | None = None) -> str:
        """Whether larger or smaller ``metric`` is better."""
        if override:
            return override
        if metric == "value":
            return self.directions[0]
        if metric in self.objectives:
            return self.directions[self.objectives.index(metric)]
        return guess_direction(metric)

    def curve(self, trial: FrozenTrial, metric: str = "value") -> tuple[list[int], list[float]]:
        """Per-epoch values (epoch 1 first) of ``metric``: the intermediate values Optuna
        stored for the first objective, else the trial's Keras ``history``."""
        name = self.metric_name(metric)
        if trial.intermediate_values and self.single and name == self.objectives[0]:
            steps = sorted(trial.intermediate_values)
            pairs = [(s, trial.intermediate_values[s]) for s in steps]
        else:
            history = TrialRecord.from_trial(trial).history
            series = history.get(name) if isinstance(history, Mapping) else None
            if not isinstance(series, list):
                return [], []
            pairs = list(enumerate(series, start=1))
        pairs = [(int(s), float(v)) for s, v in pairs if _number(v) is not None]
        return [s for s, _ in pairs], [v for _, v in pairs]

    def start_time(self) -> Any:
        starts = [t.datetime_start for t in self.trials if t.datetime_start is not None]
        return min(starts) if starts else None

    def elapsed(self, trial: FrozenTrial) -> float | None:
        """Seconds from the study's first trial start to this trial's end."""
        start = self.start_time()
        if start is None or trial.datetime_complete is None:
            return None
        return (trial.datetime_complete - start).total_seconds()


def duration(trial: FrozenTrial) -> float | None:
    """A finished trial's wall time in seconds."""
    if trial.datetime_start is None or trial.datetime_complete is None:
        return None
    return (trial.datetime_complete - trial.datetime_start).total_seconds()


def load_view(study: str, storage: str | None = None, label: str | None = None) -> StudyView:
    """Open a study (a study file, or a study name in ``storage``) for the dashboards.

    Raises:
        StudyNotFoundError: no such study in the storage.
        ConfigError: a bad study file or storage URL.
    """
    from hpsearch.results import open_study, study_target

    _, url = study_target(study, storage)
    return StudyView.of(open_study(study, storage), storage=url, label=label)


def _matches(value: Any, wanted: Any) -> bool:
    if isinstance(wanted, list):
        return any(_matches(value, w) for w in wanted)
    a, b = _number(value), _number(wanted)
    if a is not None and b is not None:
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    return str(value) == str(wanted)


def _lookup(trial: FrozenTrial, name: str) -> Any:
    """A trial's value of ``name``: a stored param, else (the family a choice) its
    family's section param by the builder's name (``depth`` for ``mlp.depth``), else a
    user attribute; None when the trial has none (a CNN trial has no ``depth``)."""
    if name in trial.params:
        return trial.params[name]
    family = trial.params.get("family")
    if isinstance(family, str) and f"{family}.{name}" in trial.params:
        return trial.params[f"{family}.{name}"]
    value = TrialRecord.from_trial(trial).get(name)
    return value if isinstance(value, bool | int | float | str) else None


def group_of(
    trial: FrozenTrial,
    study_label: str,
    group_by: Sequence[str] | None,
    groups: Mapping[str, Mapping[str, Any]] | None,
) -> str:
    """The category of a trial: the first named group whose values it has (else
    ``other``), or the values of the ``group_by`` parameters (``study``: the study)."""
    if groups:
        for label, wanted in groups.items():
            if all(_matches(_lookup(trial, k), v) for k, v in wanted.items()):
                return label
        return "other"
    parts = []
    for name in group_by or []:
        if name == "study":
            parts.append(study_label)
            continue
        value = _lookup(trial, name)
        text = "inactive" if value is None else fmt(value)
        parts.append(text if len(group_by or []) == 1 else f"{name}={text}")
    return ", ".join(parts)


def order_groups(keys: Sequence[str], named: Sequence[str] | None) -> list[str]:
    """Named groups in their order (``other`` last); else numbers numerically, then text."""
    unique = list(dict.fromkeys(keys))
    if named:
        return [g for g in [*named, "other"] if g in unique]

    def key(text: str) -> tuple[int, float, str]:
        try:
            return (0, float(text), text)
        except ValueError:
            return (1, 0.0, text)

    return sorted(unique, key=key)
