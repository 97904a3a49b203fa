"""The per-layer name codec, the one place that spells ``width_1 ... width_D``.

A per-layer parameter (``width: {low: 32, high: 512, per_layer: true}``) is searched
as one value per layer of a trial: Optuna and scikit-learn see the flat names
``width_1 ... width_D``, the builders a list ``width: [..]`` of ``depth`` values.

>>> layer_names("width", 3)
['width_1', 'width_2', 'width_3']
>>> parse_layer_name("width_2"), parse_layer_name("width"), parse_layer_name("width_02")
(('width', 2), None, None)
>>> join_layers("width", {"width_1": 64, "width_2": 32, "depth": 2}, 2)
[64, 32]
>>> trim_layers({"depth": 2, "width": [64, 32, 16], "optimizer": "adam"}, "depth")
{'depth': 2, 'width': [64, 32], 'optimizer': 'adam'}
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hpsearch.models._catalog import fit_to_depth

__all__ = [
    "fit_to_depth",
    "join_layers",
    "layer_name",
    "layer_names",
    "parse_layer_name",
    "trim_layers",
]


def layer_name(name: str, layer: int) -> str:
    """The flat name of ``name``'s value for layer ``layer`` (counted from 1)."""
    return f"{name}_{layer}"


def layer_names(name: str, depth: int) -> list[str]:
    """The flat names of ``name``'s values for layers 1 to ``depth``."""
    return [layer_name(name, i) for i in range(1, depth + 1)]


def parse_layer_name(key: str) -> tuple[str, int] | None:
    """``(name, layer)`` if ``key`` is spelled as :func:`layer_name` spells it, else None.

    Whether ``name`` is a per-layer parameter is for the space to say.
    """
    base, _, index = key.rpartition("_")
    if not base or not (index.isascii() and index.isdigit()) or index.startswith("0"):
        return None
    return base, int(index)


def join_layers(name: str, flat: Mapping[str, Any], depth: int) -> list[Any]:
    """The list of ``name``'s values for layers 1 to ``depth``, read from flat names."""
    return [flat[key] for key in layer_names(name, depth)]


def trim_layers(params: dict[str, Any], depth_param: str | None) -> dict[str, Any]:
    """Cut the lists of a full parameter set (fixed per-layer lists) to its depth."""
    if depth_param is None:
        return params
    depth = int(params[depth_param])
    return {k: (v[:depth] if isinstance(v, list) else v) for k, v in params.items()}
