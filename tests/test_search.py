"""hpsearch.search: samplers and pruners by name, their seeds, and their errors (no Keras).

``tests/test_config.py`` checks that every name builds; these tests check what is built:
which class, with which seed, and what a wrong name or option says.
"""

from __future__ import annotations

from typing import Any

import optuna
import pytest

from hpsearch.config import SearchConfig
from hpsearch.exceptions import ConfigError
from hpsearch.search import check_sampler, make_pruner, make_sampler, resume_seed
from hpsearch.study import study_from_dict

SPACE = {
    "depth": {"choices": [1, 2]},
    "width": {"choices": [8, 16, 32]},
    "dropout": {"low": 0.0, "high": 0.5},
    "epochs": 4,
}
GRID_SPACE = {"depth": {"choices": [1, 2]}, "width": {"choices": [8, 16, 32]}, "epochs": 4}


def space_of(space: dict[str, Any] = SPACE) -> Any:
    return study_from_dict({"name": "s", "space": space, "search": {"n_trials": 3}}).space


def proposals(sampler: optuna.samplers.BaseSampler, space: Any, n: int = 4) -> list[dict]:
    """The params ``sampler`` proposes for ``n`` trials of a new in-memory study."""
    study = optuna.create_study(sampler=sampler)
    study.optimize(lambda trial: len(space.suggest(trial)) * 0.0, n_trials=n)
    return [t.params for t in study.trials]


# ------------------------------------------------------------------ kinds
@pytest.mark.parametrize(
    ("sampler", "n_objectives", "cls"),
    [
        ("auto", 1, optuna.samplers.TPESampler),
        ("auto", 2, optuna.samplers.NSGAIISampler),
        ("tpe", 2, optuna.samplers.TPESampler),
        ("random", 1, optuna.samplers.RandomSampler),
        ("qmc", 1, optuna.samplers.QMCSampler),
        ("nsga3", 2, optuna.samplers.NSGAIIISampler),
        ("cmaes", 1, optuna.samplers.CmaEsSampler),
    ],
)
def test_make_sampler_builds_the_named_kind(sampler, n_objectives, cls):
    built = make_sampler(SearchConfig(sampler=sampler, seed=3), space_of(), n_objectives)
    assert isinstance(built, cls)


def test_the_grid_sampler_gets_the_space_as_its_grid():
    built = make_sampler(SearchConfig(sampler="grid"), space_of(GRID_SPACE), 1)
    assert isinstance(built, optuna.samplers.GridSampler)
    seen = {tuple(sorted(p.items())) for p in proposals(built, space_of(GRID_SPACE), 6)}
    assert len(seen) == 6  # the 2 x 3 grid, each point once


# ------------------------------------------------------------------ seeds
def test_the_same_seed_proposes_the_same_params_and_another_seed_others():
    space = space_of()
    first = proposals(make_sampler(SearchConfig(sampler="random", seed=5), space, 1), space)
    again = proposals(make_sampler(SearchConfig(sampler="random", seed=5), space, 1), space)
    other = proposals(make_sampler(SearchConfig(sampler="random", seed=6), space, 1), space)
    assert first == again
    assert first != other


def test_a_worker_and_a_resumed_study_get_their_own_seeds():
    space = space_of()
    search = SearchConfig(sampler="random", seed=5)

    def seeded(seed: int) -> list[dict]:
        return proposals(optuna.samplers.RandomSampler(seed=seed), space)

    assert proposals(make_sampler(search, space, 1), space) == seeded(5)
    assert proposals(make_sampler(search, space, 1, worker=2), space) == seeded(7)
    resumed = make_sampler(search, space, 1, resume=4)
    assert proposals(resumed, space) == seeded(resume_seed(5, 4))
    assert proposals(make_sampler(search, space, 1, resume=0), space) == seeded(5)


def test_a_worker_seed_wraps_around_at_two_to_the_32():
    space = space_of()
    search = SearchConfig(sampler="random", seed=2**32 - 1)
    worker = make_sampler(search, space, 1, worker=1)  # NumPy refuses seeds >= 2**32
    assert proposals(worker, space) == proposals(optuna.samplers.RandomSampler(seed=0), space)


def test_grid_and_qmc_keep_the_study_seed_in_every_worker():
    grid_space = space_of(GRID_SPACE)
    search = SearchConfig(sampler="grid", seed=1)
    plain = proposals(make_sampler(search, grid_space, 1), grid_space, 6)
    assert proposals(make_sampler(search, grid_space, 1, worker=3), grid_space, 6) == plain
    assert proposals(make_sampler(search, grid_space, 1, resume=2), grid_space, 6) == plain

    qmc = SearchConfig(sampler="qmc", seed=1)
    space = space_of()
    own = make_sampler(qmc, space, 1)
    worker = make_sampler(qmc, space, 1, worker=3)
    assert own._seed == worker._seed == 1  # one sequence, shared through the storage
    # ... but the random draws for conditional parameters are the worker's own (seed 1 + 3)
    draws = proposals(worker._independent_sampler, space)
    assert draws == proposals(optuna.samplers.RandomSampler(seed=4), space)
    assert draws != proposals(own._independent_sampler, space)


def test_resume_seed_is_repeatable_distinct_and_in_numpys_range():
    seeds = [resume_seed(42, started) for started in range(1, 201)]
    assert seeds == [resume_seed(42, started) for started in range(1, 201)]
    assert len(set(seeds)) == 200
    assert not set(seeds) & {resume_seed(43, started) for started in range(1, 201)}
    assert all(0 <= s < 2**32 for s in seeds)
    assert 42 + 1 not in seeds[:3]  # not a worker's seed (seed + worker)


# ------------------------------------------------------------------ check_sampler
@pytest.mark.parametrize(
    ("search", "n_objectives", "match"),
    [
        (
            SearchConfig(sampler="tpee"),
            1,
            r"^search\.sampler: got 'tpee'; allowed: auto, tpe, random, grid, cmaes",
        ),
        (SearchConfig(sampler="cmaes"), 2, r"^search\.sampler: got 'cmaes'; cmaes handles one"),
        (
            SearchConfig(sampler="random", sampler_options={"n_startup_trials": 5}),
            1,
            r"^search\.sampler_options: got \{'n_startup_trials': 5\}; RandomSampler rejected "
            r"these options: .*got an unexpected keyword argument 'n_startup_trials'",
        ),
        (
            SearchConfig(sampler="tpe", sampler_options={"n_startup_trials": 1, "bogus": 2}),
            1,
            r"^search\.sampler_options: .*TPESampler rejected these options: .*'bogus'",
        ),
    ],
)
def test_check_sampler_and_make_sampler_refuse_with_one_message(search, n_objectives, match):
    space = space_of()
    with pytest.raises(ConfigError, match=match):
        check_sampler(search, space, n_objectives)
    with pytest.raises(ConfigError, match=match):
        make_sampler(search, space, n_objectives)


def test_check_sampler_accepts_what_make_sampler_builds():
    search = SearchConfig(sampler="tpe", sampler_options={"multivariate": True})
    check_sampler(search, space_of(), 1)
    assert make_sampler(search, space_of(), 1)._multivariate


def test_a_sampler_whose_package_is_missing_names_it(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "cmaes" else real(name, *a)
    )
    with pytest.raises(ConfigError, match=r"search\.sampler: got 'cmaes'; .*pip install cmaes"):
        check_sampler(SearchConfig(sampler="cmaes"), space_of(), 1)


# ------------------------------------------------------------------ make_pruner
def test_pruners_get_hpsearchs_defaults_and_the_files_options_win():
    median = make_pruner(SearchConfig(pruner="median"), 20, 1)
    assert (median._n_startup_trials, median._n_warmup_steps) == (3, 2)
    mine = make_pruner(SearchConfig(pruner="median", pruner_options={"n_warmup_steps": 5}), 20, 1)
    assert (mine._n_startup_trials, mine._n_warmup_steps) == (3, 5)
    hyperband = make_pruner(SearchConfig(pruner="hyperband"), 20, 1)
    assert (hyperband._min_resource, hyperband._max_resource) == (1, 20)  # epochs are steps
    assert make_pruner(SearchConfig(pruner="hyperband"), 0, 1)._max_resource == 1
    assert isinstance(make_pruner(SearchConfig(), 20, 3), optuna.pruners.NopPruner)


@pytest.mark.parametrize(
    ("search", "n_objectives", "match"),
    [
        (SearchConfig(pruner="early"), 1, r"^search\.pruner: got 'early'; allowed: none, median"),
        (SearchConfig(pruner="median"), 2, r"^search\.pruner: .*pruning needs a single objective"),
        (SearchConfig(pruner="threshold"), 1, r"^search\.pruner_options: the threshold pruner"),
        (
            SearchConfig(pruner="median", pruner_options={"patience": 3}),
            1,
            r"^search\.pruner_options: got \{'patience': 3\}; MedianPruner rejected",
        ),
        (
            SearchConfig(pruner="percentile", pruner_options={"percentile": 150.0}),
            1,
            r"^search\.pruner_options: .*PercentilePruner rejected these options: .*percentile",
        ),
    ],
)
def test_make_pruner_refuses_with_one_message(search, n_objectives, match):
    with pytest.raises(ConfigError, match=match):
        make_pruner(search, 20, n_objectives)
