"""Parameter importance over the trials in which each parameter was active.

Conditional spaces break Optuna's fANOVA importance: it evaluates only the
parameters present in *every* completed trial, so ``width_3`` (sampled only when
``depth >= 3``) or ``momentum`` (only with ``sgd``) drop out, and asking for them
explicitly restricts *all* parameters to the few trials that have them.

The method here, per parameter ``p``:

1. ``S_p``: the COMPLETE trials (finite target) in which ``p`` was sampled.
2. ``C_p``: the parameters present in every trial of ``S_p`` (``p`` and the
   unconditional ones, plus parameters gated by the same condition).
3. Optuna's fANOVA (``FanovaImportanceEvaluator``, a seeded random forest) on
   ``S_p`` with the parameters ``C_p``, unnormalised: ``p``'s importance is the
   fraction of the target's variance among those trials that ``p`` alone explains.

Each number therefore reads "among the trials where p existed, p alone explains
this share of the variance"; numbers from different subsets are not forced to
sum to 1. Trials sharing the same subset are evaluated together (one forest per
distinct ``S_p``). A parameter with fewer than ``min_trials`` trials, or a single
value in them, gets no number (``None``) and the reason.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from optuna.distributions import BaseDistribution
    from optuna.trial import FrozenTrial

__all__ = ["ParamImportance", "active_param_importances"]

MIN_TRIALS = 3


@dataclass(frozen=True)
class ParamImportance:
    """The importance of one parameter.

    Attributes:
        param: the parameter's name.
        importance: share of the target's variance explained by the parameter alone
            among the trials where it was active (0..1), or None.
        n_trials: how many trials it was computed over.
        note: why there is no number (when ``importance`` is None).
    """

    param: str
    importance: float | None
    n_trials: int
    note: str = ""


def _merge(dists: Sequence[BaseDistribution]) -> BaseDistribution:
    """One distribution covering all of ``dists`` (a study resumed with a changed space)."""
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    first = dists[0]
    if all(d == first for d in dists):
        return first
    if all(isinstance(d, CategoricalDistribution) for d in dists):
        choices: list[Any] = []
        for d in dists:
            choices.extend(c for c in d.choices if c not in choices)  # type: ignore[attr-defined]
        return CategoricalDistribution(choices)
    lows = [d.low for d in dists]  # type: ignore[attr-defined]
    highs = [d.high for d in dists]  # type: ignore[attr-defined]
    log = all(getattr(d, "log", False) for d in dists)
    if all(isinstance(d, IntDistribution) for d in dists):
        return IntDistribution(int(min(lows)), int(max(highs)), log=log)
    return FloatDistribution(float(min(lows)), float(max(highs)), log=log)


def _fanova(
    trials: Sequence[FrozenTrial],
    params: Sequence[str],
    target: Callable[[FrozenTrial], float | None],
    seed: int,
) -> dict[str, float]:
    import optuna
    from optuna.importance import FanovaImportanceEvaluator

    dists = {p: _merge([t.distributions[p] for t in trials]) for p in params}
    scratch = optuna.create_study()
    scratch.add_trials(
        [
            optuna.trial.create_trial(
                params={p: t.params[p] for p in params},
                distributions=dists,
                value=target(t),
            )
            for t in trials
        ]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        raw = FanovaImportanceEvaluator(seed=seed).evaluate(scratch, params=list(params))
    return {k: float(v) for k, v in raw.items()}


def active_param_importances(
    trials: Sequence[FrozenTrial],
    target: Callable[[FrozenTrial], float | None],
    *,
    min_trials: int = MIN_TRIALS,
    seed: int = 0,
) -> list[ParamImportance]:
    """Importance of every parameter over the trials in which it was active.

    Args:
        trials: finished trials (only those with a finite ``target`` are used).
        target: the number to explain, e.g. ``lambda t: t.values[0]``.
        min_trials: fewer trials with a parameter give no number for it.
        seed: the random forest's seed (the same trials give the same numbers).

    Returns:
        One entry per parameter, most important first, those without a number last.

    Example:
        >>> imps = active_param_importances(study.trials, lambda t: t.value)
        >>> [(i.param, round(i.importance or 0, 2), i.n_trials) for i in imps]
        [('learning_rate', 0.61, 20), ('width_3', 0.2, 6), ...]
    """
    from hpsearch._logs import quiet_optuna

    values = {}
    for t in trials:
        value = target(t)
        if value is not None and math.isfinite(value):
            values[t.number] = float(value)
    usable = [t for t in trials if t.number in values]
    names = list(dict.fromkeys(p for t in usable for p in t.params))
    by_subset: dict[tuple[int, ...], list[str]] = {}  # the trials having p -> such params p
    for p in names:
        subset = tuple(t.number for t in usable if p in t.params)
        by_subset.setdefault(subset, []).append(p)
    lookup = {t.number: t for t in usable}
    results: dict[str, ParamImportance] = {}
    with quiet_optuna():
        for subset, params in by_subset.items():
            chosen = [lookup[n] for n in subset]
            results.update(_subset_importances(chosen, params, names, values, min_trials, seed))
    return sorted(
        results.values(),
        key=lambda r: (r.importance is None, -(r.importance or 0.0), names.index(r.param)),
    )


def _subset_importances(
    chosen: list[FrozenTrial],
    params: list[str],
    names: list[str],
    values: dict[int, float],
    min_trials: int,
    seed: int,
) -> dict[str, ParamImportance]:
    """The importances of ``params``, which are active in exactly the trials ``chosen``."""
    n = len(chosen)
    results: dict[str, ParamImportance] = {}
    wanted = []
    for p in params:
        if n < min_trials:
            results[p] = ParamImportance(p, None, n, f"active in {n} trial(s) only")
        elif len({repr(t.params[p]) for t in chosen}) < 2:
            results[p] = ParamImportance(p, None, n, "one value in all its trials")
        else:
            wanted.append(p)
    if not wanted:
        return results
    if len({values[t.number] for t in chosen}) < 2:
        return {
            **results,
            **{p: ParamImportance(p, 0.0, n, "the target never changed") for p in wanted},
        }
    common = [p for p in names if all(p in t.params for t in chosen)]
    try:
        found = _fanova(chosen, common, lambda t: values[t.number], seed)
    except (ValueError, RuntimeError) as exc:
        note = f"fANOVA failed: {exc}"[:120]
        return {**results, **{p: ParamImportance(p, None, n, note) for p in wanted}}
    return {**results, **{p: ParamImportance(p, found.get(p, 0.0), n) for p in wanted}}
