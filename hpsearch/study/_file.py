"""Study files: a YAML file (or a dict) checked as a whole and resolved into what a run
needs: the typed configuration, the search space, the objectives and the storage URL.

Building or validating a study file changes nothing in the process: no ``sys.path``
entry, no sampler or storage, no patch of Optuna. Those happen when a run opens.
All mistakes come out as :class:`~hpsearch.exceptions.ConfigError` with the file,
the key path, the value and what is allowed.
"""

from __future__ import annotations

import ast
import importlib.machinery
import importlib.util
import math
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hpsearch.config._loader import (
    apply_overrides,
    read_yaml_mapping,
    unexpected_error,
    validate_config,
)
from hpsearch.config._schema import ObjectiveConfig, StudyConfig
from hpsearch.exceptions import ConfigError
from hpsearch.models import detect_api_in_source
from hpsearch.objectives import REGRESSION_DEFAULT, Objective, check_task, resolve_objectives
from hpsearch.space import SearchSpace
from hpsearch.study._record import TrialRecord

if TYPE_CHECKING:
    import optuna

__all__ = [
    "StudyFile",
    "add_search_paths",
    "check_user_builder",
    "default_storage",
    "load_study_file",
    "study_from_dict",
    "with_arrays",
]


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
    builder_api: str | None = "params"
    """How the model builder is called: ``params``, ``keras_tuner`` or ``optuna``
    (``model.api``, or for ``auto`` read from the builder's source: see
    :mod:`hpsearch.models._hp`); None when the source does not tell (the run reads it
    from the imported builder)."""

    @property
    def task(self) -> str:
        """``classification`` or ``regression``: ``task: auto`` is resolved when the
        file is read (see :mod:`hpsearch.data._task`)."""
        return self.config.task

    @property
    def define_by_run(self) -> bool:
        """Whether the builder declares its own parameters (KerasTuner or Optuna style)."""
        return self.builder_api in ("keras_tuner", "optuna")

    def owned_names(self, family: str) -> set[str]:
        """The names the study file's ``space`` writes for a trial of ``family`` (the
        shared ones, those of the family's section, and ``family`` of a choice): a
        builder that declares its own parameters gets the study file's value for them,
        never a sample."""
        space = self.config.space
        names = {k for k, v in space.items() if not isinstance(v, dict)}
        section = space.get(family)
        if isinstance(section, dict):
            names |= set(section)
        if self.space.multi:
            names.add("family")
        return names

    def enqueue_params(self, values: Mapping[str, Any], *, path: str) -> dict[str, Any]:
        """A trial to enqueue (``search.enqueue``) as Optuna parameters, checked against
        the space. With a define-by-run builder, the names the study file's ``space``
        does not write are the builder's: they are passed as they are (its ``hp`` or
        ``trial.suggest_*`` call takes them; a name it does not declare is ignored)."""
        if not self.space.multi and values.get("family") == self.space.family.name:
            values = {k: v for k, v in values.items() if k != "family"}  # a narrowed choice
        if not self.define_by_run:
            return self.space.to_optuna_params(values, path=path)
        owned = self.owned_names(self.space.family_of(values))
        own = {k: v for k, v in values.items() if k in owned}
        builders = {k: v for k, v in values.items() if k not in owned}
        return {**self.space.to_optuna_params(own, path=path), **builders}

    def enqueued(self) -> list[tuple[int, Mapping[str, Any]]]:
        """``search.enqueue``'s trials (with their index) that this study runs: an entry
        naming a family of a section left unused (``--set model.family=cnn`` on a family
        choice) is skipped."""
        unused = set(self.space.unused_sections)
        return [
            (i, values)
            for i, values in enumerate(self.config.search.enqueue)
            if values.get("family") not in unused or values.get("family") is None
        ]

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

    def trial_seed(self, trial: optuna.trial.FrozenTrial | optuna.Trial) -> int:
        """The seed a trial trains with: the one stored on it (a re-queued copy keeps
        its original's), else ``search.seed`` plus the trial's number."""
        stored = TrialRecord.from_trial(trial).seed
        return int(stored if stored is not None else (self.config.search.seed or 0) + trial.number)

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
            grids = self.space.grid(steps_required=True)
            return sum(math.prod(len(v) for v in grid.values()) for grid in grids)
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


def is_study_file(study: str | os.PathLike[str]) -> bool:
    """Whether a command's STUDY argument names a study file (``.yaml``/``.yml``, or an
    existing file) rather than a study in a storage.

    >>> is_study_file("studies/quickstart.yaml"), is_study_file("quickstart")
    (True, False)
    """
    path = Path(study)
    return path.suffix in (".yaml", ".yml") or path.is_file()


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
        storage: the storage URL, as written (it wins over ``storage=`` in ``overrides``).

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
    try:
        raw = read_yaml_mapping(source, label, "study file", "data, model, space, ...")
        raw = apply_overrides(raw, extra)
        if storage is not None:  # a URL, taken as written (not parsed as YAML)
            raw["storage"] = storage
        study = study_from_dict(raw, source=source)
        study.label = label
        return study
    except ConfigError as exc:
        raise exc.with_source(exc.source or label) from None
    except Exception as exc:  # a bug: still one line naming the file (--debug: the traceback)
        raise unexpected_error(exc, label, "study file") from exc


def study_from_dict(raw: dict[str, Any], *, source: Path | None = None) -> StudyFile:
    """Validate a study given as a dict (the API behind :func:`load_study_file`).

    Raises:
        ConfigError: the study is invalid (the message names the key).

    Example:
        >>> study = study_from_dict({
        ...     "name": "demo",
        ...     "data": {"name": "digits"},
        ...     "space": {"width": {"low": 8, "high": 64}, "epochs": 3},
        ...     "objective": ["val_accuracy", "params"],
        ...     "search": {"n_trials": 4},
        ... })
        >>> study.name, study.n_trials, study.directions
        ('demo', 4, ['maximize', 'minimize'])
        >>> study.storage.endswith("/hpsearch.db")  # the default: in the working directory
        True
        >>> study_from_dict({"name": "demo", "data": {"name": "digits"},
        ...                  "space": {"width": {"low": 64, "high": 8}}})
        Traceback (most recent call last):
        hpsearch.exceptions.ConfigError: space.width: got {'low': 64, 'high': 8}; empty range: ...
    """
    config = validate_config(raw)
    config = _resolve_task(config, source.parent if source is not None else Path.cwd())
    space = SearchSpace(config)
    objectives = resolve_objectives(list(config.objective))
    check_task(objectives, config.task)
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


def _resolve_task(config: StudyConfig, base_dir: Path) -> StudyConfig:
    """``config`` with its task resolved (``auto`` read from the data set or its target)
    and a regression's default objective (``val_rmse``, minimized: ``val_loss`` is not
    comparable across losses); settings that mean nothing for the task are refused."""
    from hpsearch.data._registry import DATASETS, _resolve
    from hpsearch.data._task import REGRESSION, infer_task, peek_target, regression_target

    data = config.data
    source = DATASETS.get(data.name)
    task: str = config.task
    target = None
    if source is not None and source.task is None and data.path and task != "classification":
        path = _resolve(data, base_dir)
        target = peek_target(data.name, path, data.label_column) if path.is_file() else None
    elif data.name == "arrays" and task != "classification":
        target = _arrays_target(data.arrays)
    if task == "auto":
        task = (source.task if source is not None else None) or (
            infer_task(target) if target is not None else "classification"
        )
    update: dict[str, Any] = {"task": task}
    if data.standardize_target is None:  # on for a regression: prices need not fit the init
        update["data"] = data.model_copy(update={"standardize_target": task == REGRESSION})
    if task == REGRESSION:
        if target is not None:
            where = "data.label_column" if data.name == "csv" else "data.path"
            regression_target(target, path=where, value=getattr(data, where[5:]))
        if "chance_patience" in config.space:
            raise ConfigError(
                "applies to classification only (it compares accuracy with chance)",
                path="space.chance_patience",
            )
        if "objective" not in config.model_fields_set and config.search.engine == "sklearn":
            # scikit-learn's scores are greater-is-better: the negated RMSE by default
            _check_regression_scoring(config.search.scoring)
            scoring = config.search.scoring or "neg_root_mean_squared_error"
            update["objective"] = [ObjectiveConfig(metric=f"cv_{scoring}", direction="maximize")]
        elif "objective" not in config.model_fields_set:
            update["objective"] = [ObjectiveConfig(metric=REGRESSION_DEFAULT)]
    else:
        if data.standardize_target:
            raise ConfigError(
                "applies to regression only (task: regression)",
                path="data.standardize_target",
                value=True,
                has_value=True,
            )
        for key, entry in config.space.items():
            if key == "loss" or (isinstance(entry, dict) and "loss" in entry):
                raise ConfigError(
                    "applies to regression only (task: regression); a classification trains "
                    "with sparse categorical cross-entropy",
                    path="space.loss" if key == "loss" else f"space.{key}.loss",
                )
    return config.model_copy(update=update)


def _arrays_target(key: str | None) -> Any:
    """The training targets of arrays given to the Python API, if this process has them
    (``task: auto`` reads them as it reads a CSV's label column)."""
    from hpsearch.data._arrays import registered_arrays

    try:
        return registered_arrays(key)[1]
    except ConfigError:  # not given here: the run says how to pass them
        return None


def _check_semantics(study: StudyFile) -> None:
    from hpsearch.data._registry import check_data_config
    from hpsearch.storage import check_storage_url

    cfg = study.config
    families = study.space.families.values()
    check_data_config(cfg.data, study.base_dir, needs_images=any(f.needs_images for f in families))
    if ":" in cfg.data.name:  # a data loader: found (its source parsed), not called
        check_user_builder(cfg.data.name, study.base_dir, path="data.name")
    styles: list[str | None] = []  # each builder's style (None: its source does not tell)
    for i, family in enumerate(study.space.families.values()):
        if family.is_user:
            path = "model.family" if len(families) == 1 else f"model.family.choices[{i}]"
            found = check_user_builder(family.name, study.base_dir, path=path)
            styles.append(cfg.model.api if cfg.model.api != "auto" else found)
    dynamic = [s for s in styles if s in ("keras_tuner", "optuna")]
    if styles:
        study.builder_api = dynamic[0] if dynamic else (None if None in styles else "params")
    check_storage_url(study.storage)
    if cfg.workers.ray is not None:
        _check_ray(study)
    if cfg.search.engine == "sklearn":
        _check_sklearn(study)
    else:
        _check_optuna(study)
    for obj in study.objectives:
        metric = obj.keras_metric
        if metric and ":" in metric:
            check_user_builder(metric, study.base_dir, path="objective.metric")


def _check_ray(study: StudyFile) -> None:
    """Ray places workers on any node: the storage must be a server they all reach."""
    from hpsearch.storage import journal_path

    if study.config.search.engine == "sklearn":
        raise ConfigError(
            "the sklearn engine runs in one process; Ray workers need the optuna engine",
            path="workers.ray",
        )
    url = study.storage
    if url.startswith("sqlite://") or journal_path(url) is not None:
        kind = "a SQLite file" if url.startswith("sqlite://") else "a journal file"
        raise ConfigError(
            f"{kind} cannot be shared by Ray workers on other machines (workers.ray is set); "
            "use a server every node reaches: postgresql://host/db or redis://host:6379",
            path="storage",
            value=url,
            has_value=True,
        )


def _check_sklearn(study: StudyFile) -> None:
    search = study.config.search
    if study.define_by_run:
        raise ConfigError(
            f"this builder declares its own parameters ({study.builder_api} style, "
            "model.api); the sklearn engine needs its whole space before it starts: use "
            "search.engine: optuna",
            path="model.family",
            value=study.config.model.family,
            has_value=True,
        )
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
    if study.task == "regression":
        _check_sklearn_regression(study)
    if search.method in ("grid", "halving_grid"):
        study.space.grid(steps_required=True)
    else:
        study.space.check_value_lists()
    halving_epochs = search.method.startswith("halving") and search.resource == "epochs"
    if halving_epochs:
        _check_halving_epochs(study)
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


_REGRESSION_SCORES = ("r2", "explained_variance", "error", "deviance", "d2_")


def _check_regression_scoring(scoring: str | None) -> None:
    """A regression's scikit-learn search needs a regression score."""
    if scoring is not None and not any(word in scoring for word in _REGRESSION_SCORES):
        raise ConfigError(
            "not a regression scorer; e.g. neg_root_mean_squared_error (the default), "
            "neg_mean_absolute_error, r2",
            path="search.scoring",
            value=scoring,
            has_value=True,
        )


def _check_sklearn_regression(study: StudyFile) -> None:
    """A regression's scikit-learn search maximizes its score."""
    if study.objectives[0].direction != "maximize":
        raise ConfigError(
            "the sklearn engine maximizes its score (search.scoring; for a regression "
            "neg_root_mean_squared_error by default): leave objective out",
            path="objective",
            value=study.objectives[0].metric,
            has_value=True,
        )


def _check_halving_epochs(study: StudyFile) -> None:
    """With ``resource: epochs`` the halving search sets every candidate's epochs: they
    must be fixed (the most a candidate may train), the same in every family's section."""
    dims = [d for d in study.space.dims.values() if d.param == "epochs"]
    for dim in dims:
        path = f"space.{dim.family}.epochs" if dim.family else "space.epochs"
        if dim.searched:
            raise ConfigError(
                "with resource: epochs the halving search sets the epochs; fix epochs to the "
                "most a candidate may train",
                path=path,
            )
    if len({repr(getattr(d.spec, "value", None)) for d in dims}) > 1:
        sections = study.config.space
        written = [d for d in dims if "epochs" in (sections.get(d.family or "") or {})]
        raise ConfigError(
            "with resource: epochs the halving search trains every family's candidates "
            "for the same epochs; give epochs once, outside the sections",
            path=f"space.{(written or dims)[0].family}.epochs",
        )


def _check_optuna(study: StudyFile) -> None:
    from hpsearch.search import check_sampler, make_pruner, resolve_sampler_name

    cfg = study.config
    for name in sorted(cfg.search.sklearn_only_fields):
        raise ConfigError(
            "applies to the sklearn engine only (search.engine: sklearn)", path=f"search.{name}"
        )
    check_sampler(cfg.search, study.space, len(study.objectives))
    if study.define_by_run and resolve_sampler_name(cfg.search, len(study.objectives)) == "grid":
        raise ConfigError(
            "the grid sampler needs the whole space up front; this builder declares its "
            f"own parameters ({study.builder_api} style, model.api): use another sampler",
            path="search.sampler",
            value=cfg.search.sampler,
            has_value=True,
        )
    make_pruner(cfg.search, study.max_epochs, len(study.objectives))
    if study.n_trials is None and cfg.search.timeout is None:
        raise ConfigError(
            "give a budget: search.n_trials and/or search.timeout (seconds)", path="search.n_trials"
        )
    for i, values in study.enqueued():
        study.enqueue_params(values, path=f"search.enqueue[{i}]")
    workers = cfg.workers
    if workers.grace_period <= workers.heartbeat_interval:
        raise ConfigError(
            f"must be longer than workers.heartbeat_interval ({workers.heartbeat_interval}s), "
            "or live trials would be failed",
            path="workers.grace_period",
            value=workers.grace_period,
            has_value=True,
        )


def check_user_builder(target: str, base_dir: Path, *, path: str = "model.family") -> str | None:
    """Check that ``package.module:function`` exists, without importing it.

    Importing would pull in TensorFlow, which ``validate`` must not, so the
    module's source is parsed instead.

    Returns:
        The builder's style read from the source (``params``, ``keras_tuner`` or
        ``optuna``: :func:`hpsearch.models.detect_api_in_source`), None if the source
        does not tell.
    """
    module_name, sep, func = target.partition(":")
    allowed = "mlp, cnn, or package.module:function"
    if not sep or not module_name or not func.isidentifier():
        raise ConfigError(f"allowed: {allowed}", path=path, value=target, has_value=True)
    spec = find_module_spec(module_name, base_dir)  # imports nothing, runs no package code
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
        return detect_api_in_source(tree, func)
    return None


_ARRAYS_KEEP = (
    "validation",
    "test",
    "subset",
    "seed",
    "scale",
    "image_shape",
    "memory_limit_mb",
    "standardize_target",
)


def with_arrays(study: StudyFile, key: str) -> StudyFile:
    """``study`` running on arrays given from Python (registered under ``key`` by
    :func:`hpsearch.data._arrays.registered`): ``data`` becomes ``{name: arrays, arrays:
    KEY}`` with the file's split, scaling and reshaping settings kept.

    Raises:
        ConfigError: the study cannot run on such arrays.
    """
    data = study.config.data.model_dump(mode="json")
    raw = study.config.model_dump(mode="json")  # as stored on a study (export reads it)
    raw["name"] = study.name
    for key_ in ("task", "objective"):  # as the user wrote them: auto reads the arrays
        if key_ in study.raw:
            raw[key_] = study.raw[key_]
        else:
            raw.pop(key_, None)
    raw["data"] = {k: v for k, v in data.items() if k in _ARRAYS_KEEP} | {
        "name": "arrays",
        "arrays": key,
    }
    try:
        changed = study_from_dict(raw, source=study.source)
    except ConfigError as exc:
        raise study.attribute(exc) from None
    changed.label = study.label
    return changed


def add_search_paths(base_dir: Path) -> None:
    """Let user builders live next to the study file or in the working directory."""
    for folder in (str(base_dir), os.getcwd()):
        if folder not in sys.path:
            sys.path.insert(0, folder)


def find_module_spec(module_name: str, base_dir: Path) -> importlib.machinery.ModuleSpec | None:
    """Where ``package.module`` would be imported from, found in the study's folder,
    the working directory and ``sys.path`` (the places a run adds), without importing
    anything (a package's ``__init__`` does not run) or changing ``sys.path``."""
    if module_name in sys.modules:
        return getattr(sys.modules[module_name], "__spec__", None)
    places = [str(base_dir), os.getcwd(), *sys.path]
    spec = None
    parts = module_name.split(".")
    for i in range(len(parts)):
        name = ".".join(parts[: i + 1])
        try:
            spec = importlib.machinery.PathFinder.find_spec(name, places)
        except (ImportError, ValueError):
            return None
        if spec is None:
            return None
        places = list(spec.submodule_search_locations or [])
    return spec
