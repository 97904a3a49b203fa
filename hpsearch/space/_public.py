"""The public :class:`SearchSpace`: the checked dimensions of :mod:`._space` with the
Optuna (:mod:`._optuna`) and scikit-learn (:mod:`._sklearn`) adapters as methods. The
adapters import the core, never this module, so the space package has no import cycle."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import hpsearch.space._optuna as _optuna
import hpsearch.space._sklearn as _sklearn
from hpsearch.space._space import SpaceCore

if TYPE_CHECKING:
    import optuna

__all__ = ["SearchSpace"]


class SearchSpace(SpaceCore):
    """The resolved search space of a study.

    Args:
        config: a validated study file.

    Raises:
        ConfigError: a parameter is unknown to the model family, has the wrong
            kind, an empty or invalid range, or a value that is not allowed.

    Example:
        >>> import optuna
        >>> from hpsearch.config import validate_config
        >>> space = SearchSpace(validate_config({
        ...     "model": {"family": "mlp"},
        ...     "space": {"depth": {"low": 1, "high": 3},
        ...               "width": {"low": 16, "high": 256, "per_layer": True},
        ...               "optimizer": {"choices": ["adam", "sgd"]}, "momentum": 0.9},
        ... }))
        >>> trial = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0)).ask()
        >>> params = space.suggest(trial)
        >>> params["width"], params["optimizer"], "momentum" in params  # only with sgd
        ([188, 161], 'adam', False)
        >>> trial.params  # what Optuna stores: one name per layer
        {'depth': 2, 'width_1': 188, 'width_2': 161, 'optimizer': 'adam'}
    """

    # ------------------------------------------- Optuna (see space._optuna)
    def suggest(self, trial: optuna.trial.BaseTrial) -> dict[str, Any]:
        """Ask ``trial`` for every searched parameter; return the full parameter set."""
        return _optuna.suggest(self, trial)

    def example_params(self, family: str | None = None) -> dict[str, Any]:
        """One full parameter set of the space without a sampler: every range at its
        low end, every choice at its first value, the family ``family`` if given
        (checks a user builder cheaply)."""
        return _optuna.example_params(self, family)

    def params_from_optuna(self, optuna_params: Mapping[str, Any]) -> dict[str, Any]:
        """Rebuild the full parameter set from a stored trial's ``params``."""
        return _optuna.params_from_optuna(self, optuna_params)

    def to_optuna_params(self, values: Mapping[str, Any], *, path: str) -> dict[str, Any]:
        """Turn a user's trial (``{width: [512, 512], ...}``) into Optuna param names.

        Values must lie in the space; fixed parameters may be repeated if equal.
        """
        return _optuna.to_optuna_params(self, values, path=path)

    def optuna_distributions(self, flat: Mapping[str, Any]) -> dict[str, Any]:
        """The Optuna distribution of each searched value in ``flat`` (for stored trials)."""
        return _optuna.optuna_distributions(self, flat)

    # ------------------------ grids and scikit-learn (see space._sklearn)
    def grid(self, *, steps_required: bool = False) -> list[dict[str, list[Any]]]:
        """The grid as a list of grids (param name -> values), one per branch of the
        parameters that conditions read (the family, the optimizer of ``momentum``) and
        of the depths of per-layer values: ``GridSearchCV`` takes the list, Optuna's
        GridSampler one grid (see :func:`hpsearch.search.make_sampler` for more).

        Args:
            steps_required: refuse integer ranges without a step too (scikit-learn's
                grid takes only explicit values).

        Raises:
            ConfigError: the space has a continuous range, or more than
                :data:`MAX_GRID_POINTS` points (both searches go through every one;
                Optuna's lists them all up front).
        """
        return _sklearn.grids(self, steps_required=steps_required)

    def grid_points(self) -> tuple[dict[str, list[Any]], list[dict[str, Any]]]:
        """Every point of the grid (flat name -> value, the names active at that point),
        and the union of the grids."""
        return _sklearn.grid_points(self)

    def grid_size(self) -> int | None:
        """Number of grid points (a sum over the branches of a conditional space), or
        None if the space is not finite (or has more than 10**300 points)."""
        return _sklearn.grid_size(self)

    def check_value_lists(self) -> None:
        """Refuse a choice or stepped range with more than MAX_GRID_POINTS values:
        :meth:`distributions` lists them."""
        _sklearn.check_value_lists(self)

    def distributions(self) -> dict[str, Any] | list[dict[str, Any]]:
        """scikit-learn ``param_distributions``: lists for choices, scipy distributions
        for ranges; a list of them (one per branch, sampled first) for a conditional
        space. Per-layer values are drawn for the deepest network; the layers a
        candidate does not have are ignored (see :meth:`active`)."""
        return _sklearn.distributions(self)
