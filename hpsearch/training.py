"""Train one Keras model from a parameter dict (the worker side; the engine decides
which parameters to try).

The engine passes ``on_epoch``, called after every epoch with the epoch number
(1-based) and Keras' logs; it reports to Optuna and may raise ``TrialPruned``.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hpsearch.exceptions import TrialFailed

if TYPE_CHECKING:
    import keras

    from hpsearch.data import Dataset

__all__ = [
    "TrainResult",
    "configure_tensorflow",
    "enable_memory_growth",
    "make_optimizer",
    "steps_per_epoch",
    "steps_per_execution",
    "train",
]

EpochHook = Callable[[int, Mapping[str, float]], None]
_CONFIGURED = False

# Batches per call of the compiled train step. Keras' default of 1 returns to
# Python after every batch; 32 does the same arithmetic in the same order (identical
# losses and accuracies) with 32 times fewer round trips, but tracing its loop costs
# about 0.5 s more per model. Measured on 2 CPU cores, MNIST (54,000 images): MLP 2x512
# batch 64, 7.7 -> 4.6 s per epoch; batch 128, 4.6 -> 3.5 s; tutorial B's CNN batch 32,
# 21 -> 19 s; on 450 digits images (8 batches) a 2-epoch fit took 1.1 s -> 1.4-1.8 s.
# So epochs of at least MULTI_STEP_MIN batches run 32 per call, shorter ones 1.
STEPS_PER_EXECUTION = 32
MULTI_STEP_MIN = 200


def steps_per_execution(n_samples: int, batch_size: int) -> int:
    """Batches per compiled call for an epoch of ``n_samples`` in batches of ``batch_size``."""
    steps = steps_per_epoch(n_samples, batch_size)
    return STEPS_PER_EXECUTION if steps >= MULTI_STEP_MIN else 1


def configure_tensorflow(threads: int | None = None) -> None:
    """Quiet TensorFlow's logs and set its thread pools, once per process.

    Must run before TensorFlow executes any op (TensorFlow refuses later).
    """
    global _CONFIGURED
    if _CONFIGURED:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    with _quiet_stderr():
        # TensorFlow 2.21 prints absl and oneDNN notices to fd 2 while importing,
        # whatever TF_CPP_MIN_LOG_LEVEL says; they would drown the progress lines
        import keras  # noqa: F401
        import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
    enable_memory_growth(tf.config)
    if threads:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(1)
        except RuntimeError:  # TensorFlow already started in this process
            pass
    _CONFIGURED = True


def enable_memory_growth(config: Any) -> list[Any]:
    """Turn on memory growth for every GPU this process sees (``config``: ``tf.config``).

    Without it TensorFlow reserves nearly all of a GPU's memory at start-up, so a second
    worker sharing that GPU (``workers.gpus``) would fail. Must run before TensorFlow
    uses a GPU; on a machine without GPUs it does nothing.

    Returns:
        The GPUs whose memory growth is on.
    """
    done = []
    for gpu in config.list_physical_devices("GPU"):
        try:
            config.experimental.set_memory_growth(gpu, True)
        except (RuntimeError, ValueError):  # the GPU is in use already: too late to change
            continue
        done.append(gpu)
    return done


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Silence C-level writes to stderr (file descriptor 2) for the duration."""
    try:
        saved = os.dup(2)
    except OSError:  # no stderr at all
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


@dataclass
class TrainResult:
    """What one training run produced."""

    model: keras.Model
    history: dict[str, list[float]]
    metrics: dict[str, float]
    param_count: int
    epochs_run: int
    train_seconds: float
    latency_ms: float | None = None
    stopped_at_chance: int | None = None  # the epoch a chance-level stop ended training


def make_optimizer(
    params: Mapping[str, Any], steps_per_epoch: int | None = None
) -> keras.optimizers.Optimizer:
    """The Keras optimizer named by ``params['optimizer']`` with its learning rate, and
    ``momentum`` (sgd; 0 when absent) or ``beta_1`` (adam, adamax, nadam; Keras' own
    0.9 when absent: an inactive parameter is not in ``params``).

    With ``lr_schedule: cosine`` and ``steps_per_epoch`` known, the rate follows
    Keras' ``CosineDecay`` from ``learning_rate`` down to 0 over ``epochs`` epochs.
    """
    import inspect

    import keras

    name = params["optimizer"]
    cls = {
        "sgd": keras.optimizers.SGD,
        "rmsprop": keras.optimizers.RMSprop,
        "adam": keras.optimizers.Adam,
        "adamax": keras.optimizers.Adamax,
        "nadam": keras.optimizers.Nadam,
    }[name]
    kwargs: dict[str, Any] = {}
    if name == "sgd":
        kwargs["momentum"] = float(params.get("momentum", 0.0))
    if name in ("adam", "adamax", "nadam") and "beta_1" in params:
        kwargs["beta_1"] = float(params["beta_1"])
    if params["learning_rate"] == "default":  # the optimizer's own (0.01 for SGD, else 0.001)
        rate: Any = inspect.signature(cls).parameters["learning_rate"].default
    else:
        rate = float(params["learning_rate"])
    if params.get("lr_schedule", "constant") == "cosine" and steps_per_epoch:
        rate = keras.optimizers.schedules.CosineDecay(
            rate, decay_steps=max(1, int(params["epochs"]) * int(steps_per_epoch))
        )
    return cls(learning_rate=rate, **kwargs)


def steps_per_epoch(n_samples: int, batch_size: int) -> int:
    """Batches in an epoch of ``n_samples`` in batches of ``batch_size`` (the last may be short)."""
    return -(-int(n_samples) // max(1, int(batch_size)))


def resolve_metric(name: str) -> Any:
    """A Keras metric by identifier, or a ``module:function`` metric."""
    if ":" in name:
        from hpsearch.models._builders import load_callable

        return load_callable(name, path="objective.metric")
    import keras

    return keras.metrics.get(name)


class _EpochCallback:
    """Adapts ``on_epoch`` to Keras (built lazily so this module imports without Keras)."""

    @staticmethod
    def make(hook: EpochHook) -> keras.callbacks.Callback:
        import keras

        class EpochCallback(keras.callbacks.Callback):
            def on_epoch_end(self, epoch: int, logs: Mapping[str, float] | None = None) -> None:
                hook(epoch + 1, dict(logs or {}))

        return EpochCallback()

    @staticmethod
    def stop_on_nan() -> keras.callbacks.Callback:
        """Keras' ``TerminateOnNaN`` without its "Batch N: Invalid loss" line on stdout:
        the trial's own progress line says the loss became NaN."""
        import keras
        import numpy as np

        class StopOnNaN(keras.callbacks.Callback):
            def on_batch_end(self, batch: int, logs: Mapping[str, float] | None = None) -> None:
                loss = (logs or {}).get("loss")
                if loss is not None and not np.isfinite(loss):
                    self.model.stop_training = True

        return StopOnNaN()

    @staticmethod
    def with_model(hook: Callable[[keras.Model, int], None]) -> keras.callbacks.Callback:
        import keras

        class ModelCallback(keras.callbacks.Callback):
            def on_epoch_end(self, epoch: int, logs: Mapping[str, float] | None = None) -> None:
                hook(self.model, epoch + 1)

        return ModelCallback()


def train(
    params: Mapping[str, Any],
    dataset: Dataset,
    *,
    family: str,
    seed: int,
    api: str = "auto",
    extra_metrics: Sequence[str] = (),
    monitor: str = "val_accuracy",
    monitor_mode: str = "max",
    measure_latency: bool = False,
    on_epoch: EpochHook | None = None,
    initial_model: keras.Model | None = None,
    initial_epoch: int = 0,
    on_epoch_model: Callable[[keras.Model, int], None] | None = None,
    epochs: int | None = None,
) -> TrainResult:
    """Build, compile and fit one model on ``dataset``.

    ``initial_model`` (compiled, from a checkpoint) continues training after
    ``initial_epoch`` finished epochs; ``on_epoch_model(model, epoch)`` runs after
    ``on_epoch`` at every epoch's end (checkpoints). ``epochs`` stops training
    before ``params['epochs']`` (a re-run of a trial's kept epochs); a learning-rate
    schedule still spans ``params['epochs']``, so those epochs train as in the trial.
    The history and metrics returned cover the epochs trained by this call.

    Raises:
        TrialFailed: the model could not be built, ran out of memory, or its
            loss became NaN.
        optuna.TrialPruned: raised by ``on_epoch``.
    """
    configure_tensorflow()
    import keras

    keras.utils.set_random_seed(seed + initial_epoch)
    model = _built_model(params, dataset, family, api) if initial_model is None else initial_model
    if not getattr(model, "compiled", False):  # a builder's own compiled model stays as it is
        compile_model(model, params, len(dataset.x_train), extra_metrics, **_task_of(dataset))
    at_chance = _chance_stop(params, dataset, monitor, monitor_mode)
    callbacks = _callbacks(params, monitor, monitor_mode, at_chance, on_epoch, on_epoch_model)
    start = time.perf_counter()
    history = _fit(model, dataset, params, callbacks, initial_epoch, epochs)
    seconds = time.perf_counter() - start
    for epoch, loss in enumerate(history.get("loss", []), start=initial_epoch + 1):
        if not math.isfinite(loss):
            raise TrialFailed(f"loss became {loss} at epoch {epoch}")
    best = _reported_epoch(history, monitor, monitor_mode, int(params.get("patience", 0) or 0))
    metrics = {k: v[best] for k, v in history.items() if v}
    epochs_run = initial_epoch + len(history.get("loss", []))
    result = TrainResult(model, history, metrics, int(model.count_params()), epochs_run, seconds)
    stopped = getattr(at_chance, "stopped_epoch", None)
    if stopped:
        result.stopped_at_chance = int(stopped)
    if measure_latency:
        result.latency_ms = measure_latency_ms(model, dataset.x_val)
    return result


def compile_model(
    model: keras.Model,
    params: Mapping[str, Any],
    n_train: int,
    extra_metrics: Sequence[str] = (),
    *,
    task: str = "classification",
    target: Mapping[str, float] | None = None,
) -> None:
    """Compile a trial's model as every engine does: the trial's optimizer (and learning
    rate schedule over ``n_train`` samples a epoch), sparse categorical cross-entropy,
    accuracy and the objectives' extra Keras metrics. A regression trains with the
    trial's ``loss`` (mse, mae or huber) and reports ``mae`` and ``rmse`` in the target's
    units (``target``: the standardization of a standardized target)."""
    batch_size = int(params.get("batch_size", 32))
    extra = [resolve_metric(m) for m in extra_metrics]
    if task == "regression":
        from hpsearch.models._regression import regression_loss, regression_metrics

        loss: Any = regression_loss(str(params.get("loss", "mse")))
        metrics: list[Any] = [*regression_metrics(target), *extra]
    else:
        loss, metrics = "sparse_categorical_crossentropy", ["accuracy", *extra]
    model.compile(
        optimizer=make_optimizer(params, steps_per_epoch(n_train, batch_size)),
        loss=loss,
        metrics=metrics,
        steps_per_execution=steps_per_execution(n_train, batch_size),
    )


def _task_of(dataset: Dataset) -> dict[str, Any]:
    """``compile_model``'s task arguments for ``dataset``."""
    return {"task": dataset.task, "target": dataset.target}


def _built_model(
    params: Mapping[str, Any], dataset: Dataset, family: str, api: str = "auto"
) -> keras.Model:
    from hpsearch.models import build_model

    try:
        return build_model(family, params, dataset.input_shape, dataset.num_classes, api=api)
    except (ValueError, TypeError) as exc:
        raise TrialFailed(f"model could not be built: {exc}") from exc


def _callbacks(
    params: Mapping[str, Any],
    monitor: str,
    monitor_mode: str,
    at_chance: keras.callbacks.Callback | None,
    on_epoch: EpochHook | None,
    on_epoch_model: Callable[[keras.Model, int], None] | None,
) -> list[keras.callbacks.Callback]:
    import keras

    callbacks: list[keras.callbacks.Callback] = [_EpochCallback.stop_on_nan()]
    patience = int(params.get("patience", 0) or 0)
    if patience:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor=monitor, mode=monitor_mode, patience=patience, restore_best_weights=True
            )
        )
    if at_chance is not None:
        callbacks.append(at_chance)
    if on_epoch is not None:
        callbacks.append(_EpochCallback.make(on_epoch))
    if on_epoch_model is not None:
        callbacks.append(_EpochCallback.with_model(on_epoch_model))
    return callbacks


def _fit(
    model: keras.Model,
    dataset: Dataset,
    params: Mapping[str, Any],
    callbacks: list[keras.callbacks.Callback],
    initial_epoch: int,
    epochs: int | None,
) -> dict[str, list[float]]:
    """``model.fit`` on the training data, validated every epoch; the history."""
    import tensorflow as tf

    from hpsearch.data._images import streams

    y_train = _labels_for(model, dataset.y_train, dataset.num_classes)
    y_val = _labels_for(model, dataset.y_val, dataset.num_classes)
    batch = int(params["batch_size"])
    data: dict[str, Any] = {
        "x": dataset.x_train,
        "y": y_train,
        "validation_data": (dataset.x_val, y_val),
        "batch_size": batch,
    }
    if streams(dataset.x_train) and streams(dataset.x_val):  # a large image folder
        data = {
            "x": dataset.x_train.tf_dataset(y_train, batch, shuffle=True),
            "validation_data": dataset.x_val.tf_dataset(y_val, batch),
            "shuffle": False,  # the pipeline shuffles its file indices every epoch
        }
    try:
        fit = model.fit(
            **data,
            epochs=int(params["epochs"]) if epochs is None else int(epochs),
            initial_epoch=initial_epoch,
            callbacks=callbacks,
            verbose=0,
        )
    except (tf.errors.ResourceExhaustedError, MemoryError) as exc:
        raise TrialFailed(f"out of memory: {str(exc).splitlines()[0][:200]}") from exc
    return {k: [float(v) for v in vals] for k, vals in fit.history.items()}


CATEGORICAL_LOSSES = ("categorical_crossentropy", "categorical_focal_crossentropy")


def _labels_for(model: keras.Model, y: Any, num_classes: int) -> Any:
    """The labels as ``model`` takes them: one-hot for a builder's own model compiled
    with a categorical (not sparse) cross-entropy, as KerasTuner's and Keras' examples
    compile for one-hot labels; else the data set's class numbers."""
    import numpy as np

    if num_classes == 1:  # a regression's targets are numbers
        return y
    loss = getattr(model, "loss", None)
    name = loss if isinstance(loss, str) else getattr(loss, "name", getattr(loss, "__name__", None))
    y = np.asarray(y)
    if name not in CATEGORICAL_LOSSES or y.ndim != 1:
        return y
    import keras

    return keras.utils.to_categorical(y, num_classes)


def _reported_epoch(
    history: Mapping[str, list[float]], monitor: str, mode: str, patience: int
) -> int:
    """The epoch whose metrics a trial reports: with ``patience``, EarlyStopping restores
    the best weights at the end of training, whether it stopped early or not (Keras 3),
    so that epoch's; else the last."""
    if patience and history.get(monitor):
        return _best_index(history.get(monitor, []), mode)
    return len(history.get("loss", [])) - 1


def _chance_stop(
    params: Mapping[str, Any], dataset: Dataset, monitor: str, mode: str
) -> keras.callbacks.Callback | None:
    """A callback that stops a network answering no better than chance.

    Chance is the accuracy of always answering the validation set's most common class
    (+0.1 pp). A network that diverged (a learning rate too large for it) collapses to one
    class and stays there. Training stops once ``chance_patience`` epochs in a row were at
    chance and the last one did not improve on the best so far, so a slow learner that is
    still improving goes on. (Keras' ``EarlyStopping(baseline=...)`` is not this: it also
    stops networks above the baseline after ``patience`` epochs without improvement.)
    """
    import keras
    import numpy as np

    patience = int(params.get("chance_patience", 0) or 0)
    y_val = np.asarray(dataset.y_val)
    if dataset.regression:  # no classes, no chance level
        return None
    if not patience or mode != "max" or not monitor.endswith("accuracy"):
        return None
    if y_val.ndim != 1 or len(y_val) == 0:
        return None
    chance = float(np.bincount(y_val.astype("int64")).max()) / len(y_val) + 1e-3

    class ChanceStop(keras.callbacks.Callback):
        def on_train_begin(self, logs: Mapping[str, float] | None = None) -> None:
            self.at_chance, self.best, self.stopped_epoch = 0, -math.inf, 0

        def on_epoch_end(self, epoch: int, logs: Mapping[str, float] | None = None) -> None:
            current = (logs or {}).get(monitor)
            if current is None:
                return
            self.at_chance = self.at_chance + 1 if current <= chance else 0
            improved, self.best = current > self.best, max(self.best, current)
            if self.at_chance >= patience and not improved:
                self.stopped_epoch = epoch + 1
                self.model.stop_training = True

    return ChanceStop()


def _best_index(values: Sequence[float], mode: str) -> int:
    if not values:
        return 0
    pick = max if mode == "max" else min
    return values.index(pick(values))


def measure_latency_ms(model: keras.Model, x: Any, batch: int = 256, repeats: int = 5) -> float:
    """Median inference time per sample (ms) over ``repeats`` batches of ``batch`` samples."""
    sample = x[:batch]
    model.predict_on_batch(sample)  # warm-up: traces the graph
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        model.predict_on_batch(sample)
        times.append(time.perf_counter() - t0)
    times.sort()
    return 1000.0 * times[len(times) // 2] / len(sample)
