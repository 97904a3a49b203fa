"""The grid and scikit-learn adapter of a search space: the grid of Optuna's
GridSampler and ``GridSearchCV``, and ``RandomizedSearchCV``'s distributions.

Per-layer values get one entry per layer of the deepest network (``width_1 ...
width_D``); :meth:`SearchSpace.active` drops the ones a candidate does not use.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from hpsearch.config._schema import ChoiceParam, FixedParam, RangeParam
from hpsearch.exceptions import ConfigError
from hpsearch.space._layers import layer_names

if TYPE_CHECKING:
    from hpsearch.space._space import SpaceCore as SearchSpace

__all__ = ["MAX_GRID_POINTS", "check_value_lists", "distributions", "grid", "grid_size"]

MAX_GRID_POINTS = 100_000
"""Most points of a grid search, and most values one parameter may list."""

_Plan = list[tuple[list[str], RangeParam | ChoiceParam]]


def grid_plan(space: SearchSpace, steps_required: bool) -> _Plan:
    """The grid's parameters (the flat names of each, one per layer for a per-layer
    one) and their specs; raises the ConfigErrors of :func:`grid`."""
    plan: _Plan = []
    low_depth, high_depth = space.depth_range()
    for dim in space.ordered():
        spec = dim.spec
        if isinstance(spec, FixedParam):
            continue
        if steps_required and isinstance(spec, RangeParam) and spec.step is None:
            raise ConfigError(
                "a grid search needs explicit values; this is a range: give a step or "
                "{choices: [...]}, or use method: random",
                path=f"space.{dim.name}",
            )
        _grid_count(dim.name, spec)  # a continuous range raises
        if dim.per_layer:
            if low_depth != high_depth:
                raise ConfigError(
                    "a grid cannot search per-layer values while the depth varies; "
                    f"fix {space.depth_param} or drop per_layer",
                    path=f"space.{dim.name}",
                )
            plan.append((layer_names(dim.name, high_depth), spec))
        else:
            plan.append(([dim.name], spec))
    return plan


def grid(space: SearchSpace, *, steps_required: bool = False) -> dict[str, list[Any]]:
    """The grid (flat name -> values); see :meth:`SearchSpace.grid`."""
    plan = grid_plan(space, steps_required)
    points = math.prod(_grid_count(names[0], spec) ** len(names) for names, spec in plan)
    if points > MAX_GRID_POINTS:
        raise ConfigError(
            f"a grid of {_count_text(points)} points; a grid search may have up to "
            f"{MAX_GRID_POINTS:,}: search fewer values (larger steps, fewer choices), "
            "or sample instead of a grid",
            path="space",
        )
    out: dict[str, list[Any]] = {}
    for names, spec in plan:
        values = _grid_values(names[0], spec)
        for name in names:
            out[name] = values
    return out


def grid_size(space: SearchSpace) -> int | None:
    """Number of grid points, or None if the space is not finite (or has more than
    10**300 points, which no search gets through)."""
    try:
        plan = grid_plan(space, steps_required=False)
    except ConfigError:
        return None
    size = 1
    for names, spec in plan:
        size *= _grid_count(names[0], spec) ** len(names)
        if size > 10**300:
            return None
    return size


def check_value_lists(space: SearchSpace) -> None:
    """Refuse a choice or stepped range with more than MAX_GRID_POINTS values:
    :func:`distributions` lists them."""
    for dim in space.ordered():
        spec = dim.spec
        if isinstance(spec, ChoiceParam) or (
            isinstance(spec, RangeParam) and spec.step is not None
        ):
            _grid_values(dim.name, spec, count_only=True)


def distributions(space: SearchSpace) -> dict[str, Any]:
    """scikit-learn ``param_distributions``: lists for choices, scipy distributions
    for ranges, per-layer values for the deepest network."""
    from scipy import stats

    out: dict[str, Any] = {}
    _, high_depth = space.depth_range()
    for dim in space.ordered():
        spec = dim.spec
        if isinstance(spec, FixedParam):
            continue
        if isinstance(spec, ChoiceParam) or spec.step is not None:
            dist: Any = _grid_values(dim.name, spec)
        elif spec.is_int:
            dist = _IntDistribution(int(spec.low), int(spec.high), spec.log)
        elif spec.log:
            dist = stats.loguniform(spec.low, spec.high)
        else:
            dist = stats.uniform(spec.low, spec.high - spec.low)
        for name in layer_names(dim.name, high_depth) if dim.per_layer else [dim.name]:
            out[name] = dist
    return out


class _IntDistribution:
    """A (log-)uniform integer distribution with the ``rvs`` scikit-learn samples from."""

    def __init__(self, low: int, high: int, log: bool) -> None:
        self.low, self.high, self.log = low, high, log

    def rvs(self, random_state: Any = None) -> int:
        from sklearn.utils import check_random_state

        rng = check_random_state(random_state)
        if self.log:
            value = math.exp(rng.uniform(math.log(self.low), math.log(self.high + 1)))
            return min(int(value), self.high)
        return int(rng.randint(self.low, self.high + 1))

    def __repr__(self) -> str:
        return f"IntDistribution({self.low}, {self.high}, log={self.log})"


def _grid_count(name: str, spec: RangeParam | ChoiceParam) -> int:
    """How many values :func:`_grid_values` gives, without listing them."""
    if isinstance(spec, ChoiceParam):
        return len(spec.choices)
    if spec.is_int:
        return max(0, (int(spec.high) - int(spec.low)) // int(spec.step or 1) + 1)
    if spec.step is None:
        raise ConfigError(
            "a grid needs finite values; this is a continuous range: give a step or "
            "{choices: [...]}",
            path=f"space.{name}",
        )
    steps = (spec.high - spec.low) / spec.step
    if not math.isfinite(steps):  # the float division overflowed
        return 10**309
    return int(math.floor(steps + 1e-9)) + 1


def _count_text(n: int) -> str:
    return f"{n:,}" if n < 10**30 else f"about 10^{len(str(n)) - 1 if n < 10**4000 else '4000+'}"


def _grid_values(
    name: str, spec: RangeParam | ChoiceParam, *, count_only: bool = False
) -> list[Any]:
    n = _grid_count(name, spec)
    if n > MAX_GRID_POINTS:
        raise ConfigError(
            f"{_count_text(n)} values; a parameter may list up to {MAX_GRID_POINTS:,}: "
            "give a larger step or fewer choices",
            path=f"space.{name}",
        )
    if count_only:
        return []
    if isinstance(spec, ChoiceParam):
        return list(spec.choices)
    if spec.is_int:
        return list(range(int(spec.low), int(spec.high) + 1, int(spec.step or 1)))
    assert spec.step is not None
    return [round(spec.low + i * spec.step, 12) for i in range(n)]
