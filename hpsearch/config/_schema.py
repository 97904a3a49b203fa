"""Typed models of a study file.

The YAML is validated once, here; everything downstream receives these objects.
Unknown keys are rejected (``extra="forbid"``) so a misspelt key is an error,
not a silently ignored setting.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    JsonValue,
    Tag,
    field_validator,
)

Scalar = bool | int | float | str


class _Strict(BaseModel):
    # NaN and infinity mean nothing in a study file (and NaN slips through range checks)
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


ActiveIf = dict[str, Scalar | list[Scalar]] | None
"""``active_if: {optimizer: [adam, nadam], regularize: true}``: the parameter is used only
in trials where every named parameter takes one of the given values."""


class RangeParam(_Strict):
    """A numeric range: ``{low: 1, high: 4}``, ``{low: 1e-4, high: 1e-1, log: true}``."""

    low: int | float
    high: int | float
    log: bool = False
    step: int | float | None = None
    type: Literal["int", "float"] | None = None
    per_layer: bool = False
    active_if: ActiveIf = None

    @property
    def is_int(self) -> bool:
        if self.type is not None:
            return self.type == "int"
        return (
            isinstance(self.low, int)
            and isinstance(self.high, int)
            and (self.step is None or isinstance(self.step, int))
        )


class ChoiceParam(_Strict):
    """A categorical choice: ``{choices: [adam, rmsprop]}``."""

    choices: list[Scalar] = Field(min_length=1)
    per_layer: bool = False
    active_if: ActiveIf = None


class FixedParam(_Strict):
    """A fixed value: ``relu`` or ``{value: relu}``; a list gives one value per layer."""

    value: Scalar | list[Scalar]
    active_if: ActiveIf = None


_SPEC_KEYS = frozenset({"low", "high", "choices", "value"})
_SPEC_TEXT = "a parameter is a value, {low, high[, log, step]}, {choices: [...]} or {value: ...}"


def _param_kind(value: Any) -> str:
    if isinstance(value, RangeParam):
        return "range"
    if isinstance(value, ChoiceParam):
        return "choice"
    if isinstance(value, dict):
        if "choices" in value:
            return "choice"
        if "value" in value:
            return "fixed"
        return "range"
    return "fixed"


def _wrap_param(value: Any) -> Any:
    if isinstance(value, list):
        raise ValueError(
            "a bare list is ambiguous; write {choices: [...]} to search over values "
            "or {value: [...]} for a fixed value per layer"
        )
    if value is None or (isinstance(value, dict) and not _SPEC_KEYS & set(value)):
        raise ValueError(_SPEC_TEXT)
    if isinstance(value, dict):
        return value
    return {"value": value}


Param = Annotated[
    Annotated[RangeParam, Tag("range")]
    | Annotated[ChoiceParam, Tag("choice")]
    | Annotated[FixedParam, Tag("fixed")],
    Discriminator(_param_kind),
    BeforeValidator(_wrap_param),
]


class _SectionInput(dict[str, Any]):
    """A ``space`` entry read as a family's section (see :func:`_mark_sections`)."""


def _is_family_name(name: Any) -> bool:
    return isinstance(name, str) and (name in ("mlp", "cnn") or ":" in name)


def _mark_sections(space: Any) -> Any:
    """Mark the entries that are sections: a mapping of parameters under a family's
    name (``cnn: {blocks: 3}``); any other mapping is a parameter (or a mistake in one)."""
    if not isinstance(space, dict):
        return space
    return {
        key: _SectionInput(value)
        if _is_family_name(key) and isinstance(value, dict) and not _SPEC_KEYS & set(value)
        else value
        for key, value in space.items()
    }


def _entry_kind(value: Any) -> str:
    """``section`` for a marked mapping (validating) or a mapping of validated
    parameters (serializing, where the mark is gone); else ``param``."""
    if isinstance(value, _SectionInput):
        return "section"
    if (
        isinstance(value, dict)
        and value
        and all(isinstance(v, RangeParam | ChoiceParam | FixedParam) for v in value.values())
    ):
        return "section"
    return "param"


Section = dict[str, Param]
"""The parameters of one model family, used only in the trials of that family."""

SpaceEntry = Annotated[
    Annotated[Param, Tag("param")] | Annotated[Section, Tag("section")],
    Discriminator(_entry_kind),
]


class DataConfig(_Strict):
    """Which data set, how it is scaled and split.

    ``categorical``, ``numeric`` and ``max_categories`` apply to a CSV read as a table
    (string cells or gaps among its features, see :mod:`hpsearch.data._table`): columns to
    one-hot encode even if they hold numbers, columns that must be numbers, and the one-hot
    values kept per column (rarer ones share the out-of-vocabulary bucket).
    """

    name: str = "digits"
    path: str | None = None
    label_column: str = "label"
    image_shape: list[int] | None = None
    scale: Literal["auto", "none", "unit", "standard"] = "auto"
    validation: float | int = Field(default=0.2, gt=0)
    test: float | int = Field(default=0.2, gt=0)
    subset: int | None = Field(default=None, gt=0)
    seed: int = 0
    # an image folder (name: images): the size images are resized to, [height, width]
    # (default: the first image's), their colours, and the decoded size allowed in memory
    image_size: list[int] | None = None
    color_mode: Literal["grayscale", "rgb"] = "rgb"
    memory_limit_mb: int = Field(default=2048, gt=0)
    # arrays passed through the Python API (name: arrays): their fingerprint, set by
    # hpsearch.run(..., data=...), never written by hand
    arrays: str | None = None
    categorical: list[str] = Field(default_factory=list)
    numeric: list[str] = Field(default_factory=list)
    max_categories: int = Field(default=50, ge=1)
    # regression: train on (y - mean) / std of the training targets; metrics, the card and
    # the exported model stay in the target's own units (see hpsearch.data._task). None:
    # on for a regression, off for a classification (resolved with the task)
    standardize_target: bool | None = None

    @field_validator("validation", "test")
    @classmethod
    def _fraction_or_count(cls, v: float | int) -> float | int:
        if isinstance(v, float) and not 0 < v < 1:
            raise ValueError("a fraction must be between 0 and 1 (exclusive), or give a count")
        return v


class FamilyChoice(_Strict):
    """The model family as a hyperparameter: ``{choices: [mlp, cnn]}``."""

    choices: list[str] = Field(min_length=1)


class ModelConfig(_Strict):
    """The model family: ``mlp``, ``cnn``, a user builder ``package.module:function``, or
    a choice among them (``{choices: [mlp, cnn]}``, each with its section in ``space``).

    ``api``: how a user builder is called: ``params`` (``fn(params, input_shape=...,
    num_classes=...)``), ``keras_tuner`` (``fn(hp)`` or a HyperModel's ``build(hp)``),
    ``optuna`` (``fn(trial)``); ``auto`` reads it from the builder (see
    :mod:`hpsearch.models._hp`).
    """

    family: str | FamilyChoice = "mlp"
    api: Literal["auto", "params", "keras_tuner", "optuna"] = "auto"

    @property
    def families(self) -> tuple[str, ...]:
        """The families a trial may have, in the file's order."""
        if isinstance(self.family, FamilyChoice):
            return tuple(self.family.choices)
        return (self.family,)

    @property
    def family_text(self) -> str:
        """The family, or the families of a choice, for messages: ``mlp or cnn``."""
        return " or ".join(self.families)


class ObjectiveConfig(_Strict):
    """One objective: a metric and a direction."""

    metric: str = "val_accuracy"
    direction: Literal["maximize", "minimize"] | None = None


def _wrap_objective(value: Any) -> Any:
    if isinstance(value, str):
        return {"metric": value}
    return value


Objective = Annotated[ObjectiveConfig, BeforeValidator(_wrap_objective)]


def _wrap_objectives(value: Any) -> Any:
    if value is None:
        return [{}]
    if isinstance(value, list):
        return value
    return [value]


class SearchConfig(_Strict):
    """Sampler, pruner and budget."""

    sampler: str = "auto"
    # JSON values: the run stores the configuration in the study as JSON
    sampler_options: dict[str, JsonValue] = Field(default_factory=dict)
    pruner: str = "none"
    pruner_options: dict[str, JsonValue] = Field(default_factory=dict)
    n_trials: int | None = Field(default=None, gt=0)
    timeout: float | None = Field(default=None, gt=0)
    seed: int | None = 0
    enqueue: list[dict[str, JsonValue]] = Field(default_factory=list)
    max_consecutive_failures: int = Field(default=5, gt=0)
    # the scikit-learn engine (search.engine: sklearn)
    engine: Literal["optuna", "sklearn"] = "optuna"
    method: Literal["grid", "random", "halving_grid", "halving_random"] = "grid"
    cv: int = Field(default=5, ge=2)
    scoring: str | None = None
    n_iter: int = Field(default=10, gt=0)
    refit: bool = True
    resource: Literal["n_samples", "epochs"] = "n_samples"
    factor: float = Field(default=3, gt=1)

    def _changed(self, names: set[str]) -> set[str]:
        """Which of ``names`` differ from their defaults.

        By value, not by what the YAML spelled out: a stored study's configuration
        lists every field.
        """
        fields = type(self).model_fields
        return {
            n for n in names if getattr(self, n) != fields[n].get_default(call_default_factory=True)
        }

    @property
    def sklearn_only_fields(self) -> set[str]:
        """scikit-learn settings given (they mean nothing to the Optuna engine)."""
        return self._changed({"method", "cv", "scoring", "n_iter", "refit", "resource", "factor"})

    @property
    def optuna_only_fields(self) -> set[str]:
        """Optuna settings given (they mean nothing to the scikit-learn engine)."""
        return self._changed({"sampler", "sampler_options", "pruner", "pruner_options", "enqueue"})


class ExportConfig(_Strict):
    """Which trained models the run keeps for ``hpsearch export`` (see ``hpsearch.artifacts``)."""

    keep: Literal["best", "all", "none"] = "best"
    dir: str | None = None  # default: beside the storage file (runs.db -> runs_artifacts/)


class RayConfig(_Strict):
    """Workers as Ray actors on a Ray cluster (see ``hpsearch.engines._ray``)."""

    # auto: the cluster this machine belongs to; ray://head:10001 or head:6379: that one;
    # local: a one-machine cluster started for this run (on 127.0.0.1, for trying it)
    address: str = Field(default="auto", min_length=1)
    num_cpus: float = Field(default=1, ge=0)  # CPUs Ray reserves for each worker
    # GPUs per worker (Ray sets CUDA_VISIBLE_DEVICES); None: from workers.gpus and the
    # cluster's GPUs (auto: one each when there are enough; none without GPUs)
    num_gpus: float | None = Field(default=None, ge=0)
    memory_mb: int | None = Field(default=None, ge=1)  # memory Ray reserves for each worker


class WorkersConfig(_Strict):
    """Worker processes, heartbeats and checkpoints (see ``hpsearch.engines._workers``)."""

    count: int = Field(default=1, ge=1)  # local worker processes (`run --workers N`)
    recycle_after: int = Field(default=20, ge=1)  # trials per process before it is replaced
    threads: int | None = Field(default=None, ge=1)  # TensorFlow threads per worker
    # auto: every GPU detected, one worker each unless count says; N: the first N; a list:
    # those device ids; 0: none (CPU only). Rules in hpsearch.engines._gpus
    gpus: (
        Literal["auto"]
        | Annotated[int, Field(ge=0, strict=True)]
        | Annotated[list[Annotated[int, Field(ge=0, strict=True)]], Field(min_length=1)]
    ) = "auto"

    @field_validator("gpus", mode="before")
    @classmethod
    def _gpus_shape(cls, v: Any) -> Any:
        def count(x: Any) -> bool:
            return isinstance(x, int) and not isinstance(x, bool) and x >= 0

        if v == "auto" or count(v) or (isinstance(v, list) and v and all(map(count, v))):
            return v
        raise ValueError("allowed: auto, a count of GPUs (0: none), or device ids like [0, 1]")

    heartbeat_interval: int = Field(default=30, ge=1)  # seconds between heartbeats
    grace_period: int = Field(default=120, ge=2)  # a silent RUNNING trial is failed after this
    checkpoints: bool = False  # save every epoch, so a retried trial resumes from it
    checkpoint_dir: str | None = None  # default: beside the storage (share it across hosts)
    # workers as Ray actors (`run --ray ADDRESS`); the storage must be a server every node reaches
    ray: RayConfig | None = None


class StudyConfig(_Strict):
    """A whole study file."""

    name: str | None = None
    description: str | None = None
    # auto: regression when the data set says so (diabetes, california_housing) or its
    # target is float with non-integer values; else classification (hpsearch.data._task)
    task: Literal["auto", "classification", "regression"] = "auto"
    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    space: Annotated[dict[str, SpaceEntry], BeforeValidator(_mark_sections)] = Field(
        default_factory=dict
    )
    objective: Annotated[list[Objective], BeforeValidator(_wrap_objectives)] = Field(
        default_factory=lambda: [ObjectiveConfig()], min_length=1
    )
    search: SearchConfig = Field(default_factory=SearchConfig)
    export: ExportConfig = Field(default_factory=ExportConfig)
    workers: WorkersConfig = Field(default_factory=WorkersConfig)
    storage: str | None = None
