"""What hpsearch records on a trial and on a study besides :class:`StudyMeta`, as typed
records: :class:`TrialRecord` (a trial's user attributes), :class:`RefitRecord` (the
study attribute ``refit``) and :class:`SklearnSummary` (the study attribute ``sklearn``).

The attribute names are defined here once; every reader goes through the records and
every writer uses these names. The stored form is the one earlier versions wrote, so
their studies still open: a key a trial does not have reads as None.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import optuna

__all__ = [
    "ARTIFACT",
    "ARTIFACT_ERROR",
    "ENGINE",
    "EPOCHS_RUN",
    "FAIL_REASON",
    "HISTORY",
    "INTERRUPTED",
    "LATENCY",
    "LOST",
    "PARAM_COUNT",
    "PROGRESS_ATTRS",
    "REFIT_ATTR",
    "RESUMED_FROM_EPOCH",
    "RETRY_OF",
    "SEED",
    "SETUP_ERROR",
    "SHOWN_ATTRS",
    "SKLEARN_ATTR",
    "STOPPED_AT_CHANCE",
    "TRACEBACK",
    "TRAIN_SECONDS",
    "WORKER",
    "REASON_CHARS",
    "RefitRecord",
    "SklearnSummary",
    "TrialRecord",
    "short_reason",
]

# ------------------------------------------------------- trial attribute names
WORKER = "worker"  # host:pid of the worker that ran the trial
RETRY_OF = "retry_of"  # the trial a re-queued copy replaces
SEED = "seed"
PARAM_COUNT = "params"  # the model's parameter count (not the trial's params)
EPOCHS_RUN = "epochs_run"
TRAIN_SECONDS = "train_seconds"
HISTORY = "history"  # Keras' per-epoch logs
LATENCY = "latency"  # milliseconds per prediction
STOPPED_AT_CHANCE = "stopped_at_chance"  # the epoch a no-better-than-chance run stopped
RESUMED_FROM_EPOCH = "resumed_from_epoch"
FAIL_REASON = "fail_reason"
INTERRUPTED = "interrupted"  # Ctrl-C, SIGTERM: queued again
SETUP_ERROR = "setup_error"  # stopped by a set-up error (a broken builder), queued again
TRACEBACK = "traceback"
ARTIFACT = "artifact"  # the folder of the kept model
ARTIFACT_ERROR = "artifact_error"
LOST = "lost"  # why a RUNNING trial nobody ran any more was failed (and queued again)
ENGINE = "engine"  # "sklearn" on the scikit-learn engine's trials
FOLD_SCORES = "fold_scores"
STD_TEST_SCORE = "std_test_score"
MEAN_FIT_TIME = "mean_fit_time"
STD_FIT_TIME = "std_fit_time"
MEAN_SCORE_TIME = "mean_score_time"
STD_SCORE_TIME = "std_score_time"
MEAN_TRAIN_SCORE = "mean_train_score"
N_RESOURCES = "n_resources"
ITERATION = "iteration"

REASON_CHARS = 500  # a stored reason (fail_reason, artifact_error) is cut here


def short_reason(text: str) -> str:
    """A failure's reason as stored: at most :data:`REASON_CHARS` characters.

    >>> len(short_reason("x" * 600))
    500
    """
    return text[:REASON_CHARS]


# the attributes worth showing next to a trial's params, in this order (the Keras
# metrics of the Optuna engine, then the scikit-learn engine's)
SHOWN_ATTRS = (
    "val_accuracy",
    "val_rmse",  # a regression's (in the target's units)
    "val_mae",
    "val_loss",
    "accuracy",
    "rmse",
    "mae",
    "loss",
    PARAM_COUNT,
    EPOCHS_RUN,
    TRAIN_SECONDS,
    LATENCY,
    FOLD_SCORES,
    STD_TEST_SCORE,
    MEAN_FIT_TIME,
    N_RESOURCES,
)
# what a finished trial's progress line shows (sent from worker processes, too)
PROGRESS_ATTRS = (EPOCHS_RUN, FAIL_REASON, TRAIN_SECONDS)
# numeric attributes that are bookkeeping, not metrics (a model card's metrics skip them)
_BOOKKEEPING = frozenset(
    {HISTORY, TRACEBACK, SEED, ARTIFACT, EPOCHS_RUN, TRAIN_SECONDS, PARAM_COUNT}
)
# not part of a trial's summary (``hpsearch best --json``): long
_LONG = (HISTORY, TRACEBACK)


@dataclass(frozen=True)
class TrialRecord:
    """A trial's user attributes as hpsearch writes them. Every field is None when the
    trial does not have it (a study of an older version, a trial still running, the
    other engine's trial); ``metrics`` holds every other attribute (Keras' final logs:
    ``val_accuracy``, ``loss``...). A record built in code writes its attributes in the
    order of the fields, the order the engines always wrote them in.

    Example:
        >>> record = TrialRecord(seed=7, epochs_run=3, metrics={"val_accuracy": 0.9})
        >>> record.to_attrs()
        {'val_accuracy': 0.9, 'seed': 7, 'epochs_run': 3}
        >>> TrialRecord.from_attrs(record.to_attrs()) == record
        True
        >>> TrialRecord.from_attrs({}).fail_reason is None   # nothing recorded
        True
    """

    metrics: dict[str, Any] = field(default_factory=dict)
    worker: str | None = None
    retry_of: int | None = None
    # the scikit-learn engine's trials (from ``cv_results_``)
    fold_scores: list[float] | None = None
    std_test_score: float | None = None
    mean_fit_time: float | None = None
    std_fit_time: float | None = None
    mean_score_time: float | None = None
    std_score_time: float | None = None
    seed: int | None = None
    engine: str | None = None
    mean_train_score: float | None = None
    n_resources: int | None = None
    iteration: int | None = None
    # the Optuna engine's trials
    param_count: int | None = None
    epochs_run: int | None = None
    train_seconds: float | None = None
    history: dict[str, list[float]] | None = None
    latency: float | None = None
    stopped_at_chance: int | None = None
    resumed_from_epoch: int | None = None
    fail_reason: str | None = None
    interrupted: bool | None = None
    setup_error: bool | None = None
    traceback: str | None = None
    artifact: str | None = None
    artifact_error: str | None = None
    lost: str | None = None
    # the stored order of the attributes (read back as written); not part of the value
    order: tuple[str, ...] = field(default=(), compare=False, repr=False)

    # ------------------------------------------------------------ read and write
    @classmethod
    def from_attrs(cls, raw: Mapping[str, Any] | None) -> TrialRecord:
        """Read the stored form; a missing key reads as None (as stored otherwise)."""
        raw = raw if isinstance(raw, Mapping) else {}
        known = {key: raw[key] for key in _FIELD_OF if key in raw}
        return cls(
            metrics={k: v for k, v in raw.items() if k not in _FIELD_OF},
            order=tuple(raw),
            **{_FIELD_OF[key]: value for key, value in known.items()},
        )

    @classmethod
    def from_trial(cls, trial: optuna.trial.FrozenTrial | optuna.Trial) -> TrialRecord:
        """The record of a stored (or running) trial."""
        return cls.from_attrs(trial.user_attrs)

    @staticmethod
    def value(trial: optuna.trial.FrozenTrial | optuna.Trial, key: str) -> Any:
        """One stored attribute (one of the names above) of ``trial``, None if absent,
        without building the whole record: for the loops over every trial of a study
        that run after each trial (the budget), where a record per trial would cost
        30 ms per trial at 1,000 trials (``benchmarks/bookkeeping.py``, in memory)."""
        return trial.user_attrs.get(key)

    def to_attrs(self) -> dict[str, Any]:
        """The stored form: every attribute that is not None, in the order read (a
        record built in code: ``metrics`` first, then the fields in declaration order)."""
        out = dict(self.metrics)
        for key, name in _FIELD_OF.items():
            value = getattr(self, name)
            if value is not None:
                out[key] = value
        if self.order:
            first = {k: out[k] for k in self.order if k in out}
            out = {**first, **{k: v for k, v in out.items() if k not in first}}
        return out

    # ------------------------------------------------------------ what is shown
    def get(self, name: str) -> Any:
        """The attribute stored as ``name`` (a metric or a field), else None; for names
        chosen by the user (a dashboard's metric or group)."""
        if name in _FIELD_OF:
            return getattr(self, _FIELD_OF[name])
        return self.metrics.get(name)

    def shown(self) -> dict[str, Any]:
        """The attributes worth showing next to the params (:data:`SHOWN_ATTRS` the
        trial has), in that order."""
        return {k: v for k in SHOWN_ATTRS if (v := self.get(k)) is not None}

    def progress(self) -> dict[str, Any]:
        """What a finished trial's progress line shows (:data:`PROGRESS_ATTRS`)."""
        return {k: v for k in PROGRESS_ATTRS if (v := self.get(k)) is not None}

    def summary(self) -> dict[str, Any]:
        """Every attribute but the long ones (the history and the traceback)."""
        return {k: v for k, v in self.to_attrs().items() if k not in _LONG}

    def numbers(self) -> dict[str, Any]:
        """The numeric attributes but for bookkeeping ones (a model card's metrics)."""
        return {
            k: v
            for k, v in self.to_attrs().items()
            if k not in _BOOKKEEPING and isinstance(v, int | float)
        }

    @property
    def stopped(self) -> bool:
        """Stopped for a reason not its own (interrupted, set-up error): queued again."""
        return bool(self.interrupted or self.setup_error)


# stored key -> field name, in declaration order (every field but metrics and order)
_FIELD_OF: dict[str, str] = {
    (PARAM_COUNT if f.name == "param_count" else f.name): f.name
    for f in fields(TrialRecord)
    if f.name not in ("metrics", "order")
}


# ------------------------------------------------------- study attributes
REFIT_ATTR = "refit"
SKLEARN_ATTR = "sklearn"


@dataclass(frozen=True)
class RefitRecord:
    """The scikit-learn engine's refit of the best candidate on all training data (the
    study attribute ``refit``).

    Example:
        >>> refit = RefitRecord(trial=3, params={"width": 8}, val_accuracy=0.9,
        ...                     val_loss=0.3, train_seconds=1.5)
        >>> RefitRecord.from_dict(refit.to_dict()) == refit
        True
        >>> RefitRecord.from_dict(None) is None   # no refit stored
        True
    """

    trial: int
    params: dict[str, Any]
    val_accuracy: float | None  # None for a regression
    val_loss: float
    train_seconds: float | None = None
    val_rmse: float | None = None  # a regression's, in the target's units

    def to_dict(self) -> dict[str, Any]:
        """The stored form (the keys and values earlier versions wrote)."""
        return {
            "trial": self.trial,
            "params": self.params,
            "val_accuracy": self.val_accuracy,
            "val_loss": self.val_loss,
            "train_seconds": self.train_seconds,
            **({"val_rmse": self.val_rmse} if self.val_rmse is not None else {}),
        }

    @classmethod
    def from_dict(cls, raw: Any) -> RefitRecord | None:
        """Read the stored form; None when there is none."""
        if not isinstance(raw, Mapping) or not raw:
            return None
        return cls(
            trial=raw.get("trial"),  # type: ignore[arg-type]
            params=dict(raw.get("params") or {}),
            val_accuracy=raw.get("val_accuracy"),
            val_loss=raw.get("val_loss"),  # type: ignore[arg-type]
            train_seconds=raw.get("train_seconds"),
            val_rmse=raw.get("val_rmse"),
        )

    @classmethod
    def of(cls, study: optuna.Study) -> RefitRecord | None:
        """The refit stored on a study, if any."""
        return cls.from_dict(study.user_attrs.get(REFIT_ATTR))

    def write(self, study: optuna.Study) -> None:
        study.set_user_attr(REFIT_ATTR, self.to_dict())


@dataclass(frozen=True)
class SklearnSummary:
    """The scikit-learn engine's summary of its search (the study attribute ``sklearn``):
    the search's class, the folds, the scoring, the search time over every run of the
    study and the rank of every trial (trial number as text -> 1 = best).

    Example:
        >>> summary = SklearnSummary("GridSearchCV", 3, "accuracy", 2.5, {"0": 1})
        >>> SklearnSummary.from_dict(summary.to_dict()) == summary
        True
        >>> SklearnSummary.from_dict(None) is None
        True
    """

    search: str | None = None
    cv: int | None = None
    scoring: str | None = None
    seconds: float = 0.0
    ranking: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The stored form (the keys and values earlier versions wrote)."""
        return {
            "search": self.search,
            "cv": self.cv,
            "scoring": self.scoring,
            "seconds": self.seconds,
            "ranking": dict(self.ranking),
        }

    @classmethod
    def from_dict(cls, raw: Any) -> SklearnSummary | None:
        """Read the stored form; None when there is none."""
        if not isinstance(raw, Mapping):
            return None
        return cls(
            search=raw.get("search"),
            cv=raw.get("cv"),
            scoring=raw.get("scoring"),
            seconds=raw.get("seconds", 0.0),
            ranking=dict(raw.get("ranking") or {}),
        )

    @classmethod
    def of(cls, study: optuna.Study) -> SklearnSummary | None:
        """The summary stored on a study, if any."""
        return cls.from_dict(study.user_attrs.get(SKLEARN_ATTR))

    def write(self, study: optuna.Study) -> None:
        study.set_user_attr(SKLEARN_ATTR, self.to_dict())
