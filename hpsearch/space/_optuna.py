"""The Optuna adapter of a search space: suggestions in the space's order, Optuna's
flat parameter names and distributions, and back.

Optuna is imported only where a function needs it (``import hpsearch`` stays free of it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast

from hpsearch.config._schema import ChoiceParam, FixedParam, RangeParam
from hpsearch.exceptions import ConfigError
from hpsearch.space._layers import join_layers, layer_names, trim_layers

if TYPE_CHECKING:
    import optuna

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
    return the full parameter set (per-layer values as lists)."""
    params: dict[str, Any] = {}
    for dim in space.ordered():
        if not space.uses(dim.name, params):
            continue
        spec = dim.spec
        if isinstance(spec, FixedParam):
            params[dim.name] = spec.value
        elif dim.per_layer:
            names = layer_names(dim.name, space.depth_of(params))
            params[dim.name] = [_suggest_one(trial, name, spec) for name in names]
        else:
            params[dim.name] = _suggest_one(trial, dim.name, spec)
    return trim_layers(params, space.depth_param)


def example_params(space: SearchSpace) -> dict[str, Any]:
    """One full parameter set without a sampler: ranges at their low end, choices at
    their first value."""
    return suggest(space, cast("optuna.trial.BaseTrial", _FirstValues()))


def params_from_optuna(space: SearchSpace, optuna_params: Mapping[str, Any]) -> dict[str, Any]:
    """Rebuild the full parameter set from a stored trial's ``params``.

    A stored name that is not one of the space's searched parameters was sampled by
    a builder that declares its own parameters (``hpsearch.models._hp``): it is
    copied as it is, and replaces a parameter the space holds fixed (a builder that
    samples ``learning_rate``, which the study file leaves at its default).
    """
    params: dict[str, Any] = {}
    for dim in space.ordered():
        if not space.uses(dim.name, params):
            continue
        if isinstance(dim.spec, FixedParam):
            params[dim.name] = optuna_params.get(dim.name, dim.spec.value)
        elif dim.per_layer:
            params[dim.name] = join_layers(dim.name, optuna_params, space.depth_of(params))
        else:
            params[dim.name] = optuna_params[dim.name]
    params = trim_layers(params, space.depth_param)
    for key, value in optuna_params.items():
        if key not in params and not _is_searched(space, key):
            params[key] = value
    return params


def _is_searched(space: SearchSpace, key: str) -> bool:
    """Whether a flat Optuna name is one of the space's searched parameters (or one
    layer's value of one: ``width_2``)."""
    try:
        return space.dim_of(key).searched
    except KeyError:
        return False


def to_optuna_params(space: SearchSpace, values: Mapping[str, Any], *, path: str) -> dict[str, Any]:
    """Turn a user's trial (``{width: [512, 512], ...}``) into Optuna param names.

    Values must lie in the space; fixed parameters may be repeated if equal.
    """
    out: dict[str, Any] = {}
    depth_param = space.depth_param
    depth = values.get(depth_param) if depth_param else None
    if depth is None and depth_param and not space.dims[depth_param].searched:
        depth = space.fixed[depth_param]
    elif depth is not None and depth_param:
        # per-layer values are counted against it: check it before the others
        values = {depth_param: depth, **values}
    for name, value in values.items():
        dim = space.dims.get(name)
        if dim is None:
            raise ConfigError(
                "not a parameter of the space; allowed: " + ", ".join(space.dims),
                path=f"{path}.{name}",
            )
        spec = dim.spec
        if isinstance(spec, FixedParam):
            if value != spec.value:
                raise ConfigError(
                    f"this parameter is fixed to {spec.value!r}",
                    path=f"{path}.{name}",
                    value=value,
                    has_value=True,
                )
        elif dim.per_layer:
            out.update(_per_layer_params(space, name, spec, value, depth, f"{path}.{name}"))
        else:
            _check_in(spec, value, f"{path}.{name}")
            out[name] = value
    return out


def _per_layer_params(
    space: SearchSpace, name: str, spec: RangeParam | ChoiceParam, value: Any, depth: Any, path: str
) -> dict[str, Any]:
    """A user's per-layer value (a list, or one value for every layer) as flat names."""
    if not isinstance(value, list) and depth is not None:
        value = [value] * int(depth)  # one value for every layer
    if not isinstance(value, list) or depth is None or len(value) != int(depth):
        raise ConfigError(
            f"needs one value per layer: give {space.depth_param} too, and as many "
            f"values as {space.depth_param}" + ("" if depth is None else f" ({depth})"),
            path=path,
            value=value,
            has_value=True,
        )
    out: dict[str, Any] = {}
    for i, (key, item) in enumerate(zip(layer_names(name, len(value)), value, strict=True)):
        _check_in(spec, item, f"{path}[{i}]")
        out[key] = item
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
    range and the first of a choice."""

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
