"""The grid and scikit-learn adapter of a search space: the grid of Optuna's
GridSampler and ``GridSearchCV``, and ``RandomizedSearchCV``'s distributions.

Per-layer values get one entry per layer of the deepest network (``width_1 ...
width_D``); :meth:`SearchSpace.active` drops the ones a candidate does not use.
"""

from __future__ import annotations

import itertools
import math
from typing import TYPE_CHECKING, Any

from hpsearch.config._schema import ChoiceParam, FixedParam, RangeParam
from hpsearch.exceptions import ConfigError
from hpsearch.space._layers import layer_names

if TYPE_CHECKING:
    from hpsearch.space._space import Dim
    from hpsearch.space._space import SpaceCore as SearchSpace

__all__ = [
    "MAX_GRID_POINTS",
    "check_value_lists",
    "distributions",
    "grid_points",
    "grid_size",
    "grids",
]

MAX_GRID_POINTS = 100_000
"""Most points of a grid search, and most values one parameter may list."""

Grid = dict[str, list[Any]]


def grid_parents(space: SearchSpace, *, depths: bool) -> set[str]:
    """The searched parameters a grid branches on: those a condition reads (the family,
    the optimizer of ``momentum``) and, with ``depths``, the depths per-layer values
    follow (so a grid over ``depth: {choices: [1, 2]}`` with per-layer widths has
    1-layer and 2-layer points)."""
    parents = {c.param for d in space.dims.values() for c in d.active_if}
    if depths:
        parents |= {d.depth_key for d in space.dims.values() if d.searched and d.depth_key}
    return {p for p in parents if p in space.dims and space.dims[p].searched}


def _assignments(space: SearchSpace, parents: set[str]) -> list[dict[str, Any]]:
    """Every consistent choice of the parents' values (with the fixed values), in the
    space's order; an inactive parent is left out."""
    partial: list[dict[str, Any]] = [{}]
    for dim in space.ordered():
        out: list[dict[str, Any]] = []
        for chosen in partial:
            if not space.uses(dim.name, chosen):
                out.append(chosen)
            elif isinstance(dim.spec, FixedParam):
                out.append({**chosen, dim.name: dim.spec.value})
            elif dim.name in parents:
                out += [{**chosen, dim.name: v} for v in _grid_values(dim.name, dim.spec)]
            else:
                out.append(chosen)
        if len(out) > MAX_GRID_POINTS:
            raise ConfigError(
                f"more than {MAX_GRID_POINTS:,} branches of conditional parameters; "
                "search fewer values of the parameters the conditions read",
                path="space",
            )
        partial = out
    return partial


def _branch_entries(
    space: SearchSpace, chosen: dict[str, Any], parents: set[str], value_of: Any
) -> dict[str, Any]:
    """One branch's entries: its parents' values, and ``value_of(dim)`` for each other
    active searched parameter (one flat name per layer of a per-layer one)."""
    out: dict[str, Any] = {}
    for dim in space.ordered():
        if not dim.searched or not space.uses(dim.name, chosen):
            continue
        if dim.name in parents:
            out[dim.name] = [chosen[dim.name]]
            continue
        value = value_of(dim)
        if not dim.per_layer:
            out[dim.name] = value
            continue
        depth = chosen.get(dim.depth_key) if dim.depth_key else None
        if depth is None:
            depth = space.depth_range(dim.depth_key)[1]
        for name in layer_names(dim.name, int(depth)):
            out[name] = value
    return out


def _grid_dims(space: SearchSpace, steps_required: bool) -> None:
    """Refuse what no grid can list: a continuous range, an unstepped one (scikit-learn)."""
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


def grids(space: SearchSpace, *, steps_required: bool = False) -> list[Grid]:
    """The grid as a list of grids (flat name -> values), one per branch of the
    parameters conditions read (and of the depths): the points of a conditional space
    are the sum over its branches, not the product of every value; see
    :meth:`SearchSpace.grid`."""
    _grid_dims(space, steps_required)
    parents = grid_parents(space, depths=True)
    branches = _assignments(space, parents)
    points = _count(space, branches, parents)
    if points > MAX_GRID_POINTS:
        raise ConfigError(
            f"a grid of {_count_text(points)} points; a grid search may have up to "
            f"{MAX_GRID_POINTS:,}: search fewer values (larger steps, fewer choices), "
            "or sample instead of a grid",
            path="space",
        )
    return [
        _branch_entries(space, chosen, parents, lambda d: _grid_values(d.name, d.spec))
        for chosen in branches
    ]


def _count(space: SearchSpace, branches: list[dict[str, Any]], parents: set[str]) -> int:
    """The number of points of the branches' grids (without listing their values)."""
    size = 0
    for chosen in branches:
        counts = _branch_entries(space, chosen, parents, lambda d: _grid_count(d.name, d.spec))
        size += math.prod(1 if isinstance(c, list) else c for c in counts.values())
    return size


def grid_size(space: SearchSpace) -> int | None:
    """Number of grid points (the sum over the branches of a conditional space), or
    None if the space is not finite (or has more than 10**300 points, which no search
    gets through)."""
    try:
        _grid_dims(space, steps_required=False)
        parents = grid_parents(space, depths=True)
        size = _count(space, _assignments(space, parents), parents)
    except ConfigError:
        return None
    return None if size > 10**300 else size


def grid_points(space: SearchSpace) -> tuple[Grid, list[dict[str, Any]]]:
    """All the points of a conditional grid (flat name -> value, active names only),
    with the union grid Optuna's GridSampler records; see ``search.ConditionalGrid``."""
    union: dict[str, list[Any]] = {}
    points: list[dict[str, Any]] = []
    for grid in grids(space):
        for name, values in grid.items():
            known = union.setdefault(name, [])
            known += [v for v in values if v not in known]
        names = list(grid)
        points += [
            dict(zip(names, combo, strict=True)) for combo in itertools.product(*grid.values())
        ]
    return union, points


def check_value_lists(space: SearchSpace) -> None:
    """Refuse a choice or stepped range with more than MAX_GRID_POINTS values:
    :func:`distributions` lists them."""
    for dim in space.ordered():
        spec = dim.spec
        if isinstance(spec, ChoiceParam) or (
            isinstance(spec, RangeParam) and spec.step is not None
        ):
            _grid_values(dim.name, spec, count_only=True)


def distributions(space: SearchSpace) -> dict[str, Any] | list[dict[str, Any]]:
    """scikit-learn ``param_distributions``: lists for choices, scipy distributions
    for ranges, per-layer values for the deepest network. A conditional space gives a
    list of them, one per branch of the parameters conditions read: scikit-learn's
    random search samples a branch, then its parameters."""
    parents = grid_parents(space, depths=False)
    for name in parents:
        dim = space.dims[name]
        if isinstance(dim.spec, RangeParam) and dim.spec.step is None and not dim.spec.is_int:
            raise ConfigError(
                "a condition reads this parameter: scikit-learn's search needs it to be "
                "a choice or a stepped range",
                path=f"space.{dim.name}",
            )
    out = [
        _branch_entries(space, chosen, parents, _distribution)
        for chosen in _assignments(space, parents)
    ]
    return out[0] if len(out) == 1 else out


def _distribution(dim: Dim) -> Any:
    from scipy import stats

    spec = dim.spec
    assert not isinstance(spec, FixedParam)
    if isinstance(spec, ChoiceParam) or spec.step is not None:
        return _grid_values(dim.name, spec)
    if spec.is_int:
        return _IntDistribution(int(spec.low), int(spec.high), spec.log)
    if spec.log:
        return stats.loguniform(spec.low, spec.high)
    return stats.uniform(spec.low, spec.high - spec.low)


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
