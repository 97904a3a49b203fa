"""Samplers and pruners by name (a registry; an unknown name lists the valid ones)."""

from __future__ import annotations

import functools
import importlib.util
import warnings
import zlib
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from hpsearch.config._schema import SearchConfig
from hpsearch.exceptions import ConfigError

if TYPE_CHECKING:
    import optuna

    from hpsearch.space import SearchSpace

__all__ = ["PRUNERS", "SAMPLERS", "check_sampler", "make_pruner", "make_sampler"]

SAMPLERS = ("auto", "tpe", "random", "grid", "cmaes", "qmc", "nsga2", "nsga3", "gp")
SINGLE_OBJECTIVE_ONLY = ("cmaes",)
PRUNERS = ("none", "median", "percentile", "successive_halving", "hyperband", "threshold")


def resolve_sampler_name(search: SearchConfig, n_objectives: int) -> str:
    """``auto`` is TPE for one objective, NSGA-II for several."""
    if search.sampler not in SAMPLERS:
        raise ConfigError(
            "allowed: " + ", ".join(SAMPLERS),
            path="search.sampler",
            value=search.sampler,
            has_value=True,
        )
    if search.sampler == "auto":
        return "tpe" if n_objectives == 1 else "nsga2"
    if n_objectives > 1 and search.sampler in SINGLE_OBJECTIVE_ONLY:
        raise ConfigError(
            f"{search.sampler} handles one objective only; for several use: tpe, random, "
            "grid, qmc, nsga2, nsga3, gp",
            path="search.sampler",
            value=search.sampler,
            has_value=True,
        )
    return search.sampler


def use_fast_tpe_math() -> bool:
    """Give Optuna's TPE a vectorized ``log Φ`` (the log of the normal CDF).

    Optuna 5 computes it one array element at a time in Python (``np.frompyfunc`` over
    a scalar function in ``optuna.samplers._tpe._truncnorm``; optuna/optuna#5478), and
    TPE calls it on every kernel of its Parzen estimators for every candidate: at 1,000
    finished trials of the MNIST MLP space that is about 35,000 calls and three quarters
    of TPE's time per trial. ``scipy.special.log_ndtr`` is the same function in C.
    Proposals are unchanged: a seeded study proposes the same integers and choices and
    the same floats (2e-15 apart at most over 400 trials; ``tests/test_config.py`` checks
    both). Applied once per process when a TPE sampler is built; left alone if Optuna's
    private module has moved or changed. Returns whether the fast function is in place.
    """
    import numpy as np
    import scipy.special

    try:
        from optuna.samplers._tpe import _truncnorm
    except ImportError:  # pragma: no cover - a later Optuna moved it
        return False
    current = getattr(_truncnorm, "_log_ndtr", None)
    if current is None:
        return False
    if getattr(current, "_hpsearch", False):
        return True

    def log_ndtr(a: Any) -> Any:
        return scipy.special.log_ndtr(np.asarray(a, dtype=float))

    log_ndtr._hpsearch = True  # type: ignore[attr-defined]
    log_ndtr._optuna = current  # type: ignore[attr-defined]
    _truncnorm._log_ndtr = log_ndtr
    return True


@functools.cache
def tpe_sampler_class() -> type[optuna.samplers.TPESampler]:
    """Optuna's TPE, a "constant liar" only while another trial of the study is running.

    Optuna 5's TPE lies by default (``constant_liar=True``: running trials count as bad,
    so parallel workers spread out). A liar cannot use the trial cache Optuna keeps for
    the trial being sampled, since other workers' running trials change under it: it
    re-reads the study for every parameter group it samples (on SQLite, every unfinished
    trial through the ORM) and writes its joint proposal to a system attribute for the
    other workers. In a sequential run none of that changes a proposal: the only running
    trial is the one being sampled, which TPE leaves out. This sampler decides at each
    trial's start, from the read that Optuna caches for the trial anyway: another trial
    running (a second ``hpsearch run`` on the same database, say), it lies as Optuna's
    default does; none, it samples from the cache. A seeded sequential study proposes
    exactly what Optuna's default does (``tests/test_config.py``). The workers of a
    parallel run (``hpsearch run --workers``) always lie, and
    ``sampler_options: {constant_liar: true}`` (or ``false``) fixes the choice.
    """
    import optuna
    from optuna.trial import FrozenTrial, TrialState

    class TPESampler(optuna.samplers.TPESampler):
        def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
            super().before_trial(study, trial)
            running = study._get_trials(
                deepcopy=False, states=(TrialState.RUNNING,), use_cache=True
            )
            self._constant_liar = any(t.number != trial.number for t in running)

    TPESampler.__doc__ = tpe_sampler_class.__doc__
    TPESampler.__module__ = __name__
    TPESampler.__qualname__ = "TPESampler"  # found by pickle through __getattr__ below
    return TPESampler


def __getattr__(name: str) -> Any:
    if name == "TPESampler":  # built on first use, so that importing hpsearch stays light
        return tpe_sampler_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def resume_seed(seed: int, started: int) -> int:
    """The sampler seed of a study resumed with ``started`` trials already started.

    The same study resumed at the same point draws the same proposals; at another
    point, or with another ``search.seed``, other ones. The seed fits NumPy's range.

    Example:
        >>> resume_seed(42, 3) == resume_seed(42, 3)
        True
        >>> len({resume_seed(42, 3), resume_seed(42, 4), resume_seed(7, 3)})
        3
        >>> 0 <= resume_seed(42, 3) < 2**32
        True
    """
    return zlib.crc32(f"hpsearch-resume:{seed}:{started}".encode())


def make_sampler(
    search: SearchConfig,
    space: SearchSpace,
    n_objectives: int,
    *,
    worker: int | None = None,
    resume: int = 0,
) -> optuna.samplers.BaseSampler:
    """Build the Optuna sampler a study file asks for (when a run opens; validating a
    study file checks it with :func:`check_sampler` instead, which builds nothing).

    ``worker`` (a number unique to one worker process of a parallel run: see
    ``hpsearch.engines._workers``) offsets the seed, so that workers do not propose the
    same params, and makes TPE a constant liar (it treats running trials as bad, so
    workers spread out). Outside such a run TPE lies only while another trial of the
    study is running: see :func:`tpe_sampler_class`. ``resume`` (the number of trials
    a resumed study has started) seeds the sampler with :func:`resume_seed`, so that
    a resumed run does not draw its first run's proposals again. Grid and QMC samplers
    keep the seed: they share one sequence through the storage (the grid skips the
    points it has, QMC continues its sequence); QMC's random draws for conditional
    parameters (its independent sampler) get the worker's or resumed seed.
    """
    factory, kwargs = _sampler_recipe(search, space, n_objectives, worker=worker, resume=resume)
    if factory.__name__ == "TPESampler":
        use_fast_tpe_math()
    return _build("search.sampler_options", factory, kwargs, dict(search.sampler_options))


def check_sampler(search: SearchConfig, space: SearchSpace, n_objectives: int) -> None:
    """Check the sampler a study file asks for without building it: its name, the
    package it needs, its grid, and that its options are ones it takes.

    Raises:
        ConfigError: naming ``search.sampler`` or ``search.sampler_options``.
    """
    import inspect

    factory, kwargs = _sampler_recipe(search, space, n_objectives)
    try:
        inspect.signature(factory).bind(**kwargs)
    except TypeError as exc:
        raise ConfigError(
            f"{factory.__name__} rejected these options: {exc}",
            path="search.sampler_options",
            value=dict(search.sampler_options),
            has_value=True,
        ) from None


def _sampler_recipe(
    search: SearchConfig,
    space: SearchSpace,
    n_objectives: int,
    *,
    worker: int | None = None,
    resume: int = 0,
) -> tuple[Callable[..., optuna.samplers.BaseSampler], dict[str, Any]]:
    """The sampler class (or factory) and the keyword arguments it is built with."""
    import optuna

    name = resolve_sampler_name(search, n_objectives)
    _check_sampler_package(name)
    opts: dict[str, Any] = dict(search.sampler_options)
    own_seed = _own_seed(search.seed, worker, resume)
    if worker is not None and name == "tpe":
        opts.setdefault("constant_liar", True)
    if name == "grid":  # shares one sequence through the storage: the study's seed
        grids = space.grid()
        if len(grids) == 1:
            return optuna.samplers.GridSampler, {
                "search_space": grids[0],
                "seed": search.seed,
                **opts,
            }
        union, points = space.grid_points()
        return conditional_grid_sampler(), {
            "search_space": union,
            "points": points,
            "seed": search.seed,
            **opts,
        }
    if name == "qmc":  # likewise; its random draws for conditional parameters get ours
        extra = {}
        if own_seed != search.seed:
            extra["independent_sampler"] = optuna.samplers.RandomSampler(seed=own_seed)
        return optuna.samplers.QMCSampler, {"seed": search.seed, **extra, **opts}
    factories: dict[str, Callable[..., optuna.samplers.BaseSampler]] = {
        # a liar while other trials run, unless a worker or sampler_options fix it
        "tpe": (optuna.samplers.TPESampler if "constant_liar" in opts else tpe_sampler_class()),
        "random": optuna.samplers.RandomSampler,
        "nsga2": optuna.samplers.NSGAIISampler,
        "nsga3": optuna.samplers.NSGAIIISampler,
        "cmaes": optuna.samplers.CmaEsSampler,
        "gp": optuna.samplers.GPSampler,
    }
    return factories[name], {"seed": own_seed, **opts}


@functools.cache
def conditional_grid_sampler() -> type[optuna.samplers.GridSampler]:
    """Optuna's GridSampler over the points of a conditional grid (the sum over its
    branches: ``momentum``'s values only with ``sgd``, ``cnn.blocks`` only with
    ``family: cnn``) instead of the product of every parameter's values, which would
    repeat each point once per value of the parameters it does not use.

    Everything else is the GridSampler's: each trial takes a point no trial has taken
    (shared through the storage, in an order shuffled by the study's seed), and the
    study stops once every point has run. It sets GridSampler's point list, a private
    attribute (``_all_grids``, checked against the pinned Optuna by the tests).
    """
    import optuna

    class ConditionalGridSampler(optuna.samplers.GridSampler):
        def __init__(
            self,
            search_space: Mapping[str, Sequence[Any]],
            points: Sequence[Mapping[str, Any]],
            seed: int | None = None,
        ) -> None:
            super().__init__(search_space, seed)
            names = self._param_names
            grid = [tuple(point.get(name) for name in names) for point in points]
            self._rng.rng.shuffle(grid)  # type: ignore[arg-type]
            self._all_grids = grid
            self._n_min_trials = len(grid)

    return ConditionalGridSampler


def _own_seed(seed: int | None, worker: int | None, resume: int) -> int | None:
    """This process's sampler seed: a worker's own, or a resumed study's."""
    if seed is None:
        return None
    if worker is not None:
        return (seed + worker) % 2**32
    return resume_seed(seed, resume) if resume else seed


def _check_sampler_package(name: str) -> None:
    needs = {
        "cmaes": ("cmaes", "the cmaes sampler needs the 'cmaes' package: pip install cmaes"),
        "gp": ("torch", "the gp sampler needs PyTorch: pip install 'hpsearch[gp]'"),
    }
    if name in needs and importlib.util.find_spec(needs[name][0]) is None:
        raise ConfigError(needs[name][1], path="search.sampler", value=name, has_value=True)


def make_pruner(
    search: SearchConfig, max_epochs: int, n_objectives: int
) -> optuna.pruners.BasePruner:
    """Build the Optuna pruner; epochs are its steps (the first epoch is step 1).

    Example:
        >>> from hpsearch.config import SearchConfig
        >>> pruner = make_pruner(SearchConfig(pruner="hyperband"), 20, 1)
        >>> type(pruner).__name__
        'HyperbandPruner'
        >>> make_pruner(SearchConfig(pruner="median"), 20, 2)
        Traceback (most recent call last):
        hpsearch.exceptions.ConfigError: search.pruner: got 'median'; pruning needs a single ...
    """
    import optuna

    name = search.pruner
    if name not in PRUNERS:
        raise ConfigError(
            "allowed: " + ", ".join(PRUNERS), path="search.pruner", value=name, has_value=True
        )
    if name != "none" and n_objectives > 1:
        raise ConfigError(
            "pruning needs a single objective; use pruner: none",
            path="search.pruner",
            value=name,
            has_value=True,
        )
    opts: dict[str, Any] = dict(search.pruner_options)
    pruners: dict[str, tuple[Callable[..., optuna.pruners.BasePruner], dict[str, Any]]] = {
        "none": (optuna.pruners.NopPruner, {}),
        "median": (optuna.pruners.MedianPruner, {"n_startup_trials": 3, "n_warmup_steps": 2}),
        "percentile": (
            optuna.pruners.PercentilePruner,
            {"percentile": 25.0, "n_startup_trials": 3, "n_warmup_steps": 2},
        ),
        "successive_halving": (optuna.pruners.SuccessiveHalvingPruner, {"min_resource": 1}),
        "hyperband": (
            optuna.pruners.HyperbandPruner,
            {"min_resource": 1, "max_resource": max(max_epochs, 1), "reduction_factor": 3},
        ),
        "threshold": (optuna.pruners.ThresholdPruner, {}),
    }
    factory, defaults = pruners[name]
    if name == "threshold" and "lower" not in opts and "upper" not in opts:
        raise ConfigError(
            "the threshold pruner needs lower and/or upper in search.pruner_options",
            path="search.pruner_options",
        )
    return _build("search.pruner_options", factory, {**defaults, **opts}, opts)


def _build(
    path: str, factory: Callable[..., Any], kwargs: dict[str, Any], user: dict[str, Any]
) -> Any:
    import optuna

    try:
        with warnings.catch_warnings():
            # options the study file asks for by name (multivariate, group, constant_liar...)
            # are a choice, not a surprise: no "experimental feature" warning on every run
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return factory(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(
            f"{factory.__name__} rejected these options: {exc}",
            path=path,
            value=user,
            has_value=True,
        ) from exc
