"""Search spaces: a study file's ``space`` section checked against the model family,
turned into Optuna suggestions, an Optuna grid, or scikit-learn distributions.

- :mod:`~hpsearch.space._space`: the dimensions (:class:`Dim`), their checks against
  the catalog, the conditions under which each is used (``ParamDef.active_if``).
- :mod:`~hpsearch.space._layers`: the per-layer name codec. Per-layer parameters
  (``width: {low: 32, high: 512, per_layer: true}``) become ``width_1 ... width_D``
  and are sampled only for the layers a trial has.
- :mod:`~hpsearch.space._optuna` and :mod:`~hpsearch.space._sklearn`: the adapters;
  :class:`SearchSpace` (:mod:`~hpsearch.space._public`) is the core with the adapters
  as methods.
"""

from __future__ import annotations

from hpsearch.models._catalog import Condition
from hpsearch.space._layers import (
    fit_to_depth,
    join_layers,
    layer_name,
    layer_names,
    parse_layer_name,
    trim_layers,
)
from hpsearch.space._public import SearchSpace
from hpsearch.space._sklearn import MAX_GRID_POINTS
from hpsearch.space._space import Dim, SpaceCore, Spec

__all__ = [
    "MAX_GRID_POINTS",
    "Condition",
    "Dim",
    "SearchSpace",
    "SpaceCore",
    "Spec",
    "fit_to_depth",
    "join_layers",
    "layer_name",
    "layer_names",
    "parse_layer_name",
    "trim_layers",
]
