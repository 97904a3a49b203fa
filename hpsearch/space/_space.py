"""The search space of a study: its dimensions, checked against the model family's
catalog, and the conditions under which each is used.

A dimension whose catalog entry has ``active_if`` conditions (``momentum`` with
``optimizer: sgd``) is suggested after the parameters they read and only for the
trials in which they all hold. Turning the space into Optuna suggestions lives in
:mod:`hpsearch.space._optuna`, into grids and scikit-learn distributions in
:mod:`hpsearch.space._sklearn`; :class:`hpsearch.space.SearchSpace` (:mod:`._public`) adds
both to this core as methods.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hpsearch.config._schema import ChoiceParam, FixedParam, RangeParam, StudyConfig
from hpsearch.exceptions import ConfigError
from hpsearch.models._catalog import BUILTIN_FAMILIES, Condition, ParamDef, get_family
from hpsearch.space._layers import parse_layer_name

__all__ = ["Dim", "SpaceCore", "Spec"]

Spec = RangeParam | ChoiceParam | FixedParam


@dataclass(frozen=True)
class Dim:
    """One parameter of the space: its spec, for known names its definition, and the
    conditions under which it is used (its definition's ``active_if``)."""

    name: str
    spec: Spec
    pdef: ParamDef | None
    active_if: tuple[Condition, ...] = ()

    @property
    def searched(self) -> bool:
        return not isinstance(self.spec, FixedParam)

    @property
    def per_layer(self) -> bool:
        if isinstance(self.spec, FixedParam):
            return isinstance(self.spec.value, list)
        return self.spec.per_layer


class SpaceCore:
    """The dimensions of a study's space, checked against the catalog, with the
    conditions under which each is used; :class:`hpsearch.space.SearchSpace` adds the
    Optuna and scikit-learn adapters."""

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
            dims[name] = _dim(name, spec, pdef)
        for name, pdef in known.items():
            if name not in dims:
                dims[name] = _dim(name, FixedParam(value=pdef.default), pdef)
        self.dims = dims
        # the depth first: checking a per-layer list reads it
        for dim in sorted(dims.values(), key=lambda d: d.name != self.depth_param):
            self._check(dim)
        self._check_conditions()
        self._order = self._resolve_order()

    # ------------------------------------------------------------------ checks
    def depth_range(self) -> tuple[int, int]:
        """The least and the most layers a trial can have ((1, 1) without a depth)."""
        if self.depth_param is None:
            return (1, 1)
        spec = self.dims[self.depth_param].spec
        if isinstance(spec, FixedParam):
            value = spec.value  # never a list: the depth is checked before the others
            depth = int(value[0] if isinstance(value, list) else value)
            return (depth, depth)
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
            _check_range(path, spec, pdef)
        elif isinstance(spec, ChoiceParam):
            _check_choices(path, spec, pdef)
        else:
            values = spec.value if isinstance(spec.value, list) else [spec.value]
            for value in values:
                if pdef is not None and not pdef.check(value):
                    raise ConfigError(
                        f"allowed: {pdef.allowed()}", path=path, value=value, has_value=True
                    )
            if isinstance(spec.value, list):
                low, high = self.depth_range()
                n = len(spec.value)
                if n < high or (low == high and n != low):
                    raise ConfigError(
                        f"a per-layer list needs one value per layer ({high} here)",
                        path=path,
                        value=spec.value,
                        has_value=True,
                    )

    def _check_conditions(self) -> None:
        """Refuse a searched parameter that no trial would use: a condition of it
        reads a parameter that can never take one of the condition's values."""
        for dim in self.dims.values():
            if not dim.searched:
                continue
            for cond in dim.active_if:
                other = self.dims.get(cond.param)
                if other is not None and not _can_take(other.spec, cond.values):
                    values = cond.values_text()
                    raise ConfigError(
                        f"{dim.name} is used only with {cond.param} {values}; "
                        f"fix it or search {values}",
                        path=f"space.{dim.name}",
                    )

    def _resolve_order(self) -> tuple[Dim, ...]:
        """The order of :meth:`ordered`; raises ConfigError for conditions in a cycle."""
        placed = [] if self.depth_param is None else [self.depth_param]
        placed += [n for n, d in self.dims.items() if n not in placed and not d.active_if]
        waiting = [n for n in self.dims if n not in placed]
        while waiting:
            ready = [n for n in waiting if self._conditions_read(n, placed)]
            if not ready:
                raise ConfigError(
                    "these parameters' conditions depend on each other: " + ", ".join(waiting),
                    path=f"space.{waiting[0]}",
                )
            placed.append(ready[0])
            waiting.remove(ready[0])
        return tuple(self.dims[name] for name in placed)

    def _conditions_read(self, name: str, placed: list[str]) -> bool:
        """Whether every parameter ``name``'s conditions read is placed (or unknown)."""
        return all(c.param in placed or c.param not in self.dims for c in self.dims[name].active_if)

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

    def ordered(self) -> Sequence[Dim]:
        """Every dimension in suggestion order: the depth first (per-layer values read
        it), then the unconditional parameters in declaration order, then the
        conditional ones in declaration order, each after the parameters its conditions
        read. Seeded samplers depend on the order of the ``suggest`` calls: keep it."""
        return self._order

    def uses(self, name: str, params: Mapping[str, Any]) -> bool:
        """Whether parameter ``name`` is active given the active params chosen so far
        (a parameter read by a condition but not chosen, or inactive, fails it)."""
        dim = self.dims.get(name)
        return dim is None or all(cond.holds(params) for cond in dim.active_if)

    def depth_of(self, params: Mapping[str, Any]) -> int:
        """The number of layers of a parameter set (of a family with per-layer values)."""
        assert self.depth_param is not None, "per-layer values need a depth parameter"
        return int(params[self.depth_param])

    def dim_of(self, key: str) -> Dim:
        """The dimension of a flat (Optuna or scikit-learn) name: ``width_2`` -> width."""
        dim = self.dims.get(key)
        if dim is None:
            parsed = parse_layer_name(key)
            dim = self.dims[parsed[0] if parsed else key]
        return dim

    def active(self, flat: Mapping[str, Any]) -> dict[str, Any]:
        """Keep the searched values a candidate really uses: its layers, and the
        parameters whose conditions hold (momentum with sgd)."""
        known = {**self.fixed, **flat}
        chosen: dict[str, Any] = {}
        inactive = set()
        for dim in self._order:
            if not self.uses(dim.name, chosen):
                inactive.add(dim.name)
            elif dim.name in known:
                chosen[dim.name] = known[dim.name]
        out = {}
        for name, value in flat.items():
            base, parsed = name, parse_layer_name(name)
            if parsed is not None and parsed[0] in self.dims and self.dims[parsed[0]].per_layer:
                base = parsed[0]
                if parsed[1] > self.depth_of(known):
                    continue
            if base not in inactive:
                out[name] = value
        return out

    def describe(self) -> list[tuple[str, str]]:
        """(name, description) rows for ``hpsearch validate``."""
        rows = []
        for dim in self._order:
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
            for cond in dim.active_if:
                text += f" ({cond.values_text()} only)"
            rows.append((dim.name, text))
        return rows


def _dim(name: str, spec: Spec, pdef: ParamDef | None) -> Dim:
    return Dim(name, spec, pdef, active_if=() if pdef is None else pdef.active_if)


def _can_take(spec: Spec, values: tuple[Any, ...]) -> bool:
    """Whether a parameter with ``spec`` can take one of ``values``."""
    if isinstance(spec, FixedParam):
        return spec.value in values
    if isinstance(spec, ChoiceParam):
        return any(choice in values for choice in spec.choices)
    return any(
        isinstance(v, int | float) and not isinstance(v, bool) and spec.low <= v <= spec.high
        for v in values
    )


def _check_choices(path: str, spec: ChoiceParam, pdef: ParamDef | None) -> None:
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


def _check_range(path: str, spec: RangeParam, pdef: ParamDef | None) -> None:
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
        raise ConfigError("step must be > 0", path=f"{path}.step", value=spec.step, has_value=True)
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
