"""Export a trial as files that load with plain Keras, with a model card.

``export_trial`` takes the best trial of a study (or the one named), gets its
trained network (the weights kept by the run, see :mod:`hpsearch.artifacts`, or
a re-training from the stored params and seed), puts the data set's scaling in
front of it as a ``Rescaling`` layer, so that the exported model takes raw
inputs (pixels 0..255 for MNIST), and writes into one folder:

* ``model.keras``: ``keras.models.load_model("model.keras")``, compiled, ready to
  ``predict`` or ``evaluate``;
* ``saved_model/``: a TensorFlow SavedModel with a ``serve`` endpoint;
* ``model.onnx`` with the optional extra (``pip install 'hpsearch[onnx]'``);
* ``model_card.md`` and ``model_card.json``: where the model came from and how
  good it is, including the test-set accuracy measured here. Export is the only
  place the test split is used.

The folder is built beside its final place and renamed into it at the end, so a
failed export leaves nothing behind, and an existing folder is replaced only
with ``force``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import importlib.metadata
import importlib.util
import platform
import re
import shlex
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import yaml

from hpsearch._version import __version__
from hpsearch.atomic import DestinationExists, atomic_dir
from hpsearch.card import (
    FORMAT_VERSION,
    DataInfo,
    InputSpec,
    Measurement,
    ModelCard,
    ModelInfo,
    Objective,
    Reproduce,
    StudyInfo,
    TrialInfo,
    Validation,
    WeightsInfo,
    jsonable,
)
from hpsearch.exceptions import HpsearchError
from hpsearch.study import StudyMeta, TrialRecord

if TYPE_CHECKING:
    import keras
    import optuna

    from hpsearch.config import DataConfig
    from hpsearch.data import Dataset
    from hpsearch.study import StudyFile

__all__ = [
    "DEFAULT_FORMATS",
    "FORMATS",
    "ExportResult",
    "check_onnx",
    "export_trial",
    "parse_formats",
    "raw_test_inputs",
]

FORMATS = ("keras", "savedmodel", "onnx")
DEFAULT_FORMATS = ("keras", "savedmodel")
CARD_JSON = "model_card.json"
CARD_MD = "model_card.md"
STUDY_FILE = "study.yaml"
MODEL_FILE = "model.keras"
SAVED_MODEL_DIR = "saved_model"
ONNX_FILE = "model.onnx"
ONNX_PACKAGES = {"tf2onnx": "1.17", "onnx": None, "onnxruntime": None}


@dataclass
class ExportResult:
    """What :func:`export_trial` wrote.

    Attributes:
        out: the export folder.
        trial: the exported trial's number.
        card: the model card (written as ``model_card.json`` and ``model_card.md``).
        files: the files and folders written, relative to ``out``.
    """

    out: Path
    trial: int
    card: ModelCard
    files: list[str] = field(default_factory=list)


# ------------------------------------------------------------------ arguments
def parse_formats(formats: str | Sequence[str]) -> list[str]:
    """``"keras,savedmodel"`` → ``["keras", "savedmodel"]``, checked against :data:`FORMATS`.

    Raises:
        HpsearchError: an unknown format, or none at all.
    """
    items = formats.split(",") if isinstance(formats, str) else list(formats)
    names: list[str] = []
    for item in items:
        name = item.strip().lower().replace("_", "").replace("-", "")
        name = {"tfsavedmodel": "savedmodel", "tf": "savedmodel"}.get(name, name)
        if not name:
            continue
        if name not in FORMATS:
            raise HpsearchError(
                f"--format: got {item.strip()!r}; allowed: {', '.join(FORMATS)} "
                "(comma-separated, e.g. keras,savedmodel)"
            )
        if name not in names:
            names.append(name)
    if not names:
        raise HpsearchError(f"--format: give at least one of {', '.join(FORMATS)}")
    return names


def check_onnx() -> None:
    """Make sure the ONNX extra is installed (without importing it).

    Raises:
        HpsearchError: naming the missing packages and the extra to install.
    """
    missing = []
    for name, minimum in ONNX_PACKAGES.items():
        if importlib.util.find_spec(name) is None:
            missing.append(name)
            continue
        if minimum is not None:
            try:
                version = importlib.metadata.version(name)
            except importlib.metadata.PackageNotFoundError:
                continue
            if _version_tuple(version) < _version_tuple(minimum):
                missing.append(f"{name}>={minimum} (have {version})")
    if missing:
        raise HpsearchError(
            "ONNX export needs the optional extra: pip install 'hpsearch[onnx]' "
            f"(tf2onnx>=1.17, onnx, onnxruntime); missing: {', '.join(missing)}"
        )


def _version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", text)[:3])


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name) or "study"


def _pick_trial(study: optuna.Study, number: int | None) -> optuna.trial.FrozenTrial:
    from optuna.trial import TrialState

    from hpsearch.results import best_trials

    if number is None:
        best = best_trials(study)
        if not best:
            raise HpsearchError(f"study {study.study_name!r} has no COMPLETE trial to export")
        if len(best) > 1:
            numbers = ", ".join(str(t.number) for t in best)
            raise HpsearchError(
                f"study {study.study_name!r} has {len(best)} Pareto-optimal trials "
                f"({numbers}); choose one with --trial N"
            )
        return best[0]
    trials = study.get_trials(deepcopy=False)
    found = [t for t in trials if t.number == number]
    complete = [str(t.number) for t in trials if t.state == TrialState.COMPLETE]
    if not found:
        raise HpsearchError(
            f"--trial: study {study.study_name!r} has no trial {number} "
            f"(COMPLETE trials: {', '.join(complete) or 'none'})"
        )
    if found[0].state != TrialState.COMPLETE:
        raise HpsearchError(
            f"--trial: trial {number} is {found[0].state.name}; only COMPLETE trials can be "
            f"exported (COMPLETE trials: {', '.join(complete) or 'none'})"
        )
    return found[0]


# ------------------------------------------------------------------ data
def raw_test_inputs(cfg: DataConfig, base: Path, dataset: Dataset) -> np.ndarray:
    """The test split before scaling, shaped as the model's input.

    Rebuilt with the registry's own loader and split, and checked: scaling it
    must give ``dataset.x_test`` bit for bit.
    """
    from hpsearch.data import apply_scaling
    from hpsearch.data._images import streams
    from hpsearch.data._registry import _shape, _split, load_raw

    if streams(dataset.x_test):  # a large image folder: the same files, unscaled
        return cast(np.ndarray, dataset.x_test.raw())
    raw = load_raw(cfg, base)
    if dataset.table is not None:  # a table: raw cells, checked through the fitted encoding
        x = np.asarray(raw.x_train)
        _, _, cells, _ = _split(x, np.asarray(raw.y_train).reshape(-1), cfg.test, cfg.seed, "test")
        if not np.array_equal(dataset.table.encode(cells), dataset.x_test):
            raise RuntimeError("the raw test split does not match the loaded data set (a bug)")
        return cells
    if raw.x_test is None or raw.y_test is None:
        x = np.asarray(raw.x_train)
        y = np.asarray(raw.y_train).reshape(-1)
        _, _, x_test, _ = _split(
            x, y, cfg.test, cfg.seed, "test", stratified=not dataset.regression
        )
    else:
        x_test = np.asarray(raw.x_test)
    x_test = _shape(x_test, tuple(cfg.image_shape) if cfg.image_shape else None)
    if not np.array_equal(apply_scaling(x_test, dataset.scaling), dataset.x_test):
        raise RuntimeError("the raw test split does not match the loaded data set (a bug)")
    return x_test


def _full_dataset(dataset: Dataset) -> Dataset:
    """Train on train+validation (``--full``); validation stays for Keras' logs only."""
    from hpsearch.data._images import streams

    if streams(dataset.x_train) and streams(dataset.x_val):
        joined = cast(np.ndarray, dataset.x_train.join(dataset.x_val))
        y = np.concatenate([dataset.y_train, dataset.y_val])
        return dataclasses.replace(dataset, x_train=joined, y_train=y)
    return dataclasses.replace(
        dataset,
        x_train=np.concatenate([dataset.x_train, dataset.x_val]),
        y_train=np.concatenate([dataset.y_train, dataset.y_val]),
    )


def _scaling_layer(scaling: Mapping[str, Any]) -> keras.layers.Layer | None:
    """The data set's scaling as a Keras layer (built-in, so plain Keras loads it)."""
    import keras

    kind = scaling.get("kind")
    if kind == "divide":
        return keras.layers.Rescaling(1.0 / float(scaling["value"]), name="scaling")
    if kind == "standard":
        # Rescaling rather than Normalization: Normalization's constants become
        # unfed graph inputs in the ONNX export
        std = np.asarray(scaling["std"], dtype="float32")
        mean = np.asarray(scaling["mean"], dtype="float32")
        return keras.layers.Rescaling(1.0 / std, offset=-mean / std, name="scaling")
    return None


def _describe_scaling(scaling: Mapping[str, Any]) -> str:
    kind = scaling.get("kind")
    if kind == "divide":
        return f"inputs are divided by {scaling['value']:g} inside the model (a Rescaling layer)"
    if kind == "standard":
        return (
            "inputs are standardised per feature, (x - mean) / std with the training split's "
            "mean and std, inside the model (a Rescaling layer)"
        )
    return "no scaling: the model takes the data set's values as they are"


def _training_only(model: keras.Model) -> list[str]:
    """Names of the layers that change inputs in training only (random augmentation)."""
    import keras

    kinds = (
        keras.layers.RandomTranslation,
        keras.layers.RandomRotation,
        keras.layers.RandomFlip,
        keras.layers.RandomZoom,
        keras.layers.RandomContrast,
        keras.layers.RandomBrightness,
    )
    return [layer.name for layer in model.layers if isinstance(layer, kinds)]


def _bare(model: keras.Model) -> keras.Model:
    """The same layers (and weights) as a new, uncompiled model: a nested model's own
    optimizer would be saved inside model.keras and make load_model warn."""
    import keras

    return keras.Model(model.inputs, model.outputs, name=model.name)


def _wrap(inner: keras.Model, dataset: Dataset, params: Mapping[str, Any]) -> keras.Model:
    """Raw inputs → scaling layer → the trained network in inference mode (batch
    normalization on its moving statistics, no dropout, no augmentation), compiled for
    ``evaluate``."""
    import keras

    from hpsearch.training import make_optimizer

    inputs: Any
    if dataset.table is not None:  # one named input per column, the encoding as layers
        inputs, x = dataset.table.keras_inputs()
    else:
        inputs = keras.Input(shape=dataset.input_shape, name="inputs")
        layer = _scaling_layer(dataset.scaling)
        x = layer(inputs) if layer is not None else inputs
    # training=False: the network runs in inference mode whatever calls it; without it a
    # SavedModel's serve() applied random augmentation and batch statistics, and tf2onnx
    # kept random ops that onnxruntime refuses
    y = _bare(inner)(x, training=False)
    if dataset.target:  # a standardized target: answer in the target's own units
        y = y[0] if isinstance(y, list | tuple) else y  # _bare keeps outputs as a list
        from hpsearch.models._regression import target_scale_layer

        y = target_scale_layer(dataset.target)(y)
    model = keras.Model(inputs, y, name=f"{inner.name}_export")
    try:
        optimizer: Any = make_optimizer(params)
    except (KeyError, ValueError, TypeError):  # a user builder's own parameters
        optimizer = "adam"
    if dataset.regression:
        from hpsearch.models._regression import plain_regression_metrics, regression_loss

        loss = regression_loss(str(params.get("loss", "mse")))
        model.compile(optimizer=optimizer, loss=loss, metrics=plain_regression_metrics())
    else:
        model.compile(
            optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"]
        )
    return model


def _measure_regression(
    model: keras.Model,
    x: Any,
    y: np.ndarray,
    loss_name: str,
    target: Mapping[str, float] | None = None,
) -> tuple[Measurement, np.ndarray]:
    """MAE, RMSE, R² and the trial's loss of ``model`` on ``(x, y)``, in the target's
    units (``y`` as the data set holds it; ``target``: undo a standardization of the
    model's answers and of ``y``, for the network without its export layers)."""
    import keras

    from hpsearch.models._regression import regression_loss

    pred = _predict(model, x)
    values = pred.reshape(len(pred), -1)[:, 0].astype("float64")
    truth = np.asarray(y, dtype="float64").reshape(-1)
    if target:
        values = values * target["std"] + target["mean"]
    err = values - truth
    total = float(np.sum((truth - truth.mean()) ** 2))
    loss = keras.losses.get(regression_loss(loss_name))
    measured = Measurement(
        accuracy=None,
        correct=None,
        samples=len(truth),
        loss=float(np.mean(np.asarray(loss(truth[:, None], values[:, None])))),
        mae=float(np.mean(np.abs(err))),
        rmse=float(np.sqrt(np.mean(err**2))),
        r2=1.0 - float(np.sum(err**2)) / total if total > 0 else None,
    )
    return measured, pred


def _measure(model: keras.Model, x: Any, y: np.ndarray) -> tuple[Measurement, np.ndarray]:
    """Accuracy, loss and the predicted probabilities of ``model`` on ``(x, y)``.

    Accuracy is the exact share of correct predictions (Keras reports it in float32);
    the loss is Keras' own ``evaluate`` value, which uses the softmax's logits as during
    training (a user-compiled model whose loss does not take these labels falls back to
    the clipped cross-entropy of the probabilities).
    """
    import keras

    from hpsearch.data._images import streams

    if not getattr(model, "compiled", False):
        model.compile(loss="sparse_categorical_crossentropy")
    probs = _predict(model, x)
    correct = int(np.sum(probs.argmax(axis=1) == y))
    try:
        if streams(x):  # a large image folder, decoded batch by batch
            loss = float(model.evaluate(x.tf_dataset(y), verbose=0, return_dict=True)["loss"])
        else:
            loss = float(model.evaluate(x, y, verbose=0, return_dict=True)["loss"])
    except (ValueError, TypeError, KeyError):
        loss = float(keras.losses.SparseCategoricalCrossentropy()(y, probs))
    measured = Measurement(accuracy=correct / len(y), correct=correct, samples=len(y), loss=loss)
    return measured, probs


def _model_inputs(dataset: Dataset, x: np.ndarray) -> Any:
    """What the exported model takes: ``x`` itself, or a table's named columns."""
    return dataset.table.inputs(x) if dataset.table is not None else x


def _predict(model: keras.Model, x: Any) -> np.ndarray:
    from hpsearch.data._images import streams

    if streams(x):
        return np.asarray(model.predict(x.tf_dataset(), verbose=0))
    return np.asarray(model.predict(x, batch_size=256, verbose=0))


# ------------------------------------------------------------------ export
def export_trial(
    study: str | Path,
    *,
    storage: str | None = None,
    trial: int | None = None,
    out: str | Path | None = None,
    formats: str | Sequence[str] = DEFAULT_FORMATS,
    full: bool = False,
    retrain: bool = False,
    force: bool = False,
    on_message: Callable[[str], None] | None = None,
    data: Any = None,
) -> ExportResult:
    """Export the best trial of a study (or trial ``trial``) with its model card.

    Args:
        study: a study file or a study name.
        storage: a storage URL overriding the file's (or the default).
        trial: the trial number; default: the best trial (a multi-objective study
            with several Pareto-optimal trials needs one).
        out: the export folder; default ``exports/<study>-trial<N>``.
        formats: any of ``keras``, ``savedmodel``, ``onnx``.
        full: re-train on train+validation for the trial's number of epochs.
        retrain: re-train from the stored params and seed even if weights were kept.
        force: replace an existing ``out``.
        on_message: called with progress notes (re-training, warnings).
        data: the arrays a study run with ``hpsearch.run(..., data=...)`` was given (any
            form that takes); such a study cannot be exported without them.

    Raises:
        HpsearchError: no such study or trial, ``out`` exists, the ONNX extra is
            missing, or the data set cannot be loaded.

    Example:
        >>> result = export_trial("studies/quickstart.yaml", out="exports/qs")
        >>> result.card.test.accuracy
        0.9694
    """
    fmts = parse_formats(formats)
    if "onnx" in fmts:
        check_onnx()
    job = _prepare(
        study,
        storage,
        trial,
        out,
        fmts,
        full=full,
        retrain=retrain,
        force=force,
        note=on_message or (lambda _msg: None),
    )
    return _export_job(job) if data is None else _export_with_arrays(job, data)


def _export_with_arrays(job: _Job, data: Any) -> ExportResult:
    """Export a study run on arrays from the API, with ``data`` registered meanwhile."""
    from hpsearch.data._arrays import registered
    from hpsearch.study import with_arrays

    limit = job.study_file.config.data.memory_limit_mb
    with registered(data, limit) as key:
        job = dataclasses.replace(job, study_file=with_arrays(job.study_file, key))
        return _export_job(job)


def _export_job(job: _Job) -> ExportResult:
    if job.study_file.config.data.name == "arrays":  # refused before TensorFlow loads
        from hpsearch.data._arrays import registered_arrays

        try:
            registered_arrays(job.study_file.config.data.arrays)
        except HpsearchError:
            name = job.study.study_name
            raise HpsearchError(
                f"study {name!r} ran on arrays passed from Python (hpsearch.run(..., "
                "data=...)), not on a file: export it from Python with the same arrays, "
                f"hpsearch.export_trial({name!r}, storage=..., data=(x, y))"
            ) from None
    built = _build(job)
    card = _card(job, built)
    files = _write(job, built, card)
    return ExportResult(job.out_dir, job.trial.number, card, files)


@dataclass
class _Job:
    """One export: the trial, where it goes and how."""

    study: optuna.Study
    trial: optuna.trial.FrozenTrial
    study_file: StudyFile
    storage_url: str
    out_dir: Path
    fmts: list[str]
    full: bool
    retrain: bool
    force: bool
    note: Callable[[str], None]


def _prepare(
    study: str | Path,
    storage: str | None,
    number: int | None,
    out: str | Path | None,
    fmts: list[str],
    *,
    full: bool,
    retrain: bool,
    force: bool,
    note: Callable[[str], None],
) -> _Job:
    """Open the study, pick the trial and check the output folder."""
    from hpsearch.results import open_study, study_file_of, study_target

    opened = open_study(study, storage)
    _, storage_url = study_target(study, storage)
    frozen = _pick_trial(opened, number)
    out_dir = _out_dir(out, opened.study_name, frozen.number, force=force)
    return _Job(
        study=opened,
        trial=frozen,
        study_file=study_file_of(opened),
        storage_url=storage_url,
        out_dir=out_dir,
        fmts=fmts,
        full=full,
        retrain=retrain,
        force=force,
        note=note,
    )


def _out_dir(out: str | Path | None, study_name: str, number: int, *, force: bool) -> Path:
    """``out``, or ``exports/<study>-trial<N>``; refused if it exists (without ``force``)."""
    out_dir = (
        Path(out)
        if out is not None
        else Path("exports") / f"{_safe_name(study_name)}-trial{number}"
    )
    if out_dir.exists() and not force:
        raise HpsearchError(f"{out_dir} already exists; use --force to replace it")
    if out_dir.exists() and not out_dir.is_dir():
        raise HpsearchError(f"{out_dir} exists and is not a folder")
    return out_dir


@dataclass
class _Network:
    """The trained network and where its weights come from."""

    inner: keras.Model
    artifact: Path | None
    epochs: int
    retrain_seconds: float | None


@dataclass
class _Built:
    """The network to export and what was measured on it."""

    model: keras.Model
    inner: keras.Model
    dataset: Dataset
    params: dict[str, Any]
    source: str
    artifact: Path | None
    seed: int
    epochs: int
    retrain_seconds: float | None
    validation: Measurement
    test: Measurement
    test_probs: np.ndarray
    x_test: np.ndarray


def _build(job: _Job) -> _Built:
    """Get the trial's network (kept or re-trained), wrap it and measure it."""
    from hpsearch.study import add_search_paths
    from hpsearch.training import configure_tensorflow

    configure_tensorflow()
    study_file, trial = job.study_file, job.trial
    add_search_paths(study_file.base_dir)
    params = study_file.space.params_from_optuna(trial.params)
    seed = study_file.trial_seed(trial)
    dataset = _dataset(job)
    if dataset.table is not None and "onnx" in job.fmts:  # refused before any re-training
        raise HpsearchError(
            "ONNX export does not take a table with string columns (its string lookups "
            "have no ONNX form); export with --format keras,savedmodel"
        )
    network = _network(job, params, dataset, seed)
    source = (
        "kept" if network.artifact is not None else ("retrained_full" if job.full else "retrained")
    )
    model = _wrap(network.inner, dataset, params)
    x_test = raw_test_inputs(study_file.config.data, study_file.base_dir, dataset)
    if dataset.regression:
        validation, test, probs = _measure_values(
            model, network.inner, dataset, params, _model_inputs(dataset, x_test)
        )
    else:
        validation, _ = _measure(_bare(network.inner), dataset.x_val, dataset.y_val)
        # what a user gets from model.keras after load_model
        test, probs = _measure(model, _model_inputs(dataset, x_test), dataset.y_test)
    return _Built(
        model=model,
        inner=network.inner,
        dataset=dataset,
        params=params,
        source=source,
        artifact=network.artifact,
        seed=seed,
        epochs=network.epochs,
        retrain_seconds=network.retrain_seconds,
        validation=validation,
        test=test,
        test_probs=probs,
        x_test=x_test,
    )


def _measure_values(
    model: keras.Model,
    inner: keras.Model,
    dataset: Dataset,
    params: Mapping[str, Any],
    x_test: Any,
) -> tuple[Measurement, Measurement, np.ndarray]:
    """A regression's validation (the trained network) and test (the exported model, as
    a user loads it) measurements, both in the target's units, and the test predictions."""
    target = dataset.target
    loss = str(params.get("loss", "mse"))

    def original(y: np.ndarray) -> np.ndarray:
        return y * target["std"] + target["mean"] if target else y

    validation, _ = _measure_regression(
        _bare(inner), dataset.x_val, original(dataset.y_val), loss, target
    )
    test, values = _measure_regression(model, x_test, original(dataset.y_test), loss)
    return validation, test, values


def _dataset(job: _Job) -> Dataset:
    """The study's data set, with a warning if it differs from the search's."""
    from hpsearch.data import load_dataset

    dataset = load_dataset(job.study_file.config.data, job.study_file.base_dir, job.study_file.task)
    stored = StudyMeta.of(job.study).fingerprint
    if stored and stored != dataset.fingerprint:
        job.note(
            f"warning: the training data differ from the search's (fingerprint "
            f"{dataset.fingerprint}, search {stored}): has the data file changed?"
        )
    return dataset


def _network(job: _Job, params: dict[str, Any], dataset: Dataset, seed: int) -> _Network:
    """The kept weights if there are any that load (and no re-training was asked for),
    else the trial re-trained from its params and seed."""
    from hpsearch.artifacts import find_artifact

    trial = job.trial
    artifact = (
        None
        if (job.retrain or job.full)
        else find_artifact(job.study, trial, job.storage_url, job.study_file.config.export.dir)
    )
    inner = _load_kept(artifact, trial.number, job.note) if artifact is not None else None
    if inner is not None:
        epochs = int(TrialRecord.from_trial(trial).epochs_run or params.get("epochs", 0))
        return _Network(inner, artifact, epochs, None)
    inner, epochs, seconds = _retrain(
        trial, job.study_file, params, dataset, seed, full=job.full, note=job.note
    )
    return _Network(inner, None, epochs, seconds)


def _load_kept(artifact: Path, number: int, note: Callable[[str], None]) -> keras.Model | None:
    """The network kept in ``artifact``, or None (with a note) if it does not load."""
    import keras

    from hpsearch.artifacts import MODEL_FILE as ARTIFACT_MODEL

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model: keras.Model = keras.models.load_model(artifact / ARTIFACT_MODEL, compile=False)
            return model
    except Exception as exc:
        note(f"the kept weights of trial {number} do not load ({exc}); re-training")
        return None


def _best_epoch(
    trial: optuna.trial.FrozenTrial, params: Mapping[str, Any], monitor: str, mode: str
) -> int:
    """The epoch whose weights the trial ended with (early stopping restores the best)."""
    record = TrialRecord.from_trial(trial)
    history = (record.history or {}).get(monitor) or []
    if params.get("patience") and history:
        pick = max if mode == "max" else min
        return history.index(pick(history)) + 1
    return int(record.epochs_run or params["epochs"])


def _retrain(
    trial: optuna.trial.FrozenTrial,
    study_file: StudyFile,
    params: dict[str, Any],
    dataset: Dataset,
    seed: int,
    *,
    full: bool,
    note: Callable[[str], None],
) -> tuple[keras.Model, int, float]:
    from hpsearch.exceptions import TrialFailed
    from hpsearch.training import train

    objectives = study_file.objectives
    monitor = objectives[0].metric
    mode = "max" if objectives[0].direction == "maximize" else "min"
    if monitor.startswith("cv_") and dataset.regression:  # a scikit-learn search's score
        monitor, mode = "val_rmse", "min"
    train_params = dict(params)
    data = dataset
    epochs = None
    if full:
        # no validation data left to stop on: train as long as the trial's kept epoch
        # (a learning-rate schedule still spans the trial's `epochs`, as in the trial)
        epochs = _best_epoch(trial, params, monitor, mode)
        train_params["patience"] = 0
        train_params["chance_patience"] = 0
        data = _full_dataset(dataset)
        note(
            f"re-training trial {trial.number} on train+validation "
            f"({len(data.x_train)} samples, {epochs} epochs, seed {seed})"
        )
    else:
        note(
            f"re-training trial {trial.number} from its params "
            f"({len(data.x_train)} samples, up to {params.get('epochs')} epochs, seed {seed})"
        )
    try:
        result = train(
            train_params,
            data,
            family=study_file.space.family_of(train_params),
            api=study_file.config.model.api,
            seed=seed,
            extra_metrics=[o.keras_metric for o in objectives if o.keras_metric],
            monitor=monitor,
            monitor_mode=mode,
            epochs=epochs,
        )
    except TrialFailed as exc:
        raise HpsearchError(f"re-training trial {trial.number} failed: {exc}") from None
    return result.model, result.epochs_run, result.train_seconds


# ------------------------------------------------------------------ card
def _versions(fmts: Sequence[str]) -> dict[str, str]:
    """Versions of what trained and wrote the model (modules: tensorflow-cpu is tensorflow)."""
    import importlib

    names = ["tensorflow", "keras", "optuna", "numpy", "sklearn"]
    if "onnx" in fmts:
        names += ["tf2onnx", "onnx", "onnxruntime"]
    out = {"python": platform.python_version(), "hpsearch": __version__}
    for name in names:
        try:
            out[name] = str(importlib.import_module(name).__version__)
        except (ImportError, AttributeError):
            continue
    return out


def _summary(model: keras.Model) -> str:
    lines: list[str] = []
    model.summary(expand_nested=True, print_fn=lambda text, line_break=None: lines.append(text))
    return "\n".join(lines).strip()


def _card(job: _Job, built: _Built) -> ModelCard:
    """The model card (its ``files`` and ``checks`` are filled in as files are written)."""
    return ModelCard(
        format_version=FORMAT_VERSION,
        created=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        study=_study_info(job),
        trial=_trial_info(job, built),
        weights=_weights_info(job, built),
        model=_model_info(built),
        data=_data_info(job, built),
        validation=Validation(search=_val_metrics(job.trial), export=built.validation),
        test=built.test,
        files={},
        checks={},
        versions=_versions(job.fmts),
        reproduce=_reproduce(job),
        config=jsonable(_study_config(job.study, job.study_file)),
    )


def _search_meta(study: optuna.Study) -> dict[str, Any]:
    """What hpsearch recorded on the study (engine, source, data fingerprint)."""
    return StudyMeta.of(study).to_dict() if StudyMeta.of(study).recorded else {}


def _study_info(job: _Job) -> StudyInfo:
    meta = _search_meta(job.study)
    return StudyInfo(
        name=job.study.study_name,
        storage=job.storage_url,
        engine=meta.get("engine", "optuna"),
        source=meta.get("source"),
        objectives=[Objective(o.metric, o.direction) for o in job.study_file.objectives],
        family=job.study_file.space.family_of(job.trial.params),
    )


def _trial_metrics(trial: optuna.trial.FrozenTrial) -> dict[str, Any]:
    """The trial's numeric user attributes, but for bookkeeping ones."""
    return TrialRecord.from_trial(trial).numbers()


def _val_metrics(trial: optuna.trial.FrozenTrial) -> dict[str, Any]:
    return {k: v for k, v in _trial_metrics(trial).items() if k.startswith("val_")}


def _trial_info(job: _Job, built: _Built) -> TrialInfo:
    trial = job.trial
    record = TrialRecord.from_trial(trial)
    objectives = [o.metric for o in job.study_file.objectives]
    return TrialInfo(
        number=trial.number,
        values=dict(zip(objectives, trial.values or [], strict=False)),
        params=jsonable(built.params),
        optuna_params=jsonable(dict(trial.params)),
        seed=built.seed,
        metrics=record.numbers(),
        epochs_run=record.epochs_run,
        train_seconds=record.train_seconds,
        started=trial.datetime_start.isoformat() if trial.datetime_start else None,
    )


def _weights_info(job: _Job, built: _Built) -> WeightsInfo:
    seconds = built.retrain_seconds
    return WeightsInfo(
        source=built.source,
        artifact=str(built.artifact) if built.artifact else None,
        epochs=built.epochs,
        retrain_seconds=round(seconds, 3) if seconds is not None else None,
        trained_on="train+validation" if job.full else "train",
    )


def _model_info(built: _Built) -> ModelInfo:
    model, ds = built.model, built.dataset
    return ModelInfo(
        name=model.name,
        parameters=int(model.count_params()),
        trainable_parameters=int(sum(int(np.prod(w.shape)) for w in model.trainable_weights)),
        input=(
            InputSpec(name="inputs", shape=jsonable(list(ds.input_shape)), dtype="float32")
            if ds.table is None
            else InputSpec(name="columns", shape=[len(ds.table.columns)], dtype="string|float32")
        ),
        output=(
            "one value in the target's units"
            if ds.regression
            else f"softmax probabilities over the {ds.num_classes} classes"
        ),
        training_only_layers=_training_only(built.inner),
        summary=_summary(model),
    )


def _data_info(job: _Job, built: _Built) -> DataInfo:
    data, ds = job.study_file.config.data, built.dataset
    return DataInfo(
        name=data.name,
        path=data.path,
        subset=data.subset,
        label_column=data.label_column if data.name == "csv" else None,
        split_seed=data.seed,
        train=int(len(ds.x_train)) + (int(len(ds.x_val)) if job.full else 0),
        validation=int(len(ds.x_val)),
        test=int(len(ds.x_test)),
        input_shape=jsonable(list(ds.input_shape)),
        raw_dtype=str(built.x_test.dtype) if ds.table is None else "str (CSV cells)",
        class_names=jsonable(ds.class_names),
        scaling=jsonable(dict(ds.scaling)),
        preprocessing=(_describe_scaling(ds.scaling) if ds.table is None else ds.table.describe()),
        fingerprint=ds.fingerprint,
        fingerprint_of_search=_search_meta(job.study).get("data", {}).get("fingerprint"),
        table=ds.table.to_dict() if ds.table is not None else None,
        task=ds.task,
        target_scaling=dict(ds.target) if ds.target else None,
    )


def _reproduce(job: _Job) -> Reproduce:
    """The commands that re-train this trial and export it again, or run the search again."""
    export = [
        "hpsearch",
        "export",
        job.study.study_name,
        "--storage",
        job.storage_url,
        "--trial",
        str(job.trial.number),
        "--retrain",
        "--format",
        ",".join(job.fmts),
        "--out",
        f"{job.out_dir}-retrained",
    ]
    if job.full:
        export.append("--full")
    search = ["hpsearch", "run", STUDY_FILE, "--storage", "sqlite:///reproduce.db"]
    return Reproduce(export=shlex.join(export), search=shlex.join(search))


def _study_config(study: optuna.Study, study_file: StudyFile) -> dict[str, Any]:
    """The configuration the search ran with (``study.yaml``): non-default values only,
    the storage left out, a data file made absolute so the file works from anywhere."""
    config: dict[str, Any] = study_file.config.model_dump(mode="json", exclude_defaults=True)
    config["name"] = study.study_name
    config.pop("storage", None)
    path = study_file.config.data.path
    if path:
        from hpsearch.data._registry import _resolve

        config.setdefault("data", {})["path"] = str(
            _resolve(study_file.config.data, study_file.base_dir).resolve()
        )
    return config


# ------------------------------------------------------------------ files
def _write(job: _Job, built: _Built, card: ModelCard) -> list[str]:
    """Write everything into a temporary sibling folder, then rename it to ``out_dir``."""
    try:
        with atomic_dir(job.out_dir, replace=job.force) as tmp:
            files = _write_formats(tmp, built, card, job.fmts)
            return files + _write_card(tmp, card)
    except DestinationExists:  # appeared while we worked
        raise HpsearchError(f"{job.out_dir} already exists; use --force to replace it") from None


def _write_card(tmp: Path, card: ModelCard) -> list[str]:
    """``model_card.md``, ``model_card.json`` and the ``study.yaml`` searched."""
    card.files[STUDY_FILE] = "the study configuration searched (hpsearch run study.yaml)"
    (tmp / CARD_JSON).write_text(card.to_json(), encoding="utf-8")
    (tmp / CARD_MD).write_text(card.to_markdown(), encoding="utf-8")
    (tmp / STUDY_FILE).write_text(
        "# The study configuration this model was searched with (from the storage)\n"
        + yaml.safe_dump(card.config, sort_keys=False),
        encoding="utf-8",
    )
    return [CARD_MD, CARD_JSON, STUDY_FILE]


def _write_formats(tmp: Path, built: _Built, card: ModelCard, fmts: Sequence[str]) -> list[str]:
    """The model in each format asked for; SavedModel and ONNX are checked against Keras."""
    sample = (
        _model_inputs(built.dataset, built.x_test[:256])
        if built.dataset.table is not None
        else built.x_test[:256].astype("float32")
    )
    expected = built.test_probs[:256]
    files: list[str] = []
    if "keras" in fmts:
        files.append(_write_keras(tmp, built.model, card))
    if "savedmodel" in fmts:
        files.append(_write_savedmodel(tmp, built.model, card, sample, expected))
    if "onnx" in fmts:
        files.append(_write_onnx(tmp, built.model, card, sample, expected))
    return files


def _write_keras(tmp: Path, model: keras.Model, card: ModelCard) -> str:
    # a built optimizer saves all its (zero) variables, so load_model does not warn
    # "Skipping variable loading for optimizer"
    with contextlib.suppress(Exception):
        model.optimizer.build(model.trainable_variables)
    model.save(tmp / MODEL_FILE)
    card.files[MODEL_FILE] = "Keras 3 model: keras.models.load_model, compiled"
    return MODEL_FILE


def _write_savedmodel(
    tmp: Path, model: keras.Model, card: ModelCard, sample: Any, expected: np.ndarray
) -> str:
    import tensorflow as tf

    model.export(tmp / SAVED_MODEL_DIR, format="tf_saved_model", verbose=False)
    # keep a reference: a temporary loaded object frees the variables serve() needs
    loaded = tf.saved_model.load(str(tmp / SAVED_MODEL_DIR))
    served = loaded.serve(sample).numpy()
    card.checks["savedmodel_max_abs_diff"] = float(np.max(np.abs(served - expected)))
    card.files[SAVED_MODEL_DIR + "/"] = (
        "TensorFlow SavedModel: tf.saved_model.load(dir).serve(x), or TF Serving"
    )
    return SAVED_MODEL_DIR + "/"


def _write_onnx(
    tmp: Path, model: keras.Model, card: ModelCard, sample: np.ndarray, expected: np.ndarray
) -> str:
    session = _onnx_session(tmp, model)
    name = session.get_inputs()[0].name
    got = session.run(None, {name: sample})[0]
    card.checks["onnx_max_abs_diff"] = float(np.max(np.abs(got - expected)))
    card.files[ONNX_FILE] = f"ONNX model for onnxruntime (input {name!r})"
    return ONNX_FILE


def _onnx_session(tmp: Path, model: keras.Model) -> Any:
    """Export ``model.onnx`` and open it in onnxruntime (a one-line error if either fails)."""
    import onnxruntime

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.export(tmp / ONNX_FILE, format="onnx", verbose=False)
        return onnxruntime.InferenceSession(
            str(tmp / ONNX_FILE), providers=["CPUExecutionProvider"]
        )
    except Exception as exc:  # a layer tf2onnx or onnxruntime does not support
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        raise HpsearchError(
            f"ONNX export failed ({type(exc).__name__}: {reason}); nothing was written. "
            "Export the other formats with --format keras,savedmodel"
        ) from None
