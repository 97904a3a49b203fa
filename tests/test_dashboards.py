"""Dashboards: pages rendered from small real studies on digits, their figures' data read
back, the shipped comparison definitions, definition errors, and the page in headless
Chromium (plots drawn, no console errors)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import select
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml
from optuna.trial import TrialState
from typer.testing import CliRunner

import hpsearch
from hpsearch.cli import app
from hpsearch.dashboards import (
    StudyView,
    active_param_importances,
    load_dashboard_file,
    render,
    render_comparison,
    render_study,
)
from hpsearch.exceptions import ConfigError

REPO = Path(__file__).parent.parent
DIGITS = {"name": "digits", "subset": 600, "validation": 0.25, "seed": 0}

# A conditional space (per-layer widths, momentum only with sgd) whose first trial is
# pruned for sure (sgd at lr 1e-4 stays near 10% after one epoch; the threshold is 20%)
# and whose next four complete for sure (they reach 40% or more after one epoch).
CONDITIONAL = {
    "name": "cond",
    "data": DIGITS,
    "model": {"family": "mlp"},
    "space": {
        "depth": {"low": 1, "high": 3},
        "width": {"low": 8, "high": 64, "log": True, "per_layer": True},
        "dropout": {"low": 0.0, "high": 0.3},
        "optimizer": {"choices": ["adam", "sgd"]},
        "momentum": {"low": 0.0, "high": 0.9},
        "learning_rate": {"choices": [0.0001, 0.01, 0.03]},
        "batch_size": 16,
        "epochs": 2,
    },
    "search": {
        "sampler": "random",
        "pruner": "threshold",
        "pruner_options": {"lower": 0.2},
        "n_trials": 7,
        "seed": 3,
        "enqueue": [
            {"depth": 1, "width": [16], "dropout": 0.0, "optimizer": "sgd", "momentum": 0.0,
             "learning_rate": 0.0001},
            {"depth": 2, "width": [32, 32], "dropout": 0.1, "optimizer": "adam",
             "learning_rate": 0.01},
            {"depth": 3, "width": [64, 32, 16], "dropout": 0.0, "optimizer": "adam",
             "learning_rate": 0.01},
            {"depth": 3, "width": [32, 32, 32], "dropout": 0.2, "optimizer": "sgd",
             "momentum": 0.9, "learning_rate": 0.03},
            {"depth": 1, "width": [64], "dropout": 0.1, "optimizer": "sgd", "momentum": 0.5,
             "learning_rate": 0.03},
        ],
    },
}  # fmt: skip

MULTI = {
    "name": "multi",
    "data": DIGITS,
    "model": {"family": "mlp"},
    "space": {"depth": {"low": 1, "high": 2}, "width": {"low": 8, "high": 64, "log": True},
              "batch_size": 32, "epochs": 1},
    "objective": ["val_accuracy", {"metric": "params", "direction": "minimize"}],
    "search": {"sampler": "random", "n_trials": 3, "seed": 1},
}  # fmt: skip

SMALL_DIGITS = ["data.name=digits", "data.subset=400", "data.validation=0.3"]
OPTIMIZERS = ["sgd", "rmsprop", "adam", "adamax", "nadam"]
TUTORIAL_C = {
    "simple": 5,
    "wide": 5,
    "deep": 5,
    "deep + dropout": 5,
    "more epochs": 50,
    "deep and wide": 25,
    "CNN": 5,
}


def _write(folder: Path, data: dict[str, Any], storage: str) -> Path:
    path = folder / f"{data['name']}.yaml"
    path.write_text(yaml.safe_dump({**data, "storage": storage}), encoding="utf-8")
    return path


def _run(path: Path | str, *overrides: str, storage: str | None = None) -> optuna.Study:
    return hpsearch.run(
        hpsearch.load_study_file(path, list(overrides), storage=storage), quiet=True
    )


@pytest.fixture(scope="module")
def cond(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, optuna.Study]:
    folder = tmp_path_factory.mktemp("cond")
    path = _write(folder, CONDITIONAL, f"sqlite:///{folder / 'h.db'}")
    return path, _run(path)


@pytest.fixture(scope="module")
def shipped(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The studies the shipped dashboards name, run small on digits into one storage."""
    folder = tmp_path_factory.mktemp("shipped")
    url = f"sqlite:///{folder / 'h.db'}"
    # the CNN's 5x5 valid convolutions do not fit 8x8 digits: padding same there
    _run(REPO / "studies/tutorial_c.yaml", *SMALL_DIGITS, "data.subset=200",
         "space.cnn.padding=same", storage=url)  # fmt: skip
    _run(REPO / "studies/mnist_mlp.yaml", *SMALL_DIGITS, "space.epochs=2", "search.n_trials=3",
         storage=url)  # fmt: skip
    _run(
        REPO / "studies/mnist_cnn.yaml",
        *SMALL_DIGITS,
        "space.epochs=2",
        "search.n_trials=3",
        "search.enqueue=[]",  # tutorial B's 5x5 valid convolutions do not fit 8x8 digits
        "space.padding=same",
        "space.blocks={low: 1, high: 2}",
        storage=url,
    )
    # The optimizer grid as tutorial B's study would store it: one trial per optimizer,
    # named tutorial_b_optimizers (run here through Optuna's grid sampler, so that this
    # test does not depend on the scikit-learn engine; the dashboards read only params
    # and values, whichever engine wrote them).
    stand_in = {
        "name": "tutorial_b_optimizers",
        "data": {"name": "digits", "subset": 400, "validation": 0.3},
        "model": {"family": "mlp"},
        "space": {"depth": 2, "width": 64, "optimizer": {"choices": OPTIMIZERS}, "epochs": 1,
                  "batch_size": 64},
        "search": {"sampler": "grid"},
    }  # fmt: skip
    _run(_write(folder, stand_in, url))
    return url


def _trace(section: Any, name: str) -> Any:
    found = [d for d in section.figure.data if d.name == name]
    assert found, f"no trace {name!r} in {[d.name for d in section.figure.data]}"
    return found[0]


# ---------------------------------------------------------------------- one study
def test_study_page_shows_every_trial_with_pruned_ones_marked(cond, tmp_path):
    path, study = cond
    page = render_study(str(path), out_dir=tmp_path)
    trials = study.get_trials()
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    assert trials[0].state == TrialState.PRUNED and len(complete) >= 4
    assert page.path == tmp_path / "cond.html"
    ids = [s.id for s in page.sections]
    assert ids[:3] == ["summary", "history", "curves"]
    assert {"parallel", "importance", "slice", "contour", "trials"} <= set(ids)
    assert "pareto" not in ids  # single objective

    history = page.section("history")
    assert list(_trace(history, "complete").x) == [t.number for t in complete]
    assert list(_trace(history, "pruned (last reported value)").x) == [t.number for t in pruned]
    best = list(_trace(history, "best so far").y)
    assert best == sorted(best) and best[-1] == pytest.approx(study.best_value)

    curves = page.section("curves").figure.data
    assert len(curves) == len(trials)  # every trial reported at least one epoch
    for trace in curves:
        trial = trials[trace.meta["trial"]]
        assert trace.meta["state"] == trial.state.name
        assert list(trace.x) == sorted(trial.intermediate_values)  # epoch 1 first
        assert list(trace.y) == pytest.approx([trial.intermediate_values[s] for s in trace.x])
        assert trace.line.dash == ("dash" if trial.state == TrialState.PRUNED else "solid")
    assert {len(t.x) for t in curves if t.meta["state"] == "COMPLETE"} == {2}
    best_curve = _trace(page.section("curves"), f"trial {study.best_trial.number} (best)")
    assert best_curve.line.width == 3

    lines = [d for d in page.section("parallel").figure.data if d.mode == "lines"]
    assert len(lines) == len(complete)  # Optuna 5 draws one line per COMPLETE trial

    table = page.section("trials").html
    assert table.count("<tr class=") == len(trials)
    assert table.count('class="PRUNED') == len(pruned)
    assert "—" in table  # width_3 / momentum absent in some trials

    text = page.path.read_text(encoding="utf-8")
    figures = [s for s in page.sections if s.figure is not None]
    assert text.count("Plotly.newPlot(") == len(figures)


def test_importance_is_computed_over_the_trials_where_a_parameter_was_active(cond, tmp_path):
    path, study = cond
    complete = [t for t in study.get_trials() if t.state == TrialState.COMPLETE]
    result = {i.param: i for i in active_param_importances(complete, lambda t: t.value)}
    # every parameter of a COMPLETE trial gets a number or a reason
    assert set(result) == {p for t in complete for p in t.params}
    for name, imp in result.items():
        assert imp.n_trials == sum(name in t.params for t in complete)
        assert (imp.importance is None) == bool(imp.note) or imp.note == "the target never changed"
    assert result["depth"].n_trials == len(complete)
    assert result["momentum"].n_trials == sum(t.params["optimizer"] == "sgd" for t in complete)

    page = render_study(str(path), out_dir=tmp_path)
    bars = page.section("importance").figure.data[0]
    shown = dict(zip(bars.y, bars.x, strict=True))
    assert shown == pytest.approx(
        {p: i.importance for p, i in result.items() if i.importance is not None}
    )
    assert all(
        f"{result[p].n_trials} trials" in text for p, text in zip(bars.y, bars.text, strict=True)
    )


def test_conditional_parameters_keep_their_importance():
    """Optuna's fANOVA drops width_3 (absent from most trials); here it is measured."""
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))

    def objective(trial: optuna.Trial) -> float:
        depth = trial.suggest_int("depth", 1, 3)
        widths = [trial.suggest_int(f"width_{i}", 8, 64) for i in range(1, depth + 1)]
        trial.suggest_float("noise", 0, 1)
        return widths[-1] / 64 if depth == 3 else 0.5

    study.optimize(objective, n_trials=40)
    evaluator = optuna.importance.FanovaImportanceEvaluator(seed=0)
    assert "width_3" not in optuna.importance.get_param_importances(study, evaluator=evaluator)
    result = {i.param: i for i in active_param_importances(study.trials, lambda t: t.value)}
    with_3 = [t for t in study.trials if "width_3" in t.params]
    assert result["width_3"].n_trials == len(with_3) < len(study.trials)
    # where it exists it alone decides the value: the most important parameter
    ranked = active_param_importances(study.trials, lambda t: t.value)
    assert ranked[0].param == "width_3" and result["width_3"].importance > 0.5


def test_multi_objective_page_has_a_pareto_front(tmp_path):
    path = _write(tmp_path, MULTI, f"sqlite:///{tmp_path / 'h.db'}")
    study = _run(path)
    page = render_study(str(path), out_dir=tmp_path)
    ids = [s.id for s in page.sections]
    assert {"pareto", "history", "history-2"} <= set(ids)
    points = sum(len(d.x) for d in page.section("pareto").figure.data if d.x is not None)
    assert points == len(study.trials)
    params = page.section("history-2")
    assert list(_trace(params, "complete").y) == [t.values[1] for t in study.trials]
    # no intermediate values with two objectives: the curves come from Keras' history
    curves = page.section("curves").figure.data
    assert [len(c.x) for c in curves] == [1] * len(study.trials)


def test_a_study_by_name_and_the_default_output_folder(cond, tmp_path, monkeypatch):
    path, study = cond
    monkeypatch.chdir(tmp_path)
    url = hpsearch.load_study_file(path).storage
    result = CliRunner().invoke(app, ["dashboard", "cond", "--storage", url])
    assert result.exit_code == 0, result.output
    assert f"wrote {Path('dashboards') / 'cond.html'}" in result.output
    assert f"{len(study.trials)} trials" in result.output
    assert (tmp_path / "dashboards" / "cond.html").stat().st_size > 1_000_000  # plotly.js inside


def test_pages_fetch_nothing_from_the_network(cond, tmp_path):
    page = render_study(str(cond[0]), out_dir=tmp_path)
    text = page.path.read_text(encoding="utf-8")
    assert not re.search(r"<(script|link)[^>]+(src|href)=", text)
    assert text.count("<script") == 1 + sum(s.figure is not None for s in page.sections)


# ---------------------------------------------------------------------- comparisons
def _shipped(name: str, storage: str, tmp_path: Path) -> Any:
    return render_comparison(
        REPO / "dashboards" / f"{name}.yaml", storage=storage, out_dir=tmp_path
    )


def test_every_shipped_dashboard_is_tested():
    assert sorted(p.stem for p in (REPO / "dashboards").glob("*.yaml")) == [
        "mlp_vs_cnn",
        "optimizers",
        "tutorial_c_networks",
    ]


@pytest.mark.slow  # runs the shipped studies small (about 20 s, once)
def test_tutorial_c_networks(shipped, tmp_path):
    page = _shipped("tutorial_c_networks", shipped, tmp_path)
    assert page.path == tmp_path / "tutorial_c_networks.html"
    assert [s.id for s in page.sections] == ["summary", "groups", "curves", "params", "best"]
    box = page.section("groups").figure.data
    assert len(box) == 1 and sorted(box[0].x) == sorted(TUTORIAL_C)  # every network named
    curves = page.section("curves").figure.data
    assert {c.name: len(c.x) for c in curves} == TUTORIAL_C  # one colour per network
    sizes = {d.name: d.x[0] for d in page.section("params").figure.data}
    assert sizes["wide"] > sizes["simple"] and sizes["deep and wide"] > sizes["deep"]
    # 25 filters of 5x5, 5x5 and 4x4, a 1x1 map (25 values) into the dense 50: the same
    # weights on 8x8 digits with padding same as on MNIST with padding valid
    assert sizes["CNN"] == 650 + 15_650 + 10_025 + 1_300 + 510 == 28_135
    assert list(page.section("best").figure.data[0].x) == ["tutorial C"]
    # the trials behind the groups: six MLPs and the CNN, each with its family's params
    study = optuna.load_study(study_name="tutorial_c", storage=shipped)
    assert len(study.trials) == 7
    assert [t.params["family"] for t in study.trials] == ["mlp"] * 6 + ["cnn"]
    for t in study.trials:
        other = "cnn" if t.params["family"] == "mlp" else "mlp"
        assert not [p for p in t.params if p.startswith(f"{other}.")], t.params
    assert {"mlp.depth", "mlp.width", "mlp.dropout"} <= set(study.trials[0].params)


@pytest.mark.slow  # runs the shipped studies small (about 20 s, once)
def test_group_by_family_on_a_family_choice(shipped, tmp_path):
    """group_by reads the stored family; a group names a section's parameter by the
    builder's name (depth, stored as mlp.depth); a trial without it is not in the group."""
    board = tmp_path / "board.yaml"
    board.write_text(
        yaml.safe_dump({"studies": [{"study": "tutorial_c", "storage": shipped}],
                        "metric": "val_accuracy", "group_by": "family"})
    )  # fmt: skip
    box = render_comparison(board, out_dir=tmp_path).section("groups").figure.data
    assert sorted(box[0].x) == ["cnn"] + ["mlp"] * 6
    board.write_text(
        yaml.safe_dump({"studies": [{"study": "tutorial_c", "storage": shipped}],
                        "metric": "val_accuracy", "groups": {"deep": {"depth": 5}}})
    )  # fmt: skip
    box = render_comparison(board, out_dir=tmp_path).section("groups").figure.data
    assert sorted(box[0].x) == ["deep"] * 4 + ["other"] * 3  # 2 one-layer MLPs and the CNN


@pytest.mark.slow  # runs the shipped studies small (about 20 s, once)
def test_optimizers_compared_across_a_grid_and_a_search(shipped, tmp_path):
    page = _shipped("optimizers", shipped, tmp_path)
    grid_label, tpe_label = "GridSearchCV (tutorial B)", "Optuna TPE (mnist_mlp)"
    groups = page.section("groups")
    assert sorted(_trace(groups, grid_label).x) == sorted(OPTIMIZERS)
    mlp = optuna.load_study(study_name="mnist_mlp", storage=shipped)
    done = [t for t in mlp.trials if t.state == TrialState.COMPLETE]
    assert sorted(_trace(groups, tpe_label).x) == sorted(t.params["optimizer"] for t in done)
    assert list(page.section("best").figure.data[0].x) == [grid_label, tpe_label]
    progress = page.section("progress").figure.data
    assert [d.name for d in progress] == [grid_label, grid_label, tpe_label, tpe_label]
    assert [len(d.x) for d in progress] == [5, 5, len(done), len(done)]
    by_wall_time = progress[0].x
    assert list(by_wall_time) == sorted(by_wall_time) and by_wall_time[0] >= 0
    importance = page.section("importance").figure.data
    assert "optimizer" in _trace(page.section("importance"), grid_label).y
    assert {d.name for d in importance} <= {grid_label, tpe_label}


@pytest.mark.slow  # runs the shipped studies small (about 20 s, once)
def test_mlp_vs_cnn(shipped, tmp_path):
    page = _shipped("mlp_vs_cnn", shipped, tmp_path)
    assert [s.id for s in page.sections] == [
        "summary", "best", "progress", "params", "groups", "curves", "importance",
    ]  # fmt: skip
    studies = {
        label: optuna.load_study(study_name=name, storage=shipped)
        for label, name in (("MLP", "mnist_mlp"), ("CNN", "mnist_cnn"))
    }
    best = page.section("best").figure.data[0]
    assert list(best.x) == ["MLP", "CNN"]
    assert list(best.y) == pytest.approx(
        [max(t.user_attrs["val_accuracy"] for t in s.trials if "val_accuracy" in t.user_attrs)
         for s in studies.values()]
    )  # fmt: skip
    params = page.section("params")
    for label, study in studies.items():
        done = [t for t in study.trials if t.state == TrialState.COMPLETE]
        assert sorted(_trace(params, label).x) == sorted(t.user_attrs["params"] for t in done)
        curves = [c for c in page.section("curves").figure.data if c.meta["study"] == label]
        assert len(curves) == len(study.trials)
        assert all(len(c.x) == study.trials[c.meta["trial"]].user_attrs["epochs_run"]
                   for c in curves)  # fmt: skip
    assert len(page.section("progress").figure.data) == 4


def test_a_study_stored_like_the_sklearn_engine(tmp_path):
    """Values and params only (no epochs, no parameter count): the plots that can be
    drawn are, the others say why not."""
    url = f"sqlite:///{tmp_path / 'grid.db'}"
    study = optuna.create_study(study_name="grid", storage=url, direction="maximize")
    study.set_user_attr("hpsearch", {"engine": "sklearn", "objectives": ["cv_accuracy"]})
    dist = optuna.distributions.CategoricalDistribution(OPTIMIZERS)
    for i, name in enumerate(OPTIMIZERS):
        study.add_trial(
            optuna.trial.create_trial(
                params={"optimizer": name},
                distributions={"optimizer": dist},
                value=0.8 + i / 100,
                user_attrs={"fold_scores": [0.8, 0.81], "std_test_score": 0.005},
            )
        )
    board = tmp_path / "board.yaml"
    board.write_text(
        yaml.safe_dump({"studies": [{"study": "grid", "storage": url}], "group_by": "optimizer"})
    )
    page = render_comparison(board, out_dir=tmp_path)
    assert sorted(page.section("groups").figure.data[0].x) == sorted(OPTIMIZERS)
    assert page.section("best").figure.data[0].y[0] == pytest.approx(0.84)
    assert page.section("curves").figure is None
    assert "No per-epoch values in grid" in page.section("curves").note
    assert page.section("params").figure is None
    assert "No parameter counts in grid" in page.section("params").note
    view = StudyView.of(study)
    assert view.engine == "sklearn" and view.objectives == ["cv_accuracy"]
    # render() tells a dashboard definition from a study
    pages = render([str(board), "grid"], storage=url, out_dir=tmp_path)
    assert [p.path.name for p in pages] == ["board.html", "grid.html"]
    assert "No per-epoch values" in pages[1].section("curves").note


# ---------------------------------------------------------------------- definition errors
BAD_DEFINITIONS = [
    ("studies: [a]\nplots: [best, histroy]\n",
     r"board.yaml: plots\[1\]: got 'histroy'; allowed: best, progress, params, groups, curves"),
    ("studies: [a]\ntitel: x\n", r"board.yaml: titel: unknown key; allowed: title, description"),
    ("studies:\n  - {study: a, lable: x}\n",
     r"board.yaml: studies\[0\].lable: unknown key; allowed: study, storage, label"),
    ("studies: []\n", r"board.yaml: studies: list at least one study"),
    ("studies: [a]\nplots: [groups]\n",
     r"board.yaml: plots\[0\]: the groups plot needs group_by"),
    ("studies: [nothere.yaml]\n",
     r"board.yaml: studies\[0\].study: got 'nothere.yaml'; study file not found"),
    ("studies: [a]\ndirection: up\n",
     r"board.yaml: direction: got 'up'; allowed: maximize, minimize"),
    ("studies: [a]\ngroups: {simple: {}}\n",
     r"board.yaml: groups.simple: a group needs at least one parameter value"),
    ("studies: [a\n", r"board.yaml: line 2, column 1: malformed YAML"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "message"), BAD_DEFINITIONS)
def test_bad_definitions_give_one_line(tmp_path, monkeypatch, text, message):
    monkeypatch.chdir(tmp_path)
    Path("board.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        load_dashboard_file("board.yaml")


def test_cli_errors_exit_2_with_one_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("board.yaml").write_text("studies: [a]\nplots: [nope]\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["dashboard", "board.yaml"])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        "error: board.yaml: plots[0]: got 'nope'; allowed: best, progress, params, groups, "
        "curves, importance"
    ]
    # a misspelt ``studies`` is still read as a definition, not as a study file
    Path("board.yaml").write_text("title: t\nstudy: [a]\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["dashboard", "board.yaml"])
    assert result.exit_code == 2
    assert result.output.startswith("error: board.yaml: study: unknown key; allowed: title")
    Path("board.yaml").write_text("studies: [missing]\n", encoding="utf-8")
    url = f"sqlite:///{tmp_path / 'none.db'}"
    result = CliRunner().invoke(app, ["dashboard", "board.yaml", "--storage", url])
    assert result.exit_code == 2
    assert result.output.startswith("error: board.yaml: studies[0]: storage: got ")
    assert len(result.output.strip().splitlines()) == 1


def test_a_missing_study_names_the_ones_there(cond, tmp_path):
    url = hpsearch.load_study_file(cond[0]).storage
    board = tmp_path / "board.yaml"
    board.write_text(yaml.safe_dump({"studies": ["cond", "nope"], "storage": url}))
    result = CliRunner().invoke(app, ["dashboard", str(board)])
    assert result.exit_code == 2
    assert f"studies[1]: no study 'nope' in {url} (studies there: cond)" in result.output


# ---------------------------------------------------------------------- in a browser
def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


class _DevTools:
    """Chromium's DevTools protocol over --remote-debugging-pipe (fd 3 in, fd 4 out):
    no extra package, and console messages arrive with their level."""

    def __init__(self, exe: str, profile: Path) -> None:
        ours_read, its_write = os.pipe()
        its_read, ours_write = os.pipe()
        # move the child's ends above 2 and away from 3/4 before dup2 puts them there
        high_read = os.dup(its_read) if its_read > 4 else _dup_high(its_read)
        high_write = os.dup(its_write) if its_write > 4 else _dup_high(its_write)

        def place() -> None:
            os.dup2(high_read, 3)
            os.dup2(high_write, 4)

        self.proc = subprocess.Popen(
            [
                exe,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-quic",
                f"--user-data-dir={profile}",
                "--remote-debugging-pipe",
                "about:blank",
            ],
            pass_fds=(3, 4),
            preexec_fn=place,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for fd in (its_read, its_write, high_read, high_write):
            os.close(fd)
        self.read_fd, self.write_fd = ours_read, ours_write
        self.buffer = b""
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    def send(self, method: str, params: dict[str, Any] | None = None, session: str | None = None,
             timeout: float = 30) -> dict[str, Any]:  # fmt: skip
        self.next_id += 1
        message: dict[str, Any] = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self.write_fd, json.dumps(message).encode() + b"\0")
        for reply in self._messages(timeout):
            if reply.get("id") == self.next_id:
                assert "error" not in reply, reply
                return reply["result"]
        raise TimeoutError(method)

    def wait_event(self, method: str, timeout: float = 30) -> None:
        if any(e["method"] == method for e in self.events):
            return
        for message in self._messages(timeout):
            if message.get("method") == method:
                return
        raise TimeoutError(method)

    def pump(self, seconds: float) -> None:
        for _ in self._messages(seconds, stop_on_timeout=True):
            pass

    def _messages(self, timeout: float, stop_on_timeout: bool = False) -> Iterator[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while True:
            while b"\0" in self.buffer:
                raw, self.buffer = self.buffer.split(b"\0", 1)
                message = json.loads(raw)
                if "method" in message:
                    self.events.append(message)
                yield message
            left = deadline - time.monotonic()
            if left <= 0:
                if stop_on_timeout:
                    return
                raise TimeoutError("no answer from chromium")
            ready, _, _ = select.select([self.read_fd], [], [], left)
            if ready:
                chunk = os.read(self.read_fd, 1 << 20)
                if not chunk:
                    raise RuntimeError("chromium closed the pipe")
                self.buffer += chunk

    def close(self) -> None:
        with contextlib.suppress(TimeoutError, RuntimeError, OSError):
            self.send("Browser.close", timeout=5)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self.read_fd)
        os.close(self.write_fd)


def _dup_high(fd: int) -> int:
    import fcntl

    return fcntl.fcntl(fd, fcntl.F_DUPFD, 10)


def _load(tools: _DevTools, page: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """Open ``page`` in a new tab; return each plot's state and the console's errors."""
    target = tools.send("Target.createTarget", {"url": "about:blank"})["targetId"]
    session = tools.send("Target.attachToTarget", {"targetId": target, "flatten": True})[
        "sessionId"
    ]
    for domain in ("Page", "Runtime", "Log"):
        tools.send(f"{domain}.enable", session=session)
    tools.events.clear()
    tools.send("Page.navigate", {"url": page.resolve().as_uri()}, session=session)
    tools.wait_event("Page.loadEventFired", timeout=60)
    tools.pump(0.5)  # let late console messages arrive
    probe = """JSON.stringify(Array.from(document.querySelectorAll('.js-plotly-plot')).map(el => ({
        id: el.id, traces: (el.data || []).length, svgs: el.querySelectorAll('svg.main-svg').length,
        width: el.getBoundingClientRect().width, height: el.getBoundingClientRect().height,
        marks: el.querySelectorAll('.trace, .bars .point, .parcoords, .cartesianlayer path').length
    })))"""
    result = tools.send(
        "Runtime.evaluate", {"expression": probe, "returnByValue": True}, session=session
    )
    plots = json.loads(result["result"]["value"])
    errors = []
    for event in tools.events:
        method, params = event["method"], event.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            errors.append(
                " ".join(str(a.get("value", a.get("description"))) for a in params["args"])
            )
        elif method == "Runtime.exceptionThrown":
            errors.append(params["exceptionDetails"].get("text", "exception"))
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
            errors.append(params["entry"]["text"])
    tools.send("Target.closeTarget", {"targetId": target})
    return plots, errors


@pytest.mark.slow
@pytest.mark.skipif(
    _chromium() is None,
    reason="chromium is not installed (Debian: apt-get install chromium; .ci/run installs it)",
)
def test_pages_render_in_headless_chromium_without_console_errors(cond, shipped, tmp_path):
    pages = [
        render_study(str(cond[0]), out_dir=tmp_path),  # every per-study plot
        _shipped("mlp_vs_cnn", shipped, tmp_path),  # every comparison plot
    ]
    exe = _chromium()
    assert exe is not None
    tools = _DevTools(exe, tmp_path / "profile")
    try:
        tools.send("Browser.getVersion")
        for page in pages:
            plots, errors = _load(tools, page.path)
            assert errors == [], f"{page.path.name}: {errors}"
            expected = [f"fig-{s.id}" for s in page.sections if s.figure is not None]
            assert [p["id"] for p in plots] == expected, page.path.name
            for plot in plots:
                assert plot["traces"] > 0 and plot["svgs"] > 0, plot
                assert plot["width"] > 300 and plot["height"] > 200, plot
                assert plot["marks"] > 0, plot
    finally:
        tools.close()
