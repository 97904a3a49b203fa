"""Comparison figures drawn from hand-made studies (no Keras, no training)."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace
from typing import Any

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import FrozenTrial, TrialState

from hpsearch.dashboards._data import StudyView
from hpsearch.dashboards._figures import _cmp_progress

START = dt.datetime(2025, 1, 1)


def _view(name: str, values: list[float | None], *, step: float, direction: str) -> StudyView:
    """A study whose trial i runs from ``i * step`` seconds for ``step / 2``; None: pruned."""
    study = optuna.create_study(study_name=name, direction=direction)
    for i, value in enumerate(values):
        start = START + dt.timedelta(seconds=step * i)
        study.add_trial(
            FrozenTrial(
                number=i,
                state=TrialState.COMPLETE if value is not None else TrialState.PRUNED,
                value=value,
                datetime_start=start,
                datetime_complete=start + dt.timedelta(seconds=step / 2),
                params={"x": 0.5},
                distributions={"x": FloatDistribution(0, 1)},
                user_attrs={},
                system_attrs={},
                intermediate_values={},
                trial_id=i,
            )
        )
    return StudyView.of(study)


def _board(metric: str = "value", direction: str | None = None) -> Any:
    return SimpleNamespace(config=SimpleNamespace(metric=metric, direction=direction))


@pytest.fixture(autouse=True)
def _quiet_optuna() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)


def test_best_so_far_by_wall_time_and_by_trial_number():
    views = [
        _view("a", [0.5, 0.7, None, 0.6, 0.9], step=10, direction="maximize"),
        _view("b", [0.4, 0.3, 0.35], step=10, direction="minimize"),
    ]
    section = _cmp_progress(_board(), views)
    assert section.id == "progress" and section.height == 440
    data = section.figure.data
    assert [d.name for d in data] == ["a", "a", "b", "b"]
    assert [d.showlegend for d in data] == [None, False, None, False]
    assert list(data[0].x) == [5.0, 15.0, 35.0, 45.0]  # seconds to completion; no pruned trial
    assert list(data[0].y) == [0.5, 0.7, 0.7, 0.9]
    assert list(data[1].x) == [0, 1, 3, 4]
    assert list(data[2].y) == [0.4, 0.3, 0.3]  # minimize
    assert section.figure.layout.xaxis.title.text == "seconds"
    assert section.figure.layout.xaxis2.title.text == "trial"
    assert data[0].line.color != data[2].line.color


def test_long_studies_are_drawn_in_minutes():
    views = [_view("long", [0.5, 0.6, 0.7, 0.8], step=60, direction="maximize")]
    section = _cmp_progress(_board(), views)
    assert section.figure.layout.xaxis.title.text == "minutes"
    assert list(section.figure.data[0].x) == [0.5, 1.5, 2.5, 3.5]


def test_no_scored_trial_gives_a_note():
    views = [_view("empty", [None, None], step=1, direction="maximize")]
    section = _cmp_progress(_board(), views)
    assert section.figure is None
    assert section.note == "No COMPLETE trial with a value yet."
