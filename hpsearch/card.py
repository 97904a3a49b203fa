"""The model card of an export folder, as typed records.

``hpsearch export`` writes a :class:`ModelCard` as ``model_card.json``
(:meth:`ModelCard.to_json`) and ``model_card.md`` (:meth:`ModelCard.to_markdown`);
``hpsearch predict`` reads it back with :meth:`ModelCard.from_json`. The records
mirror the JSON one to one: the same keys, nesting and order (format version 1),
so folders written before these records existed still load.

Nothing here imports Keras or Optuna.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from hpsearch.exceptions import HpsearchError

__all__ = [
    "FORMAT_VERSION",
    "CardError",
    "DataInfo",
    "InputSpec",
    "Measurement",
    "ModelCard",
    "ModelInfo",
    "Objective",
    "Reproduce",
    "StudyInfo",
    "TrialInfo",
    "Validation",
    "WeightsInfo",
    "jsonable",
]

FORMAT_VERSION = 1
WEIGHT_SOURCES = ("kept", "retrained", "retrained_full")

_R = TypeVar("_R")


class CardError(HpsearchError):
    """A model card that is not valid JSON or lacks a field of the format."""


# ------------------------------------------------------------------ records
@dataclass
class Objective:
    """One objective of the study.

    Attributes:
        metric: the metric name, e.g. ``val_accuracy``.
        direction: ``maximize`` or ``minimize``.
    """

    metric: str
    direction: str


@dataclass
class StudyInfo:
    """The study the model was found in.

    Attributes:
        name: the study name.
        storage: the storage URL the study was read from.
        engine: the search engine (``optuna`` or ``sklearn``).
        source: the study file the search ran from, if known.
        objectives: the study's objectives, in order.
        family: the model family (``mlp``, ``cnn`` or a builder).
    """

    name: str
    storage: str
    engine: str
    source: str | None
    objectives: list[Objective]
    family: str

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StudyInfo:
        """Read the ``study`` object of a card."""
        kwargs = _fields(cls, data, "study")
        kwargs["objectives"] = [
            _record(Objective, o, f"study.objectives[{i}]")
            for i, o in enumerate(_list(kwargs["objectives"], "study.objectives"))
        ]
        return cls(**kwargs)


@dataclass
class TrialInfo:
    """The exported trial as the search recorded it.

    Attributes:
        number: the trial number.
        values: objective values by metric name.
        params: the model's parameters (the space's names, fixed values included).
        optuna_params: the parameters as Optuna stores them.
        seed: the training seed.
        metrics: the trial's numeric metrics (Keras' last logs and more).
        epochs_run: epochs the trial trained.
        train_seconds: the trial's training time.
        started: when the trial started (ISO 8601), if known.
    """

    number: int
    values: dict[str, float]
    params: dict[str, Any]
    optuna_params: dict[str, Any]
    seed: int
    metrics: dict[str, float]
    epochs_run: int | None
    train_seconds: float | None
    started: str | None


@dataclass
class WeightsInfo:
    """Where the exported weights come from.

    Attributes:
        source: ``kept`` (saved by the search), ``retrained`` or ``retrained_full``.
        artifact: the folder of the kept weights, if ``kept``.
        epochs: epochs the weights were trained for.
        retrain_seconds: the re-training time at export, if re-trained.
        trained_on: ``train`` or ``train+validation``.
    """

    source: str
    artifact: str | None
    epochs: int
    retrain_seconds: float | None
    trained_on: str


@dataclass
class InputSpec:
    """The exported model's input.

    Attributes:
        name: the input's name.
        shape: one sample's shape.
        dtype: the input's dtype.
    """

    name: str
    shape: list[int]
    dtype: str


@dataclass
class ModelInfo:
    """The exported network.

    Attributes:
        name: the Keras model's name.
        parameters: all weights, counted.
        trainable_parameters: the trainable weights, counted.
        input: what the model takes.
        output: what the model returns, in words.
        training_only_layers: augmentation layers inactive in inference.
        summary: Keras' ``model.summary()`` text.
    """

    name: str
    parameters: int
    trainable_parameters: int
    input: InputSpec
    output: str
    training_only_layers: list[str]
    summary: str

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelInfo:
        """Read the ``model`` object of a card."""
        kwargs = _fields(cls, data, "model")
        kwargs["input"] = _record(InputSpec, kwargs["input"], "model.input")
        return cls(**kwargs)


@dataclass
class DataInfo:
    """The data set, its splits and its preprocessing.

    Attributes:
        name: the data set (``digits``, ``mnist``, ``csv``, ...).
        path: the data file, if any.
        subset: the number of samples used, if limited.
        label_column: a CSV's label column (``csv`` only).
        split_seed: the seed of the train/validation/test split.
        train: training samples (train+validation with ``--full``).
        validation: validation samples.
        test: test samples.
        input_shape: one sample's shape.
        raw_dtype: the dtype of the raw (unscaled) inputs.
        class_names: the classes, in output order.
        scaling: the scaling inside the model (``{"kind": "divide", "value": 255.0}``...).
        preprocessing: the scaling, in words.
        fingerprint: a hash of the training and validation arrays at export.
        fingerprint_of_search: the same hash recorded by the search, if any.
        table: a table with string columns or gaps: its columns, their kinds and
            fitted encoding (vocabularies, imputed values), see
            :class:`hpsearch.data._table.TableSpec`; None for arrays.
        task: ``classification`` or ``regression`` (a regression has no classes).
        target_scaling: a regression's standardized target (``{"mean": ..., "std": ...}``
            of the training split), undone inside the model; None if not standardized.
    """

    name: str
    path: str | None
    subset: int | None
    label_column: str | None
    split_seed: int
    train: int
    validation: int
    test: int
    input_shape: list[int]
    raw_dtype: str
    class_names: list[str]
    scaling: dict[str, Any]
    preprocessing: str
    fingerprint: str
    fingerprint_of_search: str | None
    table: dict[str, Any] | None = None
    task: str = "classification"
    target_scaling: dict[str, float] | None = None


@dataclass
class Measurement:
    """Accuracy and loss of the exported model on one split (a regression: MAE, RMSE
    and R², in the target's units, and no accuracy).

    Attributes:
        accuracy: the share of correct predictions (None for a regression).
        correct: the number of correct predictions (None for a regression).
        samples: the split's size.
        loss: Keras' loss on the split (a regression: the trial's loss in the target's units).
        mae: a regression's mean absolute error.
        rmse: a regression's root mean squared error.
        r2: a regression's coefficient of determination.
    """

    accuracy: float | None
    correct: int | None
    samples: int
    loss: float
    mae: float | None = None
    rmse: float | None = None
    r2: float | None = None


@dataclass
class Validation:
    """Validation metrics: the search's and the exported weights'.

    Attributes:
        search: the trial's ``val_*`` metrics.
        export: the exported weights measured at export.
    """

    search: dict[str, float]
    export: Measurement

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Validation:
        """Read the ``validation`` object of a card."""
        kwargs = _fields(cls, data, "validation")
        kwargs["export"] = _record(Measurement, kwargs["export"], "validation.export")
        return cls(**kwargs)


@dataclass
class Reproduce:
    """Commands that make the model again.

    Attributes:
        export: re-train this trial and export it again.
        search: run the whole search again.
    """

    export: str
    search: str


@dataclass
class ModelCard:
    """Where an exported model came from and how good it is (``model_card.json``).

    Attributes:
        format_version: the card format (1).
        created: when the card was written (ISO 8601, UTC).
        study: the study searched.
        trial: the exported trial.
        weights: where the weights come from.
        model: the exported network.
        data: the data set and its preprocessing.
        validation: validation metrics.
        test: the test split measured at export.
        files: the files of the export folder, with what each is.
        checks: differences between formats (``savedmodel_max_abs_diff``...).
        versions: library versions, by name.
        reproduce: commands that make the model again.
        config: the study configuration searched (``study.yaml``).

    Example (``hpsearch export`` fills in every field; ``predict`` reads them back):
        >>> card = ModelCard(
        ...     format_version=1,
        ...     created="2025-01-02T03:04:05+00:00",
        ...     study=StudyInfo("quickstart", "sqlite:///hpsearch.db", "optuna", None,
        ...                     [Objective("val_accuracy", "maximize")], "mlp"),
        ...     trial=TrialInfo(12, {"val_accuracy": 0.97}, {"width": 64}, {"width": 64},
        ...                     seed=54, metrics={}, epochs_run=20, train_seconds=4.2,
        ...                     started=None),
        ...     weights=WeightsInfo("kept", "artifacts/trial-12", 20, None, "train"),
        ...     model=ModelInfo("mlp", 4810, 4810, InputSpec("inputs", [8, 8, 1], "float32"),
        ...                     "softmax probabilities over the 10 classes", [], "(layers)"),
        ...     data=DataInfo("digits", None, None, None, 0, 1149, 288, 360, [8, 8, 1],
        ...                   "float64", [str(i) for i in range(10)], {"kind": "divide",
        ...                   "value": 16.0}, "inputs are divided by 16", "ab12", "ab12"),
        ...     validation=Validation({"val_accuracy": 0.97}, Measurement(0.97, 279, 288, 0.1)),
        ...     test=Measurement(accuracy=0.9694, correct=349, samples=360, loss=0.11),
        ...     files={"model.keras": "Keras 3 model"},
        ...     checks={},
        ...     versions={"hpsearch": "0.1.0"},
        ...     reproduce=Reproduce("hpsearch export quickstart --trial 12", "hpsearch run x"),
        ...     config={"name": "quickstart"},
        ... )
        >>> text = card.to_json()  # the text of model_card.json
        >>> again = ModelCard.from_json(text)
        >>> again == card, again.test.accuracy, again.model.input.shape
        (True, 0.9694, [8, 8, 1])
        >>> again["trial"]["params"]  # dict-style reading of the JSON form
        {'width': 64}
        >>> ModelCard.from_json('{"format_version": 1}')
        Traceback (most recent call last):
        hpsearch.card.CardError: not a model card: created is missing
    """

    format_version: int
    created: str
    study: StudyInfo
    trial: TrialInfo
    weights: WeightsInfo
    model: ModelInfo
    data: DataInfo
    validation: Validation
    test: Measurement
    files: dict[str, str]
    checks: dict[str, float]
    versions: dict[str, str]
    reproduce: Reproduce
    config: dict[str, Any]

    # -------------------------------------------------------------- JSON
    def to_dict(self) -> dict[str, Any]:
        """The card as plain JSON values, keys in the order of ``model_card.json``."""
        result: dict[str, Any] = jsonable(dataclasses.asdict(self))
        if result["data"].get("table") is None:  # arrays: the card as before tables
            del result["data"]["table"]
        if not self.regression:  # a classifier's card keeps the format it always had
            for key in ("task", "target_scaling"):
                result["data"].pop(key, None)
            for measured in (result["validation"]["export"], result["test"]):
                for key in ("mae", "rmse", "r2"):
                    measured.pop(key, None)
        return result

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelCard:
        """Read a card from its JSON values.

        Raises:
            CardError: a field of the format is missing or is not an object.
        """
        kwargs = _fields(cls, data, "")
        kwargs["study"] = StudyInfo.from_dict(_mapping(kwargs["study"], "study"))
        kwargs["trial"] = _record(TrialInfo, kwargs["trial"], "trial")
        kwargs["weights"] = _record(WeightsInfo, kwargs["weights"], "weights")
        kwargs["model"] = ModelInfo.from_dict(_mapping(kwargs["model"], "model"))
        kwargs["data"] = _record(DataInfo, kwargs["data"], "data")
        kwargs["validation"] = Validation.from_dict(_mapping(kwargs["validation"], "validation"))
        kwargs["test"] = _record(Measurement, kwargs["test"], "test")
        kwargs["reproduce"] = _record(Reproduce, kwargs["reproduce"], "reproduce")
        return cls(**kwargs)

    def to_json(self) -> str:
        """The text of ``model_card.json`` (indented, with a final newline)."""
        return json.dumps(self.to_dict(), indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> ModelCard:
        """Read the text of a ``model_card.json``.

        Raises:
            CardError: not valid JSON, or not a model card.
        """
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise CardError(f"not valid JSON ({exc})") from None
        return cls.from_dict(_mapping(data, "the card"))

    def __getitem__(self, key: str) -> Any:
        """``card["test"]["accuracy"]``: read-only access to the JSON form, for code
        written when :attr:`hpsearch.export.ExportResult.card` was a dict."""
        return self.to_dict()[key]

    # -------------------------------------------------------------- Markdown
    def to_markdown(self) -> str:
        """The text of ``model_card.md``."""
        parts = (
            _md_title,
            _md_results,
            _md_use,
            _md_files,
            _md_training,
            _md_data,
            _md_architecture,
            _md_reproduce,
            _md_versions,
        )
        return "\n".join(line for part in parts for line in part(self))

    # -------------------------------------------------------------- shortcuts
    @property
    def primary_metric(self) -> str:
        """The first objective's metric (the one the CLI reports)."""
        return self.study.objectives[0].metric

    @property
    def regression(self) -> bool:
        """Whether the model predicts numbers (values, not classes)."""
        return self.data.task == "regression"

    @property
    def retrained_full(self) -> bool:
        """Whether the weights were re-trained on train+validation (``--full``)."""
        return self.weights.source == "retrained_full"


# ------------------------------------------------------------------ helpers
def jsonable(value: Any) -> Any:
    """``value`` with NumPy arrays and scalars as lists and numbers, tuples as lists."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def _where(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise CardError(f"{where}: expected an object, got {type(value).__name__}")
    return value


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise CardError(f"{where}: expected a list, got {type(value).__name__}")
    return value


def _fields(cls: type, data: Mapping[str, Any], where: str) -> dict[str, Any]:
    """The values of ``cls``'s fields in ``data``; a field without a default must be there.

    Keys the record does not know are ignored.
    """
    data = _mapping(data, where or "the card")
    out: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name in data:
            out[f.name] = data[f.name]
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise CardError(f"not a model card: {_where(where, f.name)} is missing")
    return out


def _record(cls: type[_R], data: Any, where: str) -> _R:
    """A flat record (no nested records) from its JSON object."""
    return cls(**_fields(cls, _mapping(data, where), where))


# ------------------------------------------------------------------ Markdown
def _num(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def _section(heading: str, *lines: str) -> list[str]:
    return [f"## {heading}", "", *lines, ""]


def _md_title(card: ModelCard) -> list[str]:
    s = card.study
    goals = ", ".join(f"{o.direction} {o.metric}" for o in s.objectives)
    return [
        f"# Model card: {s.name}, trial {card.trial.number}",
        "",
        f"A `{s.family}` {'regressor' if card.regression else 'classifier'} found by "
        f"hpsearch's {s.engine} search ({goals}).",
        "",
    ]


def _md_regression_results(card: ModelCard) -> list[str]:
    search, export, test = card.validation.search, card.validation.export, card.test
    n_val = card.data.validation
    full = " Validation data were part of the training (`--full`)." if card.retrained_full else ""
    return _section(
        "Results",
        "| split | samples | MAE | RMSE | R² | loss |",
        "| --- | --- | --- | --- | --- | --- |",
        f"| validation (search) | {n_val} | {_num(search.get('val_mae', '—'))} | "
        f"{_num(search.get('val_rmse', '—'))} | — | {_num(search.get('val_loss', '—'))} |",
        f"| validation (exported weights) | {n_val} | {_num(export.mae)} | "
        f"{_num(export.rmse)} | {_num(export.r2)} | {_num(export.loss)} |",
        f"| **test** (measured at export) | {test.samples} | **{_num(test.mae)}** | "
        f"**{_num(test.rmse)}** | **{_num(test.r2)}** | {_num(test.loss)} |",
        "",
        "MAE and RMSE are in the target's units. The test split is used here only, never "
        "for selection." + full,
    )


def _md_results(card: ModelCard) -> list[str]:
    if card.regression:
        return _md_regression_results(card)
    search, export, test = card.validation.search, card.validation.export, card.test
    n_val = card.data.validation
    full = " Validation data were part of the training (`--full`)." if card.retrained_full else ""
    return _section(
        "Results",
        "| split | samples | accuracy | loss |",
        "| --- | --- | --- | --- |",
        f"| validation (search) | {n_val} | {_num(search.get('val_accuracy', '—'))} | "
        f"{_num(search.get('val_loss', '—'))} |",
        f"| validation (exported weights) | {n_val} | "
        f"{_num(export.accuracy)} | {_num(export.loss)} |",
        f"| **test** (measured at export) | {test.samples} | **{_num(test.accuracy)}** | "
        f"{_num(test.loss)} |",
        "",
        "The test split is used here only, never for selection." + full,
    )


def _md_use(card: ModelCard) -> list[str]:
    m, d = card.model, card.data
    return _section(
        "Use",
        "```python",
        "import keras",
        'model = keras.models.load_model("model.keras")',
        (
            "values = model.predict(x)[:, 0]   # x: raw inputs, the scaling is in the model"
            if card.regression
            else "probabilities = model.predict(x)   # x: raw inputs, the scaling is in the model"
        ),
        "```",
        "",
        f"Input: `{m.input.shape}` raw values as in the data set (`{d.raw_dtype}`); "
        f"{d.preprocessing}. Output: {m.output}.",
        (
            "Task: regression."
            if card.regression
            else f"Classes: {', '.join(str(c) for c in d.class_names)}."
        ),
        "",
        *_md_table_use(d),
        "Or: `hpsearch predict DIR INPUT` (`.npz`, `.npy`, CSV or PNG images).",
    )


def _md_table_use(d: DataInfo) -> list[str]:
    if not d.table:
        return []
    examples = {"categorical": '"red"', "numeric": "1.5"}
    names = ", ".join(f'"{c["input"]}": [[{examples[c["kind"]]}]]' for c in d.table["columns"][:2])
    return [
        "The model takes a dict of named inputs, one per column, each of shape (n, 1): "
        'a string for a categorical column (`""` for a gap), a float32 for a numeric '
        f"one (NaN for a gap), e.g. `model({{{names}, ...}})` with NumPy arrays; "
        "`model.predict` wants `tf.constant` values for the string columns. "
        "`hpsearch predict DIR new.csv` reads the raw CSV.",
        "",
    ]


def _md_table(d: DataInfo) -> list[str]:
    """The table's columns, kinds, vocabularies and imputation."""
    if not d.table:
        return []
    lines = [
        "",
        "| column | input | kind | encoding | missing in train | imputed with |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for c in d.table["columns"]:
        if c["kind"] == "numeric":
            encoding = f"standardized (mean {_num(c['mean'])}, std {_num(c['std'])})"
            encoding += " + missing indicator" if c["indicator"] else ""
            imputed = f"median {_num(c['median'])}"
        else:
            dropped = c["categories_in_train"] - len(c["vocabulary"])
            encoding = f"one-hot, {len(c['vocabulary'])} values + out-of-vocabulary"
            encoding += f" ({dropped} rare training values in it)" if dropped else ""
            imputed = (
                "a category of its own" if "" in c["vocabulary"] else "out-of-vocabulary bucket"
            )
        lines.append(
            f"| {c['name']} | `{c['input']}` | {c['kind']} | {encoding} | "
            f"{c['missing_in_train']} | {imputed} |"
        )
    missing = ", ".join(f"`{v}`" for v in d.table["missing_values"])
    return [*lines, "", f"Missing values: {missing} (any case)."]


def _md_files(card: ModelCard) -> list[str]:
    return _section("Files", *[f"* `{name}`: {what}" for name, what in card.files.items()])


def _md_weights(card: ModelCard) -> str:
    w, seed = card.weights, card.trial.seed
    if w.source == "kept":
        return f"kept by the search ({w.artifact})"
    if w.source == "retrained":
        return f"re-trained at export from the stored params with seed {seed}"
    if w.source == "retrained_full":
        return f"re-trained at export on train+validation for {w.epochs} epochs, seed {seed}"
    raise KeyError(w.source)


def _md_augmentation(card: ModelCard) -> list[str]:
    layers = card.model.training_only_layers
    if not layers:
        return []
    names = ", ".join(f"`{n}`" for n in layers)
    return [
        f"* data augmentation in training ({names}): inactive in the exported model, "
        "which runs in inference mode"
    ]


def _md_training(card: ModelCard) -> list[str]:
    t, w, m = card.trial, card.weights, card.model
    retrain = f"; re-training time: {_num(w.retrain_seconds)} s" if w.retrain_seconds else ""
    return _section(
        "Training",
        f"* weights: {_md_weights(card)}",
        f"* seed: {t.seed}; epochs: {w.epochs}; search training time: "
        f"{_num(t.train_seconds)} s" + retrain,
        f"* parameters: {m.parameters:,} ({m.trainable_parameters:,} trainable)",
        *_md_augmentation(card),
        "",
        "| parameter | value |",
        "| --- | --- |",
        *[f"| {k} | {_num(v)} |" for k, v in t.params.items()],
    )


def _md_data(card: ModelCard) -> list[str]:
    d = card.data
    where = (f" from `{d.path}`" if d.path else "") + (f", subset {d.subset}" if d.subset else "")
    scaling = (
        f"divide by {_num(d.scaling['value'])}"
        if "value" in d.scaling
        else str(d.scaling.get("kind"))
    )
    differs = (
        ""
        if d.fingerprint_of_search in (None, d.fingerprint)
        else f" (**differs** from the search's `{d.fingerprint_of_search}`)"
    )
    return _section(
        "Data",
        f"* data set: {d.name}{where}; split seed {d.split_seed}",
        f"* samples: {d.train} train, {d.validation} validation, {d.test} test",
        f"* scaling: {scaling}",
        "* training data fingerprint (sha256 of the train and validation arrays): "
        f"`{d.fingerprint}`" + differs,
        *_md_table(d),
    )


def _md_architecture(card: ModelCard) -> list[str]:
    return _section("Architecture", "```text", card.model.summary, "```")


def _md_reproduce(card: ModelCard) -> list[str]:
    return _section(
        "Reproduce",
        "```bash",
        "# re-train this model from the stored params and seed, and export it again:",
        card.reproduce.export,
        "# or run the whole search again (same seeds: the same trials in one worker):",
        card.reproduce.search,
        "```",
    )


def _md_versions(card: ModelCard) -> list[str]:
    return _section("Versions", ", ".join(f"{k} {v}" for k, v in card.versions.items()))
