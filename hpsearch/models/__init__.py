"""Model families: the parameter catalog (no TensorFlow) and the Keras builders.

``build_model`` imports Keras on first use only.
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

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    import keras

__all__ = [
    "BUILTIN_FAMILIES",
    "OPTIMIZERS",
    "Condition",
    "Family",
    "ParamDef",
    "build_model",
    "fit_to_depth",
    "get_family",
]


def build_model(
    family: str, params: Mapping[str, Any], input_shape: Sequence[int], num_classes: int
) -> keras.Model:
    """Build the Keras model of one trial (see :func:`hpsearch.models._builders.build_model`)."""
    from hpsearch.models._builders import build_model as _build

    if family in BUILTIN_FAMILIES:  # a parameter left out by its condition: the default
        defaults = {n: d.default for n, d in BUILTIN_FAMILIES[family].params.items()}
        params = {**defaults, **params}
    return _build(family, params, input_shape, num_classes)
