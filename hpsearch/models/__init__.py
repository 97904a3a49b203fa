"""Model families: the parameter catalog (no TensorFlow) and the Keras builders.

``build_model``, ``sample_builder`` and ``check_builder`` import Keras on first use
only; :mod:`hpsearch.models._hp` (builders that declare their own parameters, in
KerasTuner's or Optuna's style) imports neither Keras nor Optuna.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hpsearch.models._catalog import (
    BUILTIN_FAMILIES,
    OPTIMIZERS,
    Condition,
    Family,
    ParamDef,
    fit_to_depth,
    get_family,
)
from hpsearch.models._hp import (
    API_STYLES,
    HyperParameters,
    ReplayTrial,
    TrialProxy,
    detect_api,
    detect_api_in_source,
)

if TYPE_CHECKING:
    from collections.abc import Collection, Mapping, Sequence

    import keras

__all__ = [
    "API_STYLES",
    "BUILTIN_FAMILIES",
    "OPTIMIZERS",
    "Condition",
    "Family",
    "HyperParameters",
    "ParamDef",
    "ReplayTrial",
    "TrialProxy",
    "build_model",
    "builder_api",
    "check_builder",
    "detect_api",
    "detect_api_in_source",
    "fit_to_depth",
    "get_family",
    "sample_builder",
]


def build_model(
    family: str,
    params: Mapping[str, Any],
    input_shape: Sequence[int],
    num_classes: int,
    *,
    api: str = "auto",
) -> keras.Model:
    """Build the Keras model of one trial (see :func:`hpsearch.models._builders.build_model`)."""
    from hpsearch.models._builders import build_model as _build

    if family in BUILTIN_FAMILIES:  # a parameter left out by its condition: the default
        defaults = {n: d.default for n, d in BUILTIN_FAMILIES[family].params.items()}
        params = {**defaults, **params}
    return _build(family, params, input_shape, num_classes, api=api)


def builder_api(family: str, api: str = "auto") -> str:
    """The style ``family``'s builder is called in: ``params``, ``keras_tuner`` or
    ``optuna`` (imports the builder; see :func:`hpsearch.models._hp.detect_api`)."""
    from hpsearch.models._builders import builder_api as _api

    return _api(family, api)


def sample_builder(
    family: str,
    trial: Any,
    params: Mapping[str, Any],
    owned: Collection[str],
    input_shape: Sequence[int],
    num_classes: int,
    *,
    api: str = "auto",
) -> dict[str, Any] | None:
    """Build a define-by-run builder once on a live trial; what it sampled (see
    :func:`hpsearch.models._builders.sample_builder`)."""
    from hpsearch.models._builders import sample_builder as _sample

    return _sample(family, trial, params, owned, input_shape, num_classes, api=api)


def check_builder(
    family: str,
    params: Mapping[str, Any],
    input_shape: Sequence[int],
    num_classes: int,
    *,
    api: str = "auto",
    owned: Collection[str] = (),
) -> None:
    """Build a user builder once before a run (see
    :func:`hpsearch.models._builders.check_builder`)."""
    from hpsearch.models._builders import check_builder as _check

    _check(family, params, input_shape, num_classes, api=api, owned=owned)
