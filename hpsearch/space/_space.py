"""The search space of a study: its dimensions, checked against the model families'
catalogs, and the conditions under which each is used.

A dimension with ``active_if`` conditions (the catalog's ``momentum`` with ``optimizer:
sgd``, or a study file's ``active_if: {regularize: true}``) is suggested after the
parameters they read and only in the trials in which they all hold. When the model
family is a choice (``model.family: {choices: [mlp, cnn]}``), ``family`` is a dimension
too and every parameter of a family's section (``space: {cnn: {blocks: 3}}``) has the
condition ``family: cnn``; it is stored under its family's name (``cnn.blocks``) and
given to the builder under its own (``blocks``). Turning the space into Optuna
suggestions lives in :mod:`hpsearch.space._optuna`, into grids and scikit-learn
distributions in :mod:`hpsearch.space._sklearn`; :class:`hpsearch.space.SearchSpace`
(:mod:`._public`) adds both to this core as methods.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hpsearch.config._schema import ChoiceParam, FixedParam, RangeParam, StudyConfig
from hpsearch.exceptions import ConfigError
from hpsearch.models._catalog import (
    BUILTIN_FAMILIES,
    Condition,
    Family,
    ParamDef,
    get_family,
    training_params,
)
from hpsearch.space._layers import parse_layer_name

__all__ = ["FAMILY", "Dim", "SpaceCore", "Spec"]

Spec = RangeParam | ChoiceParam | FixedParam

FAMILY = "family"
"""The name of the model family when it is a hyperparameter (stored and given to builders)."""


@dataclass(frozen=True)
class Dim:
    """One parameter of the space.

    ``name`` is what Optuna and scikit-learn see (``cnn.blocks`` in a section of a family
    choice, else the parameter's own name); ``param`` what the builder reads
    (``blocks``). ``active_if`` (on stored names) says when it is used, ``family`` which
    family's section it is in (None: every family's), ``depth_key`` which depth a
    per-layer value follows.
    """

    name: str
    spec: Spec
    pdef: ParamDef | None
    active_if: tuple[Condition, ...] = ()
    param: str = ""
    family: str | None = None
    depth_key: str | None = None

    def __post_init__(self) -> None:
        if not self.param:
            object.__setattr__(self, "param", self.name)

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
        names = config.model.families
        _check_families(names)
        task = config.task if config.task != "auto" else "classification"
        self.families: dict[str, Family] = {name: get_family(name, task) for name in names}
        self.multi = len(names) > 1
        shared = {k: v for k, v in config.space.items() if not isinstance(v, dict)}
        sections = {k: v for k, v in config.space.items() if isinstance(v, dict)}
        self.unused_sections = _check_sections(sections, names)
        self.dims: dict[str, Dim] = {}
        self._user_conditions: dict[str, tuple[str, Any]] = {}
        if self.multi:
            self.dims[FAMILY] = Dim(FAMILY, ChoiceParam(choices=list(names)), None)
        self._add_shared(shared)
        in_sections = {n for f in names for n in sections.get(f, {})}
        for name, pdef in training_params(task).items():  # one default for every family
            if self.multi and name not in shared and name not in in_sections:
                shared[name] = FixedParam(value=pdef.default)
                self.dims[name] = Dim(name, shared[name], pdef)
        for name, family in self.families.items():
            self._add_section(family, sections.get(name, {}), shared)
        self.dims = {key: self._with_conditions(dim) for key, dim in self.dims.items()}
        # the depths first: checking a per-layer list reads them
        depths = {d.depth_key for d in self.dims.values()}
        for dim in sorted(self.dims.values(), key=lambda d: d.name not in depths):
            self._check(dim)
        self._check_conditions()
        self._order = self._resolve_order()

    # -------------------------------------------------------------- building
    def _add_shared(self, shared: Mapping[str, Spec]) -> None:
        """The parameters outside any section: every family's."""
        for name, spec in shared.items():
            path = f"space.{name}"
            if name == FAMILY:
                raise ConfigError(
                    "the model family is set by model.family (a name or {choices: [...]})",
                    path=path,
                )
            pdef = self._shared_def(name, path)
            depth_key = None
            if _is_per_layer(spec):
                if self.multi:
                    raise ConfigError(
                        "per-layer values follow one family's depth: set them in that "
                        "family's section (space.<family>.{name})",
                        path=path,
                    )
                depth_key = self._single.depth_param
            self._user_conditions[name] = (path, spec.active_if)
            self.dims[name] = Dim(name, spec, pdef, depth_key=depth_key)

    def _shared_def(self, name: str, path: str) -> ParamDef | None:
        """The catalog entry of a parameter every family shares; refuse one that some
        built-in family does not know, or that means different things in two."""
        defs = {}
        for family in self.families.values():
            if family.is_user:
                continue
            pdef = family.all_params().get(name)
            if pdef is None:
                where = (
                    ""
                    if not self.multi
                    else f" (put it in a family's section: space.<family>.{name})"
                )
                raise ConfigError(
                    f"unknown parameter for model family {family.name!r}{where}; allowed: "
                    + ", ".join(family.all_params()),
                    path=path,
                )
            defs[family.name] = pdef
        if len(set(map(repr, defs.values()))) > 1:
            raise ConfigError(
                "means different things in " + " and ".join(defs) + ": set it in each "
                "family's section (space.<family>." + name + ")",
                path=path,
            )
        return next(iter(defs.values()), None)

    def _add_section(
        self, family: Family, section: Mapping[str, Spec], shared: Mapping[str, Any]
    ) -> None:
        """One family's parameters: its section, then its catalog's defaults."""
        prefix = f"{family.name}." if self.multi else ""
        known = family.all_params()
        depth_key = None if family.depth_param is None else prefix + family.depth_param
        for name, spec in section.items():
            path = f"space.{family.name}.{name}"
            if name in shared:
                raise ConfigError(f"given twice: as space.{name} too; keep one", path=path)
            pdef = known.get(name)
            if pdef is None and not family.is_user:
                raise ConfigError(
                    f"unknown parameter for model family {family.name!r}; allowed: "
                    + ", ".join(known),
                    path=path,
                )
            key = prefix + name
            self._user_conditions[key] = (path, spec.active_if)
            self.dims[key] = self._section_dim(key, name, spec, pdef, family, depth_key)
        for name, pdef in known.items():
            if name not in shared and name not in section:
                spec = FixedParam(value=pdef.default)
                self.dims[prefix + name] = self._section_dim(
                    prefix + name, name, spec, pdef, family, depth_key
                )

    def _section_dim(
        self,
        key: str,
        name: str,
        spec: Spec,
        pdef: ParamDef | None,
        family: Family,
        depth_key: str | None,
    ) -> Dim:
        return Dim(
            key,
            spec,
            pdef,
            param=name,
            family=family.name if self.multi else None,
            depth_key=depth_key if _is_per_layer(spec) else None,
        )

    def _with_conditions(self, dim: Dim) -> Dim:
        """``dim`` with its conditions: its family's, the catalog's and the file's."""
        conds: list[Condition] = []
        if dim.family is not None:
            conds.append(Condition(FAMILY, (dim.family,)))
        if dim.pdef is not None:
            conds += [
                Condition(self._resolve(c.param, dim.family), c.values) for c in dim.pdef.active_if
            ]
        path, active_if = self._user_conditions.get(dim.name, ("", None))
        for parent, values in (active_if or {}).items():
            key = self._resolve(parent, dim.family)
            if key not in self.dims:
                raise ConfigError(
                    "not a parameter of the space; allowed: "
                    + ", ".join(sorted(self._visible(dim.family) - {dim.param})),
                    path=f"{path}.active_if.{parent}",
                )
            values = tuple(values) if isinstance(values, list) else (values,)
            self._check_condition_values(key, values, f"{path}.active_if.{parent}")
            conds.append(Condition(key, values))
        return Dim(dim.name, dim.spec, dim.pdef, tuple(conds), dim.param, dim.family, dim.depth_key)

    def _resolve(self, name: str, family: str | None) -> str:
        """The stored name a condition of a parameter of ``family``'s section means by
        ``name``: its own section's parameter, else the shared one (or a stored name)."""
        if family is not None and f"{family}.{name}" in self.dims:
            return f"{family}.{name}"
        return name

    def _visible(self, family: str | None) -> set[str]:
        """The names a condition in ``family``'s section (or a shared one) may read."""
        names = {d.param for d in self.dims.values() if d.family in (None, family)}
        return names if family is not None else {d.name for d in self.dims.values()}

    def _check_condition_values(self, key: str, values: tuple[Any, ...], path: str) -> None:
        """Refuse a condition value the parent can never take (a misspelt choice)."""
        parent = self.dims[key]
        for value in values:
            if not _can_take(parent.spec, (value,)):
                raise ConfigError(
                    f"{parent.param} never takes this value; it takes " + _values_text(parent.spec),
                    path=path,
                    value=value,
                    has_value=True,
                )

    @property
    def _single(self) -> Family:
        return next(iter(self.families.values()))

    # ------------------------------------------------------------------ checks
    @property
    def family(self) -> Family:
        """The model family of a study with one (the first of a choice)."""
        return self._single

    @property
    def depth_param(self) -> str | None:
        """The depth parameter of a study with one family (None with a choice)."""
        return None if self.multi else self._single.depth_param

    def depth_range(self, depth_key: str | None = None) -> tuple[int, int]:
        """The least and the most layers a trial can have ((1, 1) without a depth)."""
        depth_key = depth_key or self.depth_param
        if depth_key is None:
            return (1, 1)
        spec = self.dims[depth_key].spec
        if isinstance(spec, FixedParam):
            value = spec.value  # never a list: the depth is checked before the others
            depth = int(value[0] if isinstance(value, list) else value)
            return (depth, depth)
        if isinstance(spec, ChoiceParam):
            values = [int(v) for v in spec.choices]
            return (min(values), max(values))
        return (int(spec.low), int(spec.high))

    def _path(self, dim: Dim) -> str:
        return f"space.{dim.family}.{dim.param}" if dim.family else f"space.{dim.param}"

    def _check(self, dim: Dim) -> None:
        path = self._path(dim)
        spec, pdef = dim.spec, dim.pdef
        if dim.per_layer and (pdef is None or not pdef.per_layer):
            family = self.families.get(dim.family or "", self._single)
            allowed = [n for n, d in family.all_params().items() if d.per_layer]
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
                low, high = self.depth_range(dim.depth_key)
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
                        f"{dim.param} is used only with {other.param} {values}; "
                        f"fix it or search {values}",
                        path=self._path(dim),
                    )

    def _resolve_order(self) -> tuple[Dim, ...]:
        """The order of :meth:`ordered`; raises ConfigError for conditions in a cycle."""
        depths = [d.depth_key for d in self.dims.values() if d.depth_key]
        depths += [] if self.depth_param is None else [self.depth_param]
        first = [FAMILY] if self.multi else []
        first += [k for k in dict.fromkeys(depths) if k in self.dims and k not in first]
        plain = [n for n, d in self.dims.items() if n not in first and not d.active_if]
        waiting = first + plain + [n for n in self.dims if n not in first and n not in plain]
        placed: list[str] = []
        while waiting:
            ready = next((n for n in waiting if self._ready(n, placed)), None)
            if ready is None:
                dim = self.dims[waiting[0]]
                raise ConfigError(
                    "these parameters' conditions depend on each other: "
                    + ", ".join(self.dims[n].param for n in waiting),
                    path=self._path(dim),
                )
            placed.append(ready)
            waiting.remove(ready)
        return tuple(self.dims[name] for name in placed)

    def _ready(self, name: str, placed: list[str]) -> bool:
        """Whether every parameter ``name``'s conditions and depth read is placed."""
        dim = self.dims[name]
        reads = [c.param for c in dim.active_if] + ([dim.depth_key] if dim.depth_key else [])
        return all(p in placed or p not in self.dims for p in reads)

    # ------------------------------------------------------------ inspection
    @property
    def searched(self) -> dict[str, Dim]:
        """The parameters that vary between trials, in declaration order."""
        return {n: d for n, d in self.dims.items() if d.searched}

    @property
    def fixed(self) -> dict[str, Any]:
        """The parameters that are the same in every trial (by stored name)."""
        return {n: d.spec.value for n, d in self.dims.items() if isinstance(d.spec, FixedParam)}

    def max_value(self, name: str) -> Any:
        """The largest value a numeric parameter can take (in any family)."""
        return max(_max_of(d.spec) for d in self.dims.values() if name in (d.name, d.param))

    def ordered(self) -> Sequence[Dim]:
        """Every dimension in suggestion order: the family and the depths first (the
        others' conditions and per-layer values read them), then the unconditional
        parameters in declaration order, then the conditional ones in declaration
        order, each after the parameters its conditions read. Seeded samplers depend on
        the order of the ``suggest`` calls: keep it."""
        return self._order

    def uses(self, name: str, params: Mapping[str, Any]) -> bool:
        """Whether the parameter stored as ``name`` is active given the active values
        chosen so far (by stored name; a parameter read by a condition but not chosen,
        or inactive, fails it)."""
        dim = self.dims.get(name)
        return dim is None or all(cond.holds(params) for cond in dim.active_if)

    def depth_of(self, params: Mapping[str, Any], dim: Dim | None = None) -> int:
        """The number of layers of a parameter set (chosen values by stored name) for
        ``dim``'s per-layer values (default: the single family's)."""
        key = dim.depth_key if dim is not None else self.depth_param
        assert key is not None, "per-layer values need a depth parameter"
        return int(params[key])

    def owns(self, key: str) -> bool:
        """Whether a flat (Optuna or scikit-learn) name is one of this space's."""
        if key in self.dims:
            return True
        parsed = parse_layer_name(key)
        return parsed is not None and parsed[0] in self.dims and self.dims[parsed[0]].per_layer

    def dim_of(self, key: str) -> Dim:
        """The dimension of a flat (Optuna or scikit-learn) name: ``width_2`` -> width."""
        dim = self.dims.get(key)
        if dim is None:
            parsed = parse_layer_name(key)
            dim = self.dims[parsed[0] if parsed else key]
        return dim

    def builder_params(self, chosen: Mapping[str, Any]) -> dict[str, Any]:
        """The parameter set a builder gets from the active values by stored name: its
        own names (``blocks``, not ``cnn.blocks``), per-layer lists cut to the depth."""
        out: dict[str, Any] = {}
        for key, value in chosen.items():
            dim = self.dims.get(key)
            if dim is None:
                out[key] = value
                continue
            if isinstance(value, list) and dim.depth_key is not None:
                value = value[: int(chosen[dim.depth_key])]
            out[dim.param] = value
        return out

    def key_of(self, name: str, family: str | None) -> str | None:
        """The stored name of a builder's parameter ``name`` in a trial of ``family``
        (a stored name is taken as it is), or None if that family has no such parameter."""
        if name in self.dims and self.dims[name].family in (None, family):
            return name
        key = f"{family}.{name}"
        return key if key in self.dims else None

    def family_of(self, params: Mapping[str, Any]) -> str:
        """The family of a trial's parameter set."""
        return str(params.get(FAMILY, self._single.name)) if self.multi else self._single.name

    def active(self, flat: Mapping[str, Any]) -> dict[str, Any]:
        """Keep the searched values a candidate really uses: its layers, and the
        parameters whose conditions hold (momentum with sgd, cnn.blocks with cnn)."""
        known = {**self.fixed, **flat}
        chosen: dict[str, Any] = {}
        used = set()
        for dim in self._order:
            if self.uses(dim.name, chosen):
                used.add(dim.name)
                if dim.name in known:
                    chosen[dim.name] = known[dim.name]
        out = {}
        for name, value in flat.items():
            base, parsed = name, parse_layer_name(name)
            if parsed is not None and parsed[0] in self.dims and self.dims[parsed[0]].per_layer:
                base = parsed[0]
                dim = self.dims[base]
                if dim.depth_key is not None and parsed[1] > int(known[dim.depth_key]):
                    continue
            if base in used or base not in self.dims:
                out[name] = value
        return out

    def describe(self) -> list[tuple[str, str]]:
        """(name, description) rows for ``hpsearch validate``: a tree when the family is
        a choice (each family's parameters under it)."""
        rows = [(d.name, self._describe(d)) for d in self._order if d.family is None]
        for family in self.families if self.multi else ():
            rows.append((f"{family}:", "when family is " + family))
            rows += [("  " + d.param, self._describe(d)) for d in self._order if d.family == family]
        return rows

    def _describe(self, dim: Dim) -> str:
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
            depth = self.dims[dim.depth_key].param if dim.depth_key else self.depth_param
            text += f" per layer (1 per {depth})"
        for cond in dim.active_if:
            if cond.param == FAMILY:
                continue
            parent = self.dims[cond.param].param if cond.param in self.dims else cond.param
            text += f" (only with {parent} {cond.values_text()})"
        return text


def _check_families(names: Sequence[str]) -> None:
    for i, family in enumerate(names):
        path = "model.family" if len(names) == 1 else f"model.family.choices[{i}]"
        if family not in BUILTIN_FAMILIES and ":" not in family:
            raise ConfigError(
                "allowed: " + ", ".join(BUILTIN_FAMILIES) + ", or package.module:function",
                path=path,
                value=family,
                has_value=True,
            )
        if family in names[:i]:
            raise ConfigError("choices must be distinct", path=path, value=family, has_value=True)


def _check_sections(sections: Mapping[str, Any], families: Sequence[str]) -> list[str]:
    """The sections of families the study does not choose (left unused, so that
    ``--set model.family=cnn`` narrows a choice); refuse any other mapping."""
    unused = []
    for name in sections:
        if name in families:
            continue
        if name in BUILTIN_FAMILIES or ":" in name:
            unused.append(name)
            continue
        raise ConfigError(
            "a parameter is a value, {low, high[, log, step]}, {choices: [...]} or "
            "{value: ...}; a section of parameters is for a family of model.family ("
            + ", ".join(families)
            + ")",
            path=f"space.{name}",
        )
    return unused


def _is_per_layer(spec: Spec) -> bool:
    if isinstance(spec, FixedParam):
        return isinstance(spec.value, list)
    return spec.per_layer


def _max_of(spec: Spec) -> Any:
    if isinstance(spec, FixedParam):
        return max(spec.value) if isinstance(spec.value, list) else spec.value
    if isinstance(spec, ChoiceParam):
        return max(spec.choices)
    return spec.high


def _values_text(spec: Spec) -> str:
    if isinstance(spec, FixedParam):
        return f"only {spec.value!r}"
    if isinstance(spec, ChoiceParam):
        return "one of " + ", ".join(map(str, spec.choices))
    return f"values in [{spec.low:g}, {spec.high:g}]"


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
