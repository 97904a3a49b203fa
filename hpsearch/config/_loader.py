"""Read a study file's configuration: YAML (safe loader), command-line overrides, and
the pydantic schema (:func:`validate_config`). What the configuration means for a run
(space, objectives, storage, builders) is checked by :mod:`hpsearch.study`.

All mistakes come out as :class:`~hpsearch.exceptions.ConfigError` with the file,
the key path, the value and what is allowed.
"""

from __future__ import annotations

import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from hpsearch.config._schema import ChoiceParam, FixedParam, RangeParam, StudyConfig
from hpsearch.exceptions import ConfigError

__all__ = ["apply_overrides", "pydantic_error", "read_yaml_mapping", "validate_config"]

_PARAM_MODELS: dict[str, type[BaseModel]] = {
    "range": RangeParam,
    "choice": ChoiceParam,
    "fixed": FixedParam,
}
_TAGS = set(_PARAM_MODELS)


def read_yaml_mapping(source: Path, label: str, kind: str, keys: str) -> dict[str, Any]:
    """Read a YAML file (safe loader) that must hold a mapping; errors name the file.

    Args:
        source: the file.
        label: the name to use in messages (as the user gave it).
        kind: what the file is, e.g. "study file".
        keys: the keys it usually has, for the message when it is not a mapping.
    """
    try:
        text = source.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{kind} not found", source=label) from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the {kind}: {exc}", source=label) from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{where}malformed YAML: {problem}", source=label) from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(
            f"a {kind} must be a mapping of keys ({keys})",
            source=label,
            value=type(raw).__name__,
            has_value=True,
        )
    return raw


def apply_overrides(raw: Mapping[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Return a copy of ``raw`` with ``key.path=value`` overrides applied (Hydra style)."""
    import copy

    out = copy.deepcopy(dict(raw))
    for item in overrides:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(
                "an override must look like key.path=value",
                path="--set",
                value=item,
                has_value=True,
            )
        try:
            value = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError:
            value = text
        parts = key.split(".")
        node: Any = out
        for depth, part in enumerate(parts[:-1]):
            child = _child(node, part)
            if child is None:
                child = {}
                _set(node, part, child, ".".join(parts[: depth + 1]))
            elif not isinstance(child, dict | list):
                raise ConfigError("cannot set a key inside a plain value", path=key)
            node = child
        _set(node, parts[-1], value, key)
    return out


def _child(node: Any, part: str) -> Any:
    if isinstance(node, list):
        return node[int(part)] if part.isdigit() and int(part) < len(node) else None
    return node.get(part)


def _set(node: Any, part: str, value: Any, path: str) -> None:
    if isinstance(node, list):
        if not part.isdigit() or int(part) >= len(node):
            raise ConfigError(f"list index out of range (size {len(node)})", path=path)
        node[int(part)] = value
    else:
        node[part] = value


def _from_pydantic(exc: ValidationError, raw: Mapping[str, Any]) -> ConfigError:
    errors = exc.errors()
    # an unknown key explains the other errors it causes (a misspelt 'low' is also a missing one)
    first = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    loc = [
        p
        for i, p in enumerate(first["loc"])
        if not (i == 2 and p in _TAGS and first["loc"][0] == "space")
    ]
    loc = [p for p in loc if not (isinstance(p, str) and p.startswith("function-"))]
    if loc[:2] == ["objective", 0] and not isinstance(raw.get("objective"), list):
        loc = ["objective", *loc[2:]]  # the user wrote one mapping, not a list
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    kind = first["type"]
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    if kind == "extra_forbidden":
        raw_loc = first["loc"]
        if raw_loc[0] == "space" and len(raw_loc) > 3 and raw_loc[2] in _TAGS:
            allowed = list(_PARAM_MODELS[str(raw_loc[2])].model_fields)
        else:
            allowed = _allowed_keys(loc[:-1])
        return ConfigError(f"unknown key; allowed: {', '.join(allowed)}{more}", path=path)
    return pydantic_error(first, path, more)


def pydantic_error(error: Mapping[str, Any], path: str, more: str = "") -> ConfigError:
    """One pydantic error as a ConfigError: the message, the key path and the value."""
    msg = str(error["msg"]).removeprefix("Value error, ")
    value = error.get("input")
    has_value = error["type"] != "missing" and not isinstance(value, dict)
    return ConfigError(
        msg[0].lower() + msg[1:] + more, path=path or None, value=value, has_value=has_value
    )


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model inside ``X``, ``list[X]`` or ``Annotated[X, ...]``."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _allowed_keys(loc: Sequence[Any]) -> list[str]:
    model: type[BaseModel] | None = StudyConfig
    for part in loc:
        if model is None:
            break
        if isinstance(part, int):
            continue
        info = model.model_fields.get(part)
        model = _model_in(getattr(info, "annotation", None))
    if model is None:
        return []
    return list(model.model_fields)


def validate_config(raw: Mapping[str, Any]) -> StudyConfig:
    """The schema's view of a study given as a dict.

    Raises:
        ConfigError: the first mistake, with its key path (``search.sampler: got ...``).
    """
    try:
        return StudyConfig.model_validate(raw)
    except ValidationError as exc:
        raise _from_pydantic(exc, raw) from None
