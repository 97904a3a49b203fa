"""Progress display: one line per finished trial, plus a live status line on a terminal."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from rich.console import Console
from rich.live import Live
from rich.text import Text

if TYPE_CHECKING:
    import optuna


class Outcome(Protocol):
    """What a finished trial's line shows of its stored record (an
    ``hpsearch.study.TrialRecord``; this module is below the one that defines it)."""

    @property
    def epochs_run(self) -> int | None: ...

    @property
    def fail_reason(self) -> str | None: ...

    @property
    def train_seconds(self) -> float | None: ...


def format_params(params: Mapping[str, Any], limit: int = 8) -> str:
    """``k=v`` pairs, floats shortened."""
    items = []
    for key, value in list(params.items())[:limit]:
        if isinstance(value, float):
            value = f"{value:.3g}"
        elif isinstance(value, list):
            value = (
                "[" + ",".join(f"{v:.3g}" if isinstance(v, float) else str(v) for v in value) + "]"
            )
        items.append(f"{key}={value}")
    if len(params) > limit:
        items.append("…")
    return " ".join(items)


class Progress:
    """Shows trials done/pruned/failed, the best value and the running trial's epoch.

    Args:
        metric: the (first) objective's name.
        n_trials: the trial budget, if any.
        quiet: print nothing.
    """

    def __init__(
        self,
        metric: str,
        n_trials: int | None,
        *,
        quiet: bool = False,
        console: Console | None = None,
    ) -> None:
        self.metric = metric
        self.n_trials = n_trials
        self.quiet = quiet
        self.console = console or Console(highlight=False, soft_wrap=True)
        self.counts = {"COMPLETE": 0, "PRUNED": 0, "FAIL": 0}
        self.best: float | None = None
        self.current: dict[str, str] = {}
        self.started = time.monotonic()
        self._live: Live | None = None

    def __enter__(self) -> Progress:
        if not self.quiet and self.console.is_terminal:
            self._live = Live(
                self._status(), console=self.console, refresh_per_second=4, transient=True
            )
            self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.__exit__(None, None, None)
            self._live = None

    def set_counts(self, study: optuna.Study, best: float | None) -> None:
        from optuna.trial import TrialState

        self.counts = {s: 0 for s in self.counts}
        for t in study.get_trials(deepcopy=False):
            if t.state.name in self.counts and t.state != TrialState.RUNNING:
                self.counts[t.state.name] += 1
        self.best = best

    def _status(self) -> Text:
        done = self.counts["COMPLETE"]
        budget = f"/{self.n_trials}" if self.n_trials else ""
        best = "—" if self.best is None else f"{self.best:.4f}"
        elapsed = time.monotonic() - self.started
        head = (
            f"trials {done}{budget} complete, {self.counts['PRUNED']} pruned, "
            f"{self.counts['FAIL']} failed | best {self.metric} {best} | {elapsed:.0f}s"
        )
        running = [(w, t) for w, t in sorted(self.current.items()) if t]
        if len(running) == 1 and not running[0][0]:
            return Text(f"{head} | {running[0][1]}")
        return Text("\n".join([head, *(f"  {w}: {t}" for w, t in running)]))

    def _refresh(self) -> None:
        if self._live is not None:
            self._live.update(self._status())

    def trial_started(self, number: int, params: Mapping[str, Any], worker: str = "") -> None:
        self.current[worker] = f"trial {number}: starting"
        self._refresh()

    def epoch(
        self,
        number: int,
        epoch: int,
        epochs: int,
        logs: Mapping[str, float],
        worker: str = "",
    ) -> None:
        value = logs.get(self.metric)
        shown = "" if value is None else f" {self.metric}={value:.4f}"
        self.current[worker] = f"trial {number}: epoch {epoch}/{epochs}{shown}"
        self._refresh()

    def trial_finished(
        self,
        trial: optuna.trial.FrozenTrial,
        record: Outcome,
        best: float | None,
        worker: str = "",
    ) -> None:
        """One line for a finished trial; ``record``: what it stored."""
        state = trial.state.name
        if state in self.counts:
            self.counts[state] += 1
        self.best = best
        self.current[worker] = ""
        if not self.quiet:
            if state == "COMPLETE":
                values = trial.values or []
                outcome = f"{self.metric}={values[0]:.4f}" if values else ""
            elif state == "PRUNED":
                epochs = "?" if record.epochs_run is None else record.epochs_run
                outcome = f"pruned at epoch {epochs}"
            else:
                reason = record.fail_reason
                outcome = f"failed: {'unknown reason' if reason is None else reason}"
            secs = record.train_seconds
            timing = f" {secs:.1f}s" if isinstance(secs, float) else ""
            best_txt = "" if best is None else f" (best {best:.4f})"
            who = f"[{worker}] " if worker else ""
            self.console.print(
                f"{who}trial {trial.number:>3} {state:<8} {outcome}{best_txt}{timing}  "
                f"{format_params(trial.params)}",
                markup=False,
            )
        self._refresh()

    def status(self, text: str, worker: str = "") -> None:
        """Replace the running part of the status line."""
        self.current[worker] = text
        self._refresh()

    def message(self, text: str, worker: str = "") -> None:
        if not self.quiet:
            self.console.print(f"[{worker}] {text}" if worker else text, markup=False)
