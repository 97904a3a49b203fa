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
from hpsearch.config._yaml import (
    MAX_DEPTH,
    Refused,
    check_text_size,
    describe_yaml_error,
    parse_yaml,
    read_yaml_file,
)
from hpsearch.exceptions import ConfigError

__all__ = ["apply_overrides", "pydantic_error", "read_yaml_mapping", "validate_config"]

_PARAM_MODELS: dict[str, type[BaseModel]] = {
    "range": RangeParam,
    "choice": ChoiceParam,
    "fixed": FixedParam,
}
_TAGS = set(_PARAM_MODELS)
KEYS_MUST_BE_STRINGS = "keys must be strings (quote a key that looks like a number, a date or null)"


def unexpected_error(exc: Exception, label: str, kind: str) -> ConfigError:
    """The last resort for an exception that escaped reading or checking a user's file:
    a ConfigError naming the file (chained to ``exc``, so ``--debug`` shows where)."""
    text = " ".join(str(exc).split())[:200]
    return ConfigError(
        f"cannot check this {kind}: unexpected {type(exc).__name__}"
        + (f": {text}" if text else "")
        + " (hpsearch --debug shows the traceback)",
        source=label,
    )


def read_yaml_mapping(source: Path, label: str, kind: str, keys: str) -> dict[str, Any]:
    """Read a YAML file (the hardened safe loader of :mod:`hpsearch.config._yaml`)
    that must hold a mapping; errors name the file.

    Args:
        source: the file.
        label: the name to use in messages (as the user gave it).
        kind: what the file is, e.g. "study file".
        keys: the keys it usually has, for the message when it is not a mapping.
    """
    raw = read_yaml_file(source, label, kind)
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(
            f"a {kind} must be a mapping of keys ({keys})",
            source=label,
            value=type(raw).__name__,
            has_value=True,
        )
    for key in raw:
        if not isinstance(key, str):
            raise ConfigError(KEYS_MUST_BE_STRINGS, source=label, value=key, has_value=True)
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
        value = _override_value(item, text)
        parts = key.split(".")
        if len(parts) > MAX_DEPTH:
            raise ConfigError(
                f"a key path of {len(parts):,} parts; the limit is {MAX_DEPTH}",
                path="--set",
                value=item,
                has_value=True,
            )
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


def _override_value(item: str, text: str) -> Any:
    """An override's value parsed as YAML; malformed YAML stands for the text itself."""
    if not text.strip():
        return None
    try:
        check_text_size(text, "--set value")
        text.encode("utf-8")
        return parse_yaml(text, "--set value")
    except Refused as exc:
        reason = describe_yaml_error(exc, text)
    except yaml.YAMLError:
        return text
    except ConfigError as exc:
        reason = exc.reason
    except UnicodeEncodeError:
        reason = "not text: it holds a byte that is not UTF-8"
    except (ValueError, RecursionError, MemoryError, OverflowError) as exc:
        reason = describe_yaml_error(exc, text)
    raise ConfigError(reason, path="--set", value=item, has_value=True)


def _index(node: list[Any], part: str) -> int | None:
    """``part`` as an index into ``node``, or None."""
    if part.isascii() and part.isdigit() and len(part) <= 18 and int(part) < len(node):
        return int(part)
    return None


def _child(node: Any, part: str) -> Any:
    if isinstance(node, list):
        index = _index(node, part)
        return None if index is None else node[index]
    return node.get(part)


def _set(node: Any, part: str, value: Any, path: str) -> None:
    if isinstance(node, list):
        index = _index(node, part)
        if index is None:
            raise ConfigError(f"list index out of range (size {len(node)})", path=path)
        node[index] = value
    else:
        node[part] = value


def _from_pydantic(exc: ValidationError, raw: Mapping[str, Any]) -> ConfigError:
    errors = exc.errors()
    # an unknown key explains the other errors it causes (a misspelt 'low' is also a missing one)
    first = next((e for e in errors if e["type"] == "extra_forbidden"), None)
    # NaN or infinity: say so, not what each member of a union (bool, int, str) wanted
    first = first or next((e for e in errors if e["type"] == "finite_number"), errors[0])
    loc = error_loc(first, raw)
    path = loc_path(loc)
    kind = first["type"]
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    if kind == "extra_forbidden":
        raw_loc = first["loc"]
        tag = next((part for part in raw_loc[:-1] if part in _TAGS), None)
        if raw_loc[0] == "space" and tag is not None:
            allowed = list(_PARAM_MODELS[str(tag)].model_fields)
        else:
            allowed = _allowed_keys(loc[:-1])
        return ConfigError(f"unknown key; allowed: {', '.join(allowed)}{more}", path=path)
    return pydantic_error(first, path, more)


def error_loc(error: Mapping[str, Any], raw: Any) -> list[Any]:
    """The keys and indexes of a pydantic error's ``loc`` that are in the user's data.

    Pydantic's ``loc`` also names what the data went through: union members
    (``int``, ``float``, ``list[...]``), tags (``range``), validators
    (``function-after[...]``), the ``{value: ...}`` wrapper of a plain parameter and
    ``[key]`` for a bad key. Walking the data along it keeps the real parts; a
    missing key keeps its name.
    """
    parts = list(error["loc"])
    out: list[Any] = []
    node = raw
    if len(parts) >= 2 and parts[-1] == "[key]":  # a bad key: name the mapping it is in
        parts = parts[:-2]
    for i, part in enumerate(parts):
        in_map = isinstance(node, Mapping) and not isinstance(part, bool) and _has_key(node, part)
        in_list = isinstance(node, list) and type(part) is int and 0 <= part < len(node)
        if in_map or in_list:
            out.append(part)
            node = node[part]
        elif (
            i == len(parts) - 1
            and error.get("type") == "missing"
            and isinstance(node, Mapping)
            and isinstance(part, str)
        ):
            out.append(part)
    return out


def _has_key(node: Mapping[Any, Any], part: Any) -> bool:
    try:
        return part in node
    except TypeError:
        return False


def loc_path(loc: Sequence[Any]) -> str:
    """``a.b[0].c`` from a list of keys and indexes."""
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def pydantic_error(error: Mapping[str, Any], path: str, more: str = "") -> ConfigError:
    """One pydantic error as a ConfigError: the message, the key path and the value."""
    msg = str(error["msg"]).removeprefix("Value error, ")
    value = error.get("input")
    if error["loc"] and error["loc"][-1] == "[key]":
        msg = KEYS_MUST_BE_STRINGS
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
