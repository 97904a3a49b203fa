"""The Optuna adapter of a search space: suggestions in the space's order, Optuna's
flat parameter names and distributions, and back.

Optuna is imported only where a function needs it (``import hpsearch`` stays free of it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast

from hpsearch.config._schema import ChoiceParam, FixedParam, RangeParam
from hpsearch.exceptions import ConfigError
from hpsearch.space._layers import join_layers, layer_names
from hpsearch.space._space import FAMILY

if TYPE_CHECKING:
    import optuna

    from hpsearch.space._space import Dim
    from hpsearch.space._space import SpaceCore as SearchSpace

__all__ = [
    "example_params",
    "optuna_distributions",
    "params_from_optuna",
    "suggest",
    "to_optuna_params",
]


def suggest(space: SearchSpace, trial: optuna.trial.BaseTrial) -> dict[str, Any]:
    """Ask ``trial`` for every searched parameter that is active, in the space's order;
    return the builder's parameter set (its own names, per-layer values as lists)."""
    chosen: dict[str, Any] = {}
    for dim in space.ordered():
        if not space.uses(dim.name, chosen):
            continue
        spec = dim.spec
        if isinstance(spec, FixedParam):
            chosen[dim.name] = spec.value
        elif dim.per_layer:
            names = layer_names(dim.name, space.depth_of(chosen, dim))
            chosen[dim.name] = [_suggest_one(trial, name, spec) for name in names]
        else:
            chosen[dim.name] = _suggest_one(trial, dim.name, spec)
    return space.builder_params(chosen)


def example_params(space: SearchSpace, family: str | None = None) -> dict[str, Any]:
    """One full parameter set without a sampler: ranges at their low end, choices at
    their first value (the family ``family`` if given)."""
    return suggest(space, cast("optuna.trial.BaseTrial", _FirstValues(family)))


def params_from_optuna(space: SearchSpace, optuna_params: Mapping[str, Any]) -> dict[str, Any]:
    """Rebuild the builder's parameter set from a stored trial's ``params``; stored
    values that are not the space's (a builder's own suggestions) are kept as they are,
    and a stored value replaces a parameter the space holds fixed (a builder that
    declares its own parameters sampled ``learning_rate``, which the study file leaves at
    its default: see ``hpsearch.models._hp``)."""
    chosen: dict[str, Any] = {}
    for dim in space.ordered():
        if not space.uses(dim.name, chosen):
            continue
        if isinstance(dim.spec, FixedParam):
            chosen[dim.name] = optuna_params.get(dim.name, dim.spec.value)
        elif dim.per_layer:
            chosen[dim.name] = join_layers(dim.name, optuna_params, space.depth_of(chosen, dim))
        else:
            chosen[dim.name] = optuna_params[dim.name]
    params = space.builder_params(chosen)
    for key, value in optuna_params.items():
        if not space.owns(key):
            params.setdefault(key, value)
    return params


def to_optuna_params(space: SearchSpace, values: Mapping[str, Any], *, path: str) -> dict[str, Any]:
    """Turn a user's trial (``{width: [512, 512], ...}``; with a family choice
    ``{family: cnn, blocks: 3, ...}``) into Optuna param names.

    Values must lie in the space; fixed parameters may be repeated if equal.
    """
    out: dict[str, Any] = {}
    family = _family_of(space, values, path)
    if space.multi:
        out[FAMILY] = family
    keyed: dict[str, Any] = {}
    for name, value in values.items():
        if name == FAMILY and space.multi:
            continue
        key = space.key_of(name, family)
        if key is None:
            allowed = sorted({d.param for d in space.dims.values() if d.family in (None, family)})
            where = f"the space of family {family}" if space.multi else "the space"
            raise ConfigError(
                f"not a parameter of {where}; allowed: " + ", ".join(allowed),
                path=f"{path}.{name}",
            )
        keyed[key] = value
    depths = _depths(space, keyed)
    # the depths first: per-layer values are counted against them
    for key, value in sorted(keyed.items(), key=lambda item: item[0] not in depths):
        dim = space.dims[key]
        spec = dim.spec
        where = f"{path}.{dim.param}"
        if isinstance(spec, FixedParam):
            if value != spec.value:
                raise ConfigError(
                    f"this parameter is fixed to {spec.value!r}",
                    path=where,
                    value=value,
                    has_value=True,
                )
        elif dim.per_layer:
            depth_dim = space.dims[dim.depth_key] if dim.depth_key else None
            depth = None if dim.depth_key is None else depths.get(dim.depth_key)
            out.update(_per_layer_params(key, depth_dim, spec, value, depth, where))
        else:
            _check_in(spec, value, where)
            out[key] = value
    return out


def _family_of(space: SearchSpace, values: Mapping[str, Any], path: str) -> str:
    """The family a user's trial names (required when the family is a choice)."""
    if not space.multi:
        return space.family.name
    family = values.get(FAMILY)
    if family not in space.families:
        raise ConfigError(
            "the trial's model family is required; allowed: " + ", ".join(space.families),
            path=f"{path}.{FAMILY}",
            value=family,
            has_value=family is not None,
        )
    return str(family)


def _depths(space: SearchSpace, keyed: Mapping[str, Any]) -> dict[str, Any]:
    """The depth of each per-layer value of a user's trial: given, or fixed."""
    out: dict[str, Any] = {}
    for dim in space.dims.values():
        key = dim.depth_key
        if key is None or key in out:
            continue
        if key in keyed:
            out[key] = keyed[key]
        elif not space.dims[key].searched:
            out[key] = space.fixed[key]
    return out


def _per_layer_params(
    key: str,
    depth_dim: Dim | None,
    spec: RangeParam | ChoiceParam,
    value: Any,
    depth: Any,
    path: str,
) -> dict[str, Any]:
    """A user's per-layer value (a list, or one value for every layer) as flat names."""
    depth_name = "the depth" if depth_dim is None else depth_dim.param
    if not isinstance(value, list) and depth is not None:
        value = [value] * int(depth)  # one value for every layer
    if not isinstance(value, list) or depth is None or len(value) != int(depth):
        raise ConfigError(
            f"needs one value per layer: give {depth_name} too, and as many "
            f"values as {depth_name}" + ("" if depth is None else f" ({depth})"),
            path=path,
            value=value,
            has_value=True,
        )
    out: dict[str, Any] = {}
    for i, (name, item) in enumerate(zip(layer_names(key, len(value)), value, strict=True)):
        _check_in(spec, item, f"{path}[{i}]")
        out[name] = item
    return out


def optuna_distributions(space: SearchSpace, flat: Mapping[str, Any]) -> dict[str, Any]:
    """The Optuna distribution of each searched value in ``flat`` (for stored trials)."""
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    out: dict[str, Any] = {}
    for name in flat:
        if not space.owns(name):
            continue
        spec = space.dim_of(name).spec
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


class _FirstValues:
    """Answers the ``suggest_*`` calls of :func:`suggest` with the lowest value of a
    range and the first of a choice (``family`` for the family if given)."""

    def __init__(self, family: str | None = None) -> None:
        self.family = family

    def suggest_categorical(self, name: str, choices: Any) -> Any:
        if name == FAMILY and self.family is not None:
            return self.family
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
