"""Read a study file: YAML (safe loader), command-line overrides, validation.

All mistakes come out as :class:`~hpsearch.exceptions.ConfigError` with the file,
the key path, the value and what is allowed.
"""

from __future__ import annotations

import ast
import importlib.util
import math
import os
import sys
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
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
from hpsearch.objectives import Objective, resolve_objectives
from hpsearch.space import SearchSpace

__all__ = ["StudyFile", "apply_overrides", "load_study_file"]

_PARAM_MODELS: dict[str, type[BaseModel]] = {
    "range": RangeParam,
    "choice": ChoiceParam,
    "fixed": FixedParam,
}
_TAGS = set(_PARAM_MODELS)
KEYS_MUST_BE_STRINGS = "keys must be strings (quote a key that looks like a number, a date or null)"


@dataclass
class StudyFile:
    """A validated study file, ready to run.

    Attributes:
        config: the typed configuration.
        source: the file it came from (None when built from a dict).
        name: the study name (``name:`` or the file's stem).
        storage: the storage URL to use.
        space: the resolved search space.
        objectives: the resolved objectives.
        raw: the configuration as a plain dict, with overrides applied.
    """

    config: StudyConfig
    source: Path | None
    name: str
    storage: str
    space: SearchSpace
    objectives: list[Objective]
    raw: dict[str, Any] = field(default_factory=dict)
    label: str | None = None
    """The file name as the user gave it, for messages."""

    def attribute(self, exc: ConfigError) -> ConfigError:
        """``exc`` naming this study file, unless it already names a file."""
        where = self.label or (str(self.source) if self.source else None)
        return exc if exc.source or where is None else exc.with_source(where)

    @property
    def base_dir(self) -> Path:
        """The folder relative paths in the file are resolved against."""
        return self.source.parent if self.source is not None else Path.cwd()

    @property
    def directions(self) -> list[str]:
        return [o.direction for o in self.objectives]

    @property
    def max_epochs(self) -> int:
        return int(self.space.max_value("epochs"))

    @property
    def n_trials(self) -> int | None:
        """The trial budget: ``search.n_trials``, or the grid size for a grid search.

        For the scikit-learn engine: the number of candidates (grid size or ``n_iter``;
        the first round's candidates for halving searches).
        """
        search = self.config.search
        if search.engine == "sklearn":
            if search.method in ("random", "halving_random"):
                return search.n_iter
            return math.prod(len(v) for v in self.space.grid(steps_required=True).values())
        if self.config.search.n_trials is not None:
            return self.config.search.n_trials
        from hpsearch.search import resolve_sampler_name

        if resolve_sampler_name(self.config.search, len(self.objectives)) == "grid":
            return self.space.grid_size()
        return None


def default_storage() -> str:
    """``$HPSEARCH_STORAGE`` or ``sqlite:///hpsearch.db`` in the working directory."""
    env = os.environ.get("HPSEARCH_STORAGE")
    if env:
        return env
    return f"sqlite:///{Path.cwd() / 'hpsearch.db'}"


def load_study_file(
    path: str | os.PathLike[str],
    overrides: Sequence[str] = (),
    *,
    n_trials: int | None = None,
    timeout: float | None = None,
    storage: str | None = None,
) -> StudyFile:
    """Load, override and validate a study file.

    Args:
        path: the YAML file.
        overrides: ``key.path=value`` strings, values parsed as YAML.
        n_trials: shortcut for ``search.n_trials=...``.
        timeout: shortcut for ``search.timeout=...`` (seconds).
        storage: shortcut for ``storage=...``.

    Raises:
        ConfigError: the file is missing, malformed or invalid.

    Example:
        >>> study = load_study_file("studies/quickstart.yaml", ["search.n_trials=3"])
        >>> study.name, study.n_trials
        ('quickstart', 3)
    """
    source = Path(path)
    label = str(path)
    extra = list(overrides)
    if n_trials is not None:
        extra.append(f"search.n_trials={n_trials}")
    if timeout is not None:
        extra.append(f"search.timeout={timeout}")
    if storage is not None:
        extra.append(f"storage={storage}")
    try:
        raw = read_yaml_mapping(source, label, "study file", "data, model, space, ...")
        raw = apply_overrides(raw, extra)
        study = study_from_dict(raw, source=source)
        study.label = label
        return study
    except ConfigError as exc:
        raise exc.with_source(exc.source or label) from None
    except Exception as exc:  # a bug: still one line naming the file (--debug: the traceback)
        raise unexpected_error(exc, label, "study file") from exc


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


def study_from_dict(raw: dict[str, Any], *, source: Path | None = None) -> StudyFile:
    """Validate a study given as a dict (the API behind :func:`load_study_file`)."""
    try:
        config = StudyConfig.model_validate(raw)
    except ValidationError as exc:
        raise _from_pydantic(exc, raw) from None
    space = SearchSpace(config)
    objectives = resolve_objectives(list(config.objective))
    name = config.name or (source.stem if source is not None else None)
    if not name:
        raise ConfigError("a study needs a name", path="name")
    study = StudyFile(
        config=config,
        source=source.resolve() if source is not None else None,
        name=name,
        storage=config.storage or default_storage(),
        space=space,
        objectives=objectives,
        raw=raw,
    )
    _check_semantics(study)
    return study


def _check_semantics(study: StudyFile) -> None:
    from hpsearch.data._registry import check_data_config
    from hpsearch.storage import check_storage_url

    cfg = study.config
    check_data_config(cfg.data, study.base_dir, needs_images=study.space.family.needs_images)
    if study.space.family.is_user:
        check_user_builder(cfg.model.family, study.base_dir)
    check_storage_url(study.storage)
    if cfg.search.engine == "sklearn":
        _check_sklearn(study)
    else:
        _check_optuna(study)
    for obj in study.objectives:
        metric = obj.keras_metric
        if metric and ":" in metric:
            check_user_builder(metric, study.base_dir, path="objective.metric")


def _check_sklearn(study: StudyFile) -> None:
    search = study.config.search
    for name in sorted(search.optuna_only_fields):
        raise ConfigError(
            "applies to the optuna engine only; the sklearn engine uses method, cv, scoring, "
            "n_iter, refit",
            path=f"search.{name}",
        )
    if study.config.workers.count > 1:
        raise ConfigError(
            "the sklearn engine runs in one process; parallel workers need the optuna engine",
            path="workers.count",
            value=study.config.workers.count,
            has_value=True,
        )
    for name in ("n_trials", "timeout"):
        if getattr(search, name) is not None:
            raise ConfigError(
                "the sklearn engine's budget is the grid, or n_iter for random methods",
                path=f"search.{name}",
                value=getattr(search, name),
                has_value=True,
            )
    if len(study.objectives) > 1:
        raise ConfigError(
            "the sklearn engine optimizes one score (search.scoring); use the optuna engine "
            "for several objectives",
            path="objective",
        )
    if search.method in ("grid", "halving_grid"):
        study.space.grid(steps_required=True)
    else:
        study.space.check_value_lists()
    halving_epochs = search.method.startswith("halving") and search.resource == "epochs"
    if halving_epochs and study.space.dims["epochs"].searched:
        raise ConfigError(
            "with resource: epochs the halving search sets the epochs; fix epochs to the "
            "most a candidate may train",
            path="space.epochs",
        )
    if search.scoring is not None:
        from sklearn.metrics import get_scorer_names

        if search.scoring not in get_scorer_names():
            raise ConfigError(
                "not a scikit-learn scorer; e.g. accuracy, balanced_accuracy, f1_macro, "
                "neg_log_loss (see sklearn.metrics.get_scorer_names())",
                path="search.scoring",
                value=search.scoring,
                has_value=True,
            )


def _check_optuna(study: StudyFile) -> None:
    from hpsearch.search import make_pruner, make_sampler

    cfg = study.config
    for name in sorted(cfg.search.sklearn_only_fields):
        raise ConfigError(
            "applies to the sklearn engine only (search.engine: sklearn)", path=f"search.{name}"
        )
    make_sampler(cfg.search, study.space, len(study.objectives))
    make_pruner(cfg.search, study.max_epochs, len(study.objectives))
    if study.n_trials is None and cfg.search.timeout is None:
        raise ConfigError(
            "give a budget: search.n_trials and/or search.timeout (seconds)", path="search.n_trials"
        )
    for i, values in enumerate(cfg.search.enqueue):
        study.space.to_optuna_params(values, path=f"search.enqueue[{i}]")
    workers = cfg.workers
    if workers.grace_period <= workers.heartbeat_interval:
        raise ConfigError(
            f"must be longer than workers.heartbeat_interval ({workers.heartbeat_interval}s), "
            "or live trials would be failed",
            path="workers.grace_period",
            value=workers.grace_period,
            has_value=True,
        )


def check_user_builder(target: str, base_dir: Path, *, path: str = "model.family") -> None:
    """Check that ``package.module:function`` exists, without importing it.

    Importing would pull in TensorFlow, which ``validate`` must not, so the
    module's source is parsed instead.
    """
    module_name, sep, func = target.partition(":")
    allowed = "mlp, cnn, or package.module:function"
    if not sep or not module_name or not func.isidentifier():
        raise ConfigError(f"allowed: {allowed}", path=path, value=target, has_value=True)
    add_search_paths(base_dir)
    try:
        spec = importlib.util.find_spec(module_name)
    except (ImportError, ValueError):
        spec = None
    except Exception as exc:  # a parent package's __init__ raised
        raise ConfigError(
            f"importing the package of module {module_name!r} failed: {type(exc).__name__}: "
            + " ".join(str(exc).split())[:200],
            path=path,
            value=target,
            has_value=True,
        ) from exc
    if spec is None:
        raise ConfigError(
            f"module {module_name!r} not found (searched the study's folder, the "
            "working directory and sys.path)",
            path=path,
            value=target,
            has_value=True,
        )
    origin = spec.origin
    if origin and origin.endswith(".py"):
        try:
            tree = ast.parse(Path(origin).read_bytes(), filename=origin)
        except (SyntaxError, ValueError, OSError, RecursionError, MemoryError) as exc:
            where = f" (line {exc.lineno})" if isinstance(exc, SyntaxError) and exc.lineno else ""
            reason = getattr(exc, "msg", None) or " ".join(str(exc).split())[:200]
            raise ConfigError(
                f"cannot read module {module_name!r} ({origin}){where}: {reason}",
                path=path,
                value=target,
                has_value=True,
            ) from None
        names = {
            getattr(node, "name", None)
            for node in tree.body
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
        }
        for node in tree.body:
            if isinstance(node, ast.Assign):
                names.update(t.id for t in node.targets if isinstance(t, ast.Name))
            elif isinstance(node, ast.ImportFrom | ast.Import):
                names.update((a.asname or a.name).split(".")[0] for a in node.names)
        if func not in names:
            raise ConfigError(
                f"module {module_name!r} has no function {func!r}",
                path=path,
                value=target,
                has_value=True,
            )


def add_search_paths(base_dir: Path) -> None:
    """Let user builders live next to the study file or in the working directory."""
    for folder in (str(base_dir), os.getcwd()):
        if folder not in sys.path:
            sys.path.insert(0, folder)


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
        if raw_loc[0] == "space" and len(raw_loc) > 3 and raw_loc[2] in _TAGS:
            allowed = list(_PARAM_MODELS[str(raw_loc[2])].model_fields)
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
