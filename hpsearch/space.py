"""Search spaces: a study file's ``space`` section checked against the model family,
turned into Optuna suggestions, an Optuna grid, or enqueued trials.

Per-layer parameters (``width: {low: 32, high: 512, per_layer: true}``) become
``width_1 ... width_D`` and are sampled only for the layers a trial has.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from hpsearch.config._schema import ChoiceParam, FixedParam, RangeParam, StudyConfig
from hpsearch.exceptions import ConfigError
from hpsearch.models._catalog import BUILTIN_FAMILIES, ParamDef, get_family

if TYPE_CHECKING:
    import optuna

__all__ = ["MAX_GRID_POINTS", "SearchSpace"]

Spec = RangeParam | ChoiceParam | FixedParam

MAX_GRID_POINTS = 100_000
"""Most points of a grid search, and most values one parameter may list."""


@dataclass(frozen=True)
class Dim:
    """One parameter of the space: its spec and, for known names, its definition."""

    name: str
    spec: Spec
    pdef: ParamDef | None

    @property
    def searched(self) -> bool:
        return not isinstance(self.spec, FixedParam)

    @property
    def per_layer(self) -> bool:
        if isinstance(self.spec, FixedParam):
            return isinstance(self.spec.value, list)
        return self.spec.per_layer


class SearchSpace:
    """The resolved search space of a study.

    Args:
        config: a validated study file.

    Raises:
        ConfigError: a parameter is unknown to the model family, has the wrong
            kind, an empty or invalid range, or a value that is not allowed.

    Example:
        >>> space = SearchSpace(config)
        >>> params = space.suggest(trial)   # {'depth': 2, 'width': [256, 64], ...}
    """

    def __init__(self, config: StudyConfig) -> None:
        family = config.model.family
        if family not in BUILTIN_FAMILIES and ":" not in family:
            raise ConfigError(
                "allowed: " + ", ".join(BUILTIN_FAMILIES) + ", or package.module:function",
                path="model.family",
                value=family,
                has_value=True,
            )
        self.family = get_family(family)
        self.depth_param = self.family.depth_param
        known = self.family.all_params()
        dims: dict[str, Dim] = {}
        for name, spec in config.space.items():
            pdef = known.get(name)
            if pdef is None and not self.family.is_user:
                raise ConfigError(
                    f"unknown parameter for model family {self.family.name!r}; allowed: "
                    + ", ".join(known),
                    path=f"space.{name}",
                )
            dims[name] = Dim(name, spec, pdef)
        for name, pdef in known.items():
            if name not in dims:
                dims[name] = Dim(name, FixedParam(value=pdef.default), pdef)
        self.dims = dims
        # the depth first: checking a per-layer list reads it
        for dim in sorted(dims.values(), key=lambda d: d.name != self.depth_param):
            self._check(dim)
        self._check_conditionals()

    # ------------------------------------------------------------------ checks
    def _depth_range(self) -> tuple[int, int]:
        if self.depth_param is None:
            return (1, 1)
        spec = self.dims[self.depth_param].spec
        if isinstance(spec, FixedParam):
            return (int(spec.value), int(spec.value))  # type: ignore[arg-type]
        if isinstance(spec, ChoiceParam):
            values = [int(v) for v in spec.choices]
            return (min(values), max(values))
        return (int(spec.low), int(spec.high))

    def _check(self, dim: Dim) -> None:
        path = f"space.{dim.name}"
        spec, pdef = dim.spec, dim.pdef
        if dim.per_layer and (pdef is None or not pdef.per_layer):
            allowed = [n for n, d in self.family.all_params().items() if d.per_layer]
            raise ConfigError(
                "per-layer values are allowed only for: " + (", ".join(allowed) or "none"),
                path=path,
            )
        if isinstance(spec, RangeParam):
            self._check_range(path, spec, pdef)
        elif isinstance(spec, ChoiceParam):
            if len(set(map(repr, spec.choices))) != len(spec.choices):
                raise ConfigError(
                    "choices must be distinct",
                    path=f"{path}.choices",
                    value=spec.choices,
                    has_value=True,
                )
            for i, choice in enumerate(spec.choices):
                if pdef is not None and not pdef.check(choice):
                    raise ConfigError(
                        f"allowed: {pdef.allowed()}",
                        path=f"{path}.choices[{i}]",
                        value=choice,
                        has_value=True,
                    )
        else:
            values = spec.value if isinstance(spec.value, list) else [spec.value]
            for value in values:
                if pdef is not None and not pdef.check(value):
                    raise ConfigError(
                        f"allowed: {pdef.allowed()}", path=path, value=value, has_value=True
                    )
            if isinstance(spec.value, list):
                low, high = self._depth_range()
                n = len(spec.value)
                if n < high or (low == high and n != low):
                    raise ConfigError(
                        f"a per-layer list needs one value per layer ({high} here)",
                        path=path,
                        value=spec.value,
                        has_value=True,
                    )

    def _check_range(self, path: str, spec: RangeParam, pdef: ParamDef | None) -> None:
        if pdef is not None and pdef.kind in ("str", "bool"):
            raise ConfigError(
                f"a range is not allowed for this parameter; use {{choices: [...]}}, "
                f"allowed: {pdef.allowed()}",
                path=path,
            )
        if pdef is not None and pdef.kind == "int" and not spec.is_int:
            raise ConfigError(
                "this parameter is an integer: low, high and step must be integers",
                path=path,
                value={"low": spec.low, "high": spec.high},
                has_value=True,
            )
        if spec.low > spec.high:
            raise ConfigError(
                "empty range: low must be <= high",
                path=path,
                value={"low": spec.low, "high": spec.high},
                has_value=True,
            )
        if spec.log and spec.low <= 0:
            raise ConfigError(
                "a log range needs low > 0", path=f"{path}.low", value=spec.low, has_value=True
            )
        if spec.log and spec.step is not None:
            raise ConfigError("step and log cannot be combined", path=path)
        if spec.step is not None and spec.step <= 0:
            raise ConfigError(
                "step must be > 0", path=f"{path}.step", value=spec.step, has_value=True
            )
        if spec.is_int and spec.step is not None and not float(spec.step).is_integer():
            raise ConfigError(
                "an integer range needs an integer step",
                path=f"{path}.step",
                value=spec.step,
                has_value=True,
            )
        if pdef is not None:
            for key in ("low", "high"):
                bound = getattr(spec, key)
                probe = int(bound) if pdef.kind == "int" else float(bound)
                if not pdef.check(probe):
                    raise ConfigError(
                        f"allowed: {pdef.allowed()}",
                        path=f"{path}.{key}",
                        value=bound,
                        has_value=True,
                    )

    def _check_conditionals(self) -> None:
        momentum = self.dims.get("momentum")
        optimizer = self.dims.get("optimizer")
        if momentum is None or optimizer is None or not momentum.searched:
            return
        spec = optimizer.spec
        uses_sgd = spec.value == "sgd" if isinstance(spec, FixedParam) else "sgd" in spec.choices  # type: ignore[union-attr]
        if not uses_sgd:
            raise ConfigError(
                "momentum is used only with optimizer sgd; fix it or search sgd",
                path="space.momentum",
            )

    # ------------------------------------------------------------ inspection
    @property
    def searched(self) -> dict[str, Dim]:
        """The parameters that vary between trials, in declaration order."""
        return {n: d for n, d in self.dims.items() if d.searched}

    @property
    def fixed(self) -> dict[str, Any]:
        """The parameters that are the same in every trial."""
        return {n: d.spec.value for n, d in self.dims.items() if isinstance(d.spec, FixedParam)}

    def max_value(self, name: str) -> Any:
        """The largest value a numeric parameter can take."""
        spec = self.dims[name].spec
        if isinstance(spec, FixedParam):
            return max(spec.value) if isinstance(spec.value, list) else spec.value
        if isinstance(spec, ChoiceParam):
            return max(spec.choices)
        return spec.high

    def _uses(self, name: str, params: Mapping[str, Any]) -> bool:
        """Whether parameter ``name`` is active given the params chosen so far."""
        if name == "momentum":
            return params.get("optimizer") == "sgd"
        return True

    def _ordered(self) -> Iterator[Dim]:
        if self.depth_param is not None:
            yield self.dims[self.depth_param]
        for name, dim in self.dims.items():
            if name != self.depth_param and name != "momentum":
                yield dim
        if "momentum" in self.dims:
            yield self.dims["momentum"]

    # -------------------------------------------------------------- sampling
    def suggest(self, trial: optuna.trial.BaseTrial) -> dict[str, Any]:
        """Ask ``trial`` for every searched parameter; return the full parameter set."""
        params: dict[str, Any] = {}
        for dim in self._ordered():
            if not self._uses(dim.name, params):
                continue
            spec = dim.spec
            if isinstance(spec, FixedParam):
                params[dim.name] = spec.value
            elif dim.per_layer:
                depth = int(params[self.depth_param])  # type: ignore[index]
                params[dim.name] = [
                    _suggest_one(trial, f"{dim.name}_{i}", spec) for i in range(1, depth + 1)
                ]
            else:
                params[dim.name] = _suggest_one(trial, dim.name, spec)
        return _trim_layers(params, self.depth_param)

    def example_params(self) -> dict[str, Any]:
        """One full parameter set of the space without a sampler: every range at its
        low end, every choice at its first value (checks a user builder cheaply)."""
        return self.suggest(cast(Any, _FirstValues()))

    def params_from_optuna(self, optuna_params: Mapping[str, Any]) -> dict[str, Any]:
        """Rebuild the full parameter set from a stored trial's ``params``."""
        params: dict[str, Any] = {}
        for dim in self._ordered():
            if not self._uses(dim.name, params):
                continue
            if isinstance(dim.spec, FixedParam):
                params[dim.name] = dim.spec.value
            elif dim.per_layer:
                depth = int(params[self.depth_param])  # type: ignore[index]
                params[dim.name] = [optuna_params[f"{dim.name}_{i}"] for i in range(1, depth + 1)]
            else:
                params[dim.name] = optuna_params[dim.name]
        return _trim_layers(params, self.depth_param)

    def to_optuna_params(self, values: Mapping[str, Any], *, path: str) -> dict[str, Any]:
        """Turn a user's trial (``{width: [512, 512], ...}``) into Optuna param names.

        Values must lie in the space; fixed parameters may be repeated if equal.
        """
        out: dict[str, Any] = {}
        depth = values.get(self.depth_param) if self.depth_param else None
        if depth is None and self.depth_param and not self.dims[self.depth_param].searched:
            depth = self.dims[self.depth_param].spec.value  # type: ignore[union-attr]
        elif depth is not None and self.depth_param:
            # per-layer values are counted against it: check it before the others
            ordered = {self.depth_param: depth, **values}
            values = ordered
        for name, value in values.items():
            dim = self.dims.get(name)
            if dim is None:
                raise ConfigError(
                    "not a parameter of the space; allowed: " + ", ".join(self.dims),
                    path=f"{path}.{name}",
                )
            if not dim.searched:
                if value != dim.spec.value:  # type: ignore[union-attr]
                    raise ConfigError(
                        f"this parameter is fixed to {dim.spec.value!r}",  # type: ignore[union-attr]
                        path=f"{path}.{name}",
                        value=value,
                        has_value=True,
                    )
                continue
            if dim.per_layer:
                if not isinstance(value, list) and depth is not None:
                    value = [value] * int(depth)  # one value for every layer
                if not isinstance(value, list) or depth is None or len(value) != int(depth):
                    raise ConfigError(
                        f"needs one value per layer: give {self.depth_param} too, and as many "
                        f"values as {self.depth_param}" + ("" if depth is None else f" ({depth})"),
                        path=f"{path}.{name}",
                        value=value,
                        has_value=True,
                    )
                for i, item in enumerate(value, start=1):
                    _check_in(dim.spec, item, f"{path}.{name}[{i - 1}]")  # type: ignore[arg-type]
                    out[f"{name}_{i}"] = item
            else:
                _check_in(dim.spec, value, f"{path}.{name}")  # type: ignore[arg-type]
                out[name] = value
        return out

    # ------------------------------------------------------------------ grid
    def _grid_plan(self, steps_required: bool) -> list[tuple[list[str], RangeParam | ChoiceParam]]:
        """The grid's parameters (the Optuna names of each, one per layer for a per-layer
        one) and their specs; raises the ConfigErrors of :meth:`grid`."""
        plan: list[tuple[list[str], RangeParam | ChoiceParam]] = []
        low_depth, high_depth = self._depth_range()
        for dim in self._ordered():
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
                        f"fix {self.depth_param} or drop per_layer",
                        path=f"space.{dim.name}",
                    )
                plan.append(([f"{dim.name}_{i}" for i in range(1, high_depth + 1)], spec))
            else:
                plan.append(([dim.name], spec))
        return plan

    def grid(self, *, steps_required: bool = False) -> dict[str, list[Any]]:
        """The grid (param name -> values), for Optuna's GridSampler or ``GridSearchCV``.

        Args:
            steps_required: refuse integer ranges without a step too (scikit-learn's
                grid takes only explicit values).

        Raises:
            ConfigError: the space has a continuous range, per-layer values with a
                varying depth, or more than :data:`MAX_GRID_POINTS` points (both
                searches go through every one; Optuna's lists them all up front).
        """
        plan = self._grid_plan(steps_required)
        points = math.prod(_grid_count(names[0], spec) ** len(names) for names, spec in plan)
        if points > MAX_GRID_POINTS:
            raise ConfigError(
                f"a grid of {_count_text(points)} points; a grid search may have up to "
                f"{MAX_GRID_POINTS:,}: search fewer values (larger steps, fewer choices), "
                "or sample instead of a grid",
                path="space",
            )
        grid: dict[str, list[Any]] = {}
        for names, spec in plan:
            values = _grid_values(names[0], spec)
            for name in names:
                grid[name] = values
        return grid

    def check_value_lists(self) -> None:
        """Refuse a choice or stepped range with more than MAX_GRID_POINTS values:
        :meth:`distributions` lists them."""
        for dim in self._ordered():
            spec = dim.spec
            if isinstance(spec, ChoiceParam) or (
                isinstance(spec, RangeParam) and spec.step is not None
            ):
                _grid_values(dim.name, spec, count_only=True)

    def distributions(self) -> dict[str, Any]:
        """scikit-learn ``param_distributions``: lists for choices, scipy distributions
        for ranges. Per-layer values are drawn for the deepest network; the layers a
        candidate does not have are ignored (see :meth:`active`)."""
        from scipy import stats

        out: dict[str, Any] = {}
        _, high_depth = self._depth_range()
        for dim in self._ordered():
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
            names = (
                [f"{dim.name}_{i}" for i in range(1, high_depth + 1)]
                if dim.per_layer
                else [dim.name]
            )
            for name in names:
                out[name] = dist
        return out

    def active(self, flat: Mapping[str, Any]) -> dict[str, Any]:
        """Keep the searched values a candidate really uses (its layers; momentum with sgd)."""
        depth = flat.get(self.depth_param) if self.depth_param else None
        if depth is None and self.depth_param:
            depth = self.dims[self.depth_param].spec.value  # type: ignore[union-attr]
        out = {}
        for name, value in flat.items():
            base, _, index = name.rpartition("_")
            per_layer = index.isdigit() and base in self.dims and self.dims[base].per_layer
            if per_layer and int(index) > int(depth):  # type: ignore[arg-type]
                continue
            if name == "momentum" and flat.get("optimizer", self.fixed.get("optimizer")) != "sgd":
                continue
            out[name] = value
        return out

    def optuna_distributions(self, flat: Mapping[str, Any]) -> dict[str, Any]:
        """The Optuna distribution of each searched value in ``flat`` (for stored trials)."""
        from optuna.distributions import (
            CategoricalDistribution,
            FloatDistribution,
            IntDistribution,
        )

        out: dict[str, Any] = {}
        for name in flat:
            dim = self.dims.get(name)
            if dim is None:
                dim = self.dims[name.rpartition("_")[0]]
            spec = dim.spec
            if isinstance(spec, ChoiceParam):
                out[name] = CategoricalDistribution(spec.choices)
            elif isinstance(spec, RangeParam) and spec.is_int:
                out[name] = IntDistribution(
                    int(spec.low), int(spec.high), log=spec.log, step=int(spec.step or 1)
                )
            elif isinstance(spec, RangeParam):
                out[name] = FloatDistribution(
                    float(spec.low),
                    float(spec.high),
                    log=spec.log,
                    step=None if spec.step is None else float(spec.step),
                )
        return out

    def grid_size(self) -> int | None:
        """Number of grid points, or None if the space is not finite (or has more than
        10**300 points, which no search gets through)."""
        try:
            plan = self._grid_plan(steps_required=False)
        except ConfigError:
            return None
        size = 1
        for names, spec in plan:
            size *= _grid_count(names[0], spec) ** len(names)
            if size > 10**300:
                return None
        return size

    def describe(self) -> list[tuple[str, str]]:
        """(name, description) rows for ``hpsearch validate``."""
        rows = []
        for dim in self._ordered():
            spec = dim.spec
            if isinstance(spec, FixedParam):
                text = f"fixed {spec.value!r}"
            elif isinstance(spec, ChoiceParam):
                text = "choice of " + ", ".join(map(str, spec.choices))
            else:
                kind = "int" if spec.is_int else "float"
                text = f"{kind} in [{spec.low:g}, {spec.high:g}]"
                if spec.log:
                    text += " log"
                if spec.step is not None:
                    text += f" step {spec.step:g}"
            if dim.searched and dim.per_layer:
                text += f" per layer (1 per {self.depth_param})"
            if dim.name == "momentum":
                text += " (sgd only)"
            rows.append((dim.name, text))
        return rows


class _FirstValues:
    """Answers the ``suggest_*`` calls of :meth:`SearchSpace.suggest` with the lowest
    value of a range and the first of a choice."""

    def suggest_categorical(self, name: str, choices: Any) -> Any:
        return list(choices)[0]

    def suggest_int(self, name: str, low: int, high: int, **_: Any) -> int:
        return low

    def suggest_float(self, name: str, low: float, high: float, **_: Any) -> float:
        return low


def _suggest_one(trial: optuna.trial.BaseTrial, name: str, spec: RangeParam | ChoiceParam) -> Any:
    if isinstance(spec, ChoiceParam):
        return trial.suggest_categorical(name, spec.choices)
    if spec.is_int:
        return trial.suggest_int(
            name, int(spec.low), int(spec.high), step=int(spec.step or 1), log=spec.log
        )
    return trial.suggest_float(
        name,
        float(spec.low),
        float(spec.high),
        step=None if spec.step is None else float(spec.step),
        log=spec.log,
    )


def _trim_layers(params: dict[str, Any], depth_param: str | None) -> dict[str, Any]:
    """Cut fixed per-layer lists to the trial's depth."""
    if depth_param is None:
        return params
    depth = int(params[depth_param])
    return {k: (v[:depth] if isinstance(v, list) else v) for k, v in params.items()}


def _check_in(spec: RangeParam | ChoiceParam, value: Any, path: str) -> None:
    if isinstance(spec, ChoiceParam):
        if value not in spec.choices:
            raise ConfigError(
                "allowed: " + ", ".join(map(str, spec.choices)),
                path=path,
                value=value,
                has_value=True,
            )
        return
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if ok and spec.is_int:
        ok = isinstance(value, int)
    if not ok or not spec.low <= value <= spec.high:
        raise ConfigError(
            f"allowed: a value in [{spec.low:g}, {spec.high:g}]",
            path=path,
            value=value,
            has_value=True,
        )


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
