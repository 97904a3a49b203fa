"""The scikit-learn engine: ``GridSearchCV`` and friends over scikeras' ``KerasClassifier``
(``KerasRegressor`` for a regression, scored by ``neg_root_mean_squared_error`` unless
``search.scoring`` says otherwise).

The tutorials tune Keras the scikit-learn way; this engine runs exactly that from a
study file and writes every candidate as an Optuna trial (params with their
distributions, value = mean CV score, per-fold scores, std, fit and score times), so
``optuna-dashboard``, ``hpsearch best`` and the dashboards read it like any study.

Candidates are evaluated one at a time (grid and random methods) and stored as soon
as their folds are done: Ctrl-C keeps the finished ones, and a re-run skips them.

A conditional space (``momentum`` only with sgd, ``active_if``, a choice of model
families with their sections) is a list of grids for the grid methods (one per branch:
the sum of the branches' points) and a list of distributions for the random ones (a
branch is drawn, then its values). The estimator's parameters are the stored names
(``family``, ``cnn.blocks``; :class:`EstimatorNames` is the one place that spells them),
each candidate is built as its family with only the values it uses, and stored with
only those, as the Optuna engine stores a trial.
"""

from __future__ import annotations

import inspect
import json
import math
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import optuna
from scikeras.utils.transformers import RegressorTargetEncoder
from scikeras.wrappers import KerasClassifier as _ScikerasClassifier
from scikeras.wrappers import KerasRegressor as _ScikerasRegressor
from sklearn.experimental import enable_halving_search_cv  # noqa: F401
from sklearn.model_selection import (
    GridSearchCV,
    HalvingGridSearchCV,
    HalvingRandomSearchCV,
    RandomizedSearchCV,
)
from sklearn.utils import ClassifierTags, RegressorTags

from hpsearch._logs import quiet_optuna
from hpsearch._progress import Progress
from hpsearch.config import FixedParam
from hpsearch.engines._core import (
    announce,
    best_value,
    count_stored,
    interrupted,
    open_checked,
    prepare_process,
)
from hpsearch.exceptions import ConfigError
from hpsearch.space import join_layers, layer_names
from hpsearch.study._record import ENGINE as ENGINE_ATTR
from hpsearch.study._record import (
    FAIL_REASON,
    SEED,
    RefitRecord,
    SklearnSummary,
    TrialRecord,
    short_reason,
)

if TYPE_CHECKING:
    import keras
    from sklearn.utils import Tags

    from hpsearch.data import Dataset
    from hpsearch.space import SearchSpace
    from hpsearch.study import StudyFile

__all__ = [
    "ENGINE",
    "EstimatorNames",
    "KerasClassifier",
    "KerasRegressor",
    "StudyClassifier",
    "StudyRegressor",
    "build_estimator",
    "run_sklearn",
]

ENGINE = "sklearn"
_ACTIVE_PROGRESS: _FoldProgress | None = None


class KerasClassifier(_ScikerasClassifier):
    """scikeras' ``KerasClassifier``, declared a classifier for scikit-learn >= 1.7.

    scikeras 0.13 predates scikit-learn's tag API: without this,
    ``sklearn.base.is_classifier`` is False, an integer ``cv`` silently becomes
    unstratified ``KFold`` and soft voting refuses the model.
    """

    def __sklearn_tags__(self) -> Tags:
        tags = super().__sklearn_tags__()
        tags.estimator_type = "classifier"
        tags.classifier_tags = ClassifierTags()
        tags.target_tags.required = True
        return tags


class KerasRegressor(_ScikerasRegressor):
    """scikeras' ``KerasRegressor``, declared a regressor for scikit-learn >= 1.7 (as
    :class:`KerasClassifier`: scikeras 0.13 predates the tag API)."""

    def __sklearn_tags__(self) -> Tags:
        tags = super().__sklearn_tags__()
        tags.estimator_type = "regressor"
        tags.regressor_tags = RegressorTags()
        tags.target_tags.required = True
        return tags


class StandardizedTarget(RegressorTargetEncoder):
    """scikeras' target encoder for a standardized target (``data.standardize_target``):
    the network learns ``(y - mean) / std``, ``predict`` answers in the target's units,
    so scikit-learn's scorers measure errors in those units."""

    def __init__(self, mean: float = 0.0, std: float = 1.0) -> None:
        self.mean = mean
        self.std = std

    def transform(self, y: np.ndarray) -> np.ndarray:
        return (super().transform(y) - self.mean) / self.std

    def inverse_transform(self, y: np.ndarray) -> np.ndarray:
        return super().inverse_transform(np.asarray(y) * self.std + self.mean)


class _StudyFit:
    """What the estimators of a study do in ``fit``: seed Keras like the Optuna engine,
    hand the candidate's epochs and batch size to scikeras, report the fold."""

    def fit(self, X: Any, y: Any, sample_weight: Any = None, **kwargs: Any) -> Any:
        import keras

        seed = getattr(self, "seed", None)
        if seed is not None:
            keras.utils.set_random_seed(int(seed))
        names = getattr(self, "space", None)
        if isinstance(names, EstimatorNames):
            hp = names.hyperparameters(self.get_params(), getattr(self, "resource", None))  # type: ignore[attr-defined]
            for key in ("epochs", "batch_size"):
                if key in hp:
                    kwargs.setdefault(key, int(hp[key]))
        result = super().fit(X, y, sample_weight=sample_weight, **kwargs)  # type: ignore[misc]
        if _ACTIVE_PROGRESS is not None:
            _ACTIVE_PROGRESS.fold_done()
        return result


class StudyRegressor(_StudyFit, KerasRegressor):
    """The estimator of a regression study (see :class:`StudyClassifier`); ``target``:
    the standardization of a standardized target, or None."""

    @property
    def target_encoder(self) -> Any:
        target = getattr(self, "target", None)
        if target:
            return StandardizedTarget(float(target["mean"]), float(target["std"]))
        return RegressorTargetEncoder()


class StudyClassifier(_StudyFit, KerasClassifier):
    """The estimator of a study: seeds Keras like the Optuna engine and reports folds.

    Seeding with ``keras.utils.set_random_seed`` (not scikeras' ``random_state``, which
    turns on TensorFlow's deterministic ops) keeps both engines' runs comparable. The
    candidate's ``epochs`` and ``batch_size`` are its family's (``cnn.epochs`` when a
    section sets them), handed to scikeras' ``fit``.
    """


class EstimatorNames:
    """The one place that turns the space's stored names into the estimator's parameter
    names and back, and an estimator's parameters into a candidate's builder params.

    scikit-learn and scikeras take the stored names as they are, dots included
    (``family``, ``cnn.blocks``, ``mlp.width_1``: ``set_params``, ``get_params``,
    ``clone``, the search's candidates and scikeras' keyword arguments to the model
    function all accept them), so those stay as they are and ``cv_results_`` shows the
    names the trials are stored under. A name scikit-learn would misread (``__`` means
    a nested estimator's parameter there and a routed one in scikeras; scikeras drops
    names that start or end with ``_``) or that is one of the wrapper's own parameters
    (``verbose``, ``loss``, ``seed``...) becomes ``hp[...]`` with every ``_`` as ``-``.
    Decoding is by table, so the mapping is reversible by construction.

    It is the estimator's ``space`` parameter: ``clone`` shares it (a deep copy is the
    same object), and the model function reads the space through it.
    """

    def __init__(self, space: SearchSpace) -> None:
        self.space = space
        self.to_estimator: dict[str, str] = {}
        self.to_stored: dict[str, str] = {}
        for dim in space.dims.values():
            if dim.searched and dim.per_layer:
                keys = layer_names(dim.name, space.depth_range(dim.depth_key)[1])
            else:
                keys = [dim.name]
            for key in keys:
                name = _estimator_name(key)
                if name in self.to_stored:  # n__x and a name hp[n--x], say
                    raise ConfigError(
                        f"{self.to_stored[name]} and {key} are one parameter ({name}) to "
                        "the sklearn engine; rename one",
                        path="space",
                    )
                self.to_estimator[key] = name
                self.to_stored[name] = key

    def __deepcopy__(self, memo: dict[int, Any]) -> EstimatorNames:
        return self  # read-only: every clone of the estimator shares it

    def __repr__(self) -> str:
        return f"EstimatorNames({', '.join(self.space.families)})"

    def encode(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Stored names -> the estimator's (names not in the space are kept)."""
        return {self.to_estimator.get(k, k): v for k, v in params.items()}

    def decode(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """The estimator's names -> stored names (names not in the space are kept)."""
        return {self.to_stored.get(k, k): v for k, v in params.items()}

    def encode_space(self, arg: Mapping[str, Any] | list[Any]) -> Any:
        """A grid or distributions (or a list of them, one per branch) in estimator names."""
        if isinstance(arg, list):
            return [self.encode(branch) for branch in arg]
        return self.encode(arg)

    def hyperparameters(
        self, estimator_params: Mapping[str, Any], resource: str | None = None
    ) -> dict[str, Any]:
        """The builder's parameter set of a candidate, from the estimator's parameters:
        the active values of its family (its own names: ``blocks``, not ``cnn.blocks``),
        per-layer values joined to its depth, an inactive parameter (``momentum`` with
        adam) left out, as the Optuna engine builds a trial. ``resource`` (a halving
        search's ``epochs``) is the estimator's own parameter and wins."""
        flat = {self.to_stored[k]: v for k, v in estimator_params.items() if k in self.to_stored}
        space = self.space
        chosen: dict[str, Any] = {}
        for dim in space.ordered():
            if not space.uses(dim.name, chosen):
                continue
            if dim.searched and dim.per_layer:
                chosen[dim.name] = join_layers(dim.name, flat, space.depth_of(chosen, dim))
            elif dim.name in flat:
                chosen[dim.name] = flat[dim.name]
            elif isinstance(dim.spec, FixedParam):
                chosen[dim.name] = dim.spec.value
        hp = space.builder_params(chosen)
        if resource is not None and resource in estimator_params:
            hp[resource] = estimator_params[resource]
        return hp


_WRAPPER_PARAMS = frozenset(inspect.signature(_ScikerasClassifier.__init__).parameters) - {
    "self",
    "kwargs",
}
_OWN_PARAMS = (_WRAPPER_PARAMS | {"seed", "space", "resource"}) - {
    "epochs",  # scikeras trains for the candidate's epochs and batch size
    "batch_size",
    "optimizer",  # unused by scikeras: our model function compiles the model
}
"""The estimator's parameters a hyperparameter may not be named as is."""


def _estimator_name(stored: str) -> str:
    """A stored name as the estimator's parameter (see :class:`EstimatorNames`)."""
    if "__" in stored or stored.startswith("_") or stored.endswith("_") or stored in _OWN_PARAMS:
        return "hp[" + stored.replace("_", "-") + "]"
    return stored


def _build(meta: Mapping[str, Any], params: Mapping[str, Any], **_: Any) -> keras.Model:
    """scikeras' model function: the candidate's family built by our builders with its
    builder params, compiled with its optimizer.

    scikeras passes every estimator parameter it was given as a keyword (``**_``) and,
    because of that ``**``, all of them again as ``params``.
    """
    from hpsearch.models import build_model
    from hpsearch.training import compile_model

    names: EstimatorNames = params["space"]
    hp = names.hyperparameters(params, params.get("resource"))
    family = names.space.family_of(hp)
    regression = "n_classes_" not in meta  # a KerasRegressor: one linear output
    num_classes = 1 if regression else int(meta["n_classes_"])
    model = build_model(family, hp, tuple(meta["X_shape_"][1:]), num_classes)
    if not getattr(model, "compiled", False):
        task = "regression" if regression else "classification"
        compile_model(model, hp, int(meta["X_shape_"][0]), task=task)
    return model


def build_estimator(
    study_file: StudyFile, seed: int, target: Mapping[str, float] | None = None
) -> StudyClassifier | StudyRegressor:
    """The estimator for a study: fixed parameters set, searched ones to be set by the
    search (a default for every name any branch of the space has: a choice's first
    value, a range's low end), every name as :class:`EstimatorNames` spells it."""
    space = study_file.space
    search = study_file.config.search
    resource = (
        "epochs" if search.method.startswith("halving") and search.resource == "epochs" else None
    )
    names = EstimatorNames(space)
    init: dict[str, Any] = dict(space.fixed)
    dists = space.distributions()
    for branch in dists if isinstance(dists, list) else [dists]:
        for key in branch:
            init.setdefault(key, _midpoint(space.dim_of(key).spec))
    if study_file.task == "regression":
        return StudyRegressor(
            model=_build,
            verbose=0,
            seed=seed,
            space=names,
            resource=resource,
            target=dict(target) if target else None,
            **names.encode(init),
        )
    return StudyClassifier(
        model=_build,
        loss="sparse_categorical_crossentropy",
        verbose=0,
        seed=seed,
        space=names,
        resource=resource,
        **names.encode(init),
    )


def _midpoint(spec: Any) -> Any:
    if hasattr(spec, "choices"):
        return spec.choices[0]
    return spec.low


class _FoldProgress:
    """Candidates x folds done, on the live status line."""

    def __init__(self, progress: Progress, n_candidates: int, n_splits: int) -> None:
        self.progress = progress
        self.n_candidates = n_candidates
        self.n_splits = n_splits
        self.fits = 0
        self.candidate = 0

    def fold_done(self) -> None:
        self.fits += 1
        self.progress.status(
            f"candidate {self.candidate}/{self.n_candidates}: fold "
            f"{min(self.fits, self.n_splits)}/{self.n_splits} done"
        )


REGRESSION_SCORING = "neg_root_mean_squared_error"


def scoring_of(study_file: StudyFile) -> str:
    """``search.scoring``, else accuracy (a classification) or the negated RMSE (a
    regression: scikit-learn's scores are greater-is-better)."""
    given = study_file.config.search.scoring
    return given or (REGRESSION_SCORING if study_file.task == "regression" else "accuracy")


def _metric_name(scoring: str | None) -> str:
    """What a candidate's value is: the mean cross-validated score."""
    return f"cv_{scoring or 'accuracy'}"


def _key(params: Mapping[str, Any]) -> str:
    return json.dumps({k: params[k] for k in sorted(params)}, default=str)


class _Recorder:
    """Writes finished candidates into the study; knows which are done already."""

    def __init__(
        self,
        study: optuna.Study,
        study_file: StudyFile,
        seed: int,
        folds: _FoldProgress,
        resource: str | None,
        names: EstimatorNames,
    ) -> None:
        from optuna.trial import TrialState

        self.study = study
        self.space = study_file.space
        self.names = names
        self.seed = seed
        self.folds = folds
        self.resource = resource
        self.progress = folds.progress
        self.done = {
            self._trial_key(t.params, TrialRecord.from_trial(t).n_resources)
            for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.FAIL))
        }
        self.skipped = 0

    def _trial_key(self, params: Mapping[str, Any], n_resources: Any) -> str:
        return _key({**params, "__resources": n_resources if self.resource else None})

    def _active(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """A candidate (the estimator's names) as its trial stores it: stored names,
        only the values it uses (its family's, ``momentum`` only with sgd)."""
        flat = {k: v for k, v in params.items() if k != self.resource}
        return self.space.active(self.names.decode(flat))

    def is_done(self, params: Mapping[str, Any], n_resources: Any = None) -> bool:
        return self._trial_key(self._active(params), n_resources) in self.done

    def record(self, results: Mapping[str, Any], count: int, n_splits: int) -> None:
        """Store the last ``count`` candidates of ``results`` (sklearn's cv_results_)."""
        total = len(results["params"])
        for i in range(total - count, total):
            params = results["params"][i]
            n_resources = int(results["n_resources"][i]) if "n_resources" in results else None
            active = self._active(params)
            key = self._trial_key(active, n_resources)
            if key in self.done:
                continue
            folds = [float(results[f"split{k}_test_score"][i]) for k in range(n_splits)]
            mean = float(results["mean_test_score"][i])
            finite = math.isfinite(mean)
            record = TrialRecord(
                fold_scores=folds,
                std_test_score=float(results["std_test_score"][i]),
                mean_fit_time=float(results["mean_fit_time"][i]),
                std_fit_time=float(results["std_fit_time"][i]),
                mean_score_time=float(results["mean_score_time"][i]),
                std_score_time=float(results["std_score_time"][i]),
                seed=self.seed,
                engine=ENGINE,
                mean_train_score=(
                    float(results["mean_train_score"][i]) if "mean_train_score" in results else None
                ),
                n_resources=n_resources,
                iteration=None if n_resources is None else int(results["iter"][i]),
                fail_reason=None if finite else "every fold failed or scored NaN",
            )
            trial = optuna.trial.create_trial(
                params=active,
                distributions=self.space.optuna_distributions(active),
                value=mean if finite else None,
                state=optuna.trial.TrialState.COMPLETE if finite else optuna.trial.TrialState.FAIL,
                user_attrs=record.to_attrs(),
            )
            self.study.add_trial(trial)
            self.done.add(key)
            stored = self.study.trials[-1]
            self.progress.trial_finished(
                stored, TrialRecord.from_trial(stored), best_value(self.study)
            )

    def record_failure(self, params: Mapping[str, Any], exc: BaseException) -> None:
        active = self._active(params)
        key = self._trial_key(active, None)
        trial = optuna.trial.create_trial(
            params=active,
            distributions=self.space.optuna_distributions(active),
            state=optuna.trial.TrialState.FAIL,
            user_attrs={  # the order earlier versions wrote
                FAIL_REASON: short_reason(str(exc).splitlines()[0]),
                ENGINE_ATTR: ENGINE,
                SEED: self.seed,
            },
        )
        self.study.add_trial(trial)
        self.done.add(key)
        stored = self.study.trials[-1]
        self.progress.trial_finished(stored, TrialRecord.from_trial(stored), best_value(self.study))


def _incremental(base: type) -> type:
    """A search class that evaluates candidates one at a time and records each."""

    class Incremental(base):
        _recorder: _Recorder

        def _run_search(
            self, evaluate_candidates: Callable[..., Any], *, callback_ctx: Any = None
        ) -> None:
            # scikit-learn >= 1.9 passes callback_ctx when the signature names it
            recorder = self._recorder
            halving = isinstance(self, HalvingGridSearchCV | HalvingRandomSearchCV)

            def one_at_a_time(candidates: Iterable[dict[str, Any]], *args: Any, **kw: Any) -> Any:
                candidates = list(candidates)
                if halving:  # a round's candidates are chosen together
                    recorder.folds.candidate += len(candidates)
                    results = evaluate_candidates(candidates, *args, **kw)
                    recorder.record(results, len(candidates), self.n_splits_)
                    return results
                results = None
                nocontext = {k: v for k, v in kw.items() if k != "callback_ctx"}
                for params in candidates:
                    recorder.folds.candidate += 1
                    recorder.folds.fits = 0
                    if recorder.is_done(params):
                        recorder.skipped += 1
                        continue
                    try:
                        # no callback context: scikit-learn's gives each candidate a task
                        # id once per call, and this calls once per candidate
                        results = evaluate_candidates([params], *args, **nocontext)
                    except ValueError as exc:
                        if "fits failed" not in str(exc):
                            raise
                        recorder.record_failure(params, exc)
                        continue
                    recorder.record(results, 1, self.n_splits_)
                return results

            if callback_ctx is None:
                super()._run_search(one_at_a_time)
            else:
                super()._run_search(one_at_a_time, callback_ctx=callback_ctx)

    Incremental.__name__ = base.__name__
    return Incremental


_SEARCHES: dict[str, type] = {
    "grid": GridSearchCV,
    "random": RandomizedSearchCV,
    "halving_grid": HalvingGridSearchCV,
    "halving_random": HalvingRandomSearchCV,
}


def make_search(study_file: StudyFile, estimator: KerasClassifier, seed: int) -> Any:
    """The scikit-learn search object a study file asks for."""
    search = study_file.config.search
    method = search.method
    common: dict[str, Any] = {
        "scoring": scoring_of(study_file),
        "cv": search.cv,
        "refit": False,  # we refit the best of *all* stored candidates, resumed ones included
        "error_score": np.nan,
        "n_jobs": None,  # Keras already uses both cores; n_jobs=2 gains nothing (STACK.md)
    }
    cls = _incremental(_SEARCHES[method])
    names = estimator.get_params()["space"]
    space = study_file.space
    if method in ("grid", "halving_grid"):
        # a list of grids for a conditional space (one per branch): its points are the
        # sum over the branches, not the product of every value
        space_arg: dict[str, Any] = {
            "param_grid": names.encode_space(space.grid(steps_required=True))
        }
    else:
        # a list of distributions for a conditional space: a branch is drawn, then its values
        space_arg = {
            "param_distributions": names.encode_space(space.distributions()),
            "random_state": seed,
        }
        if method == "random":
            space_arg["n_iter"] = search.n_iter
        else:
            space_arg["n_candidates"] = search.n_iter
    if method.startswith("halving"):
        common["factor"] = search.factor
        common["random_state"] = seed
        if search.resource == "epochs":
            common.update(resource="epochs", max_resources=study_file.max_epochs, min_resources=1)
    return cls(estimator, **space_arg, **common)


def run_sklearn(study_file: StudyFile, *, quiet: bool = False) -> optuna.Study:
    """Run (or resume) a scikit-learn search; every candidate becomes an Optuna trial.

    Raises:
        StudyInterrupted: on Ctrl-C; finished candidates are stored.
    """
    return run_search(study_file, quiet=quiet)[0]


@quiet_optuna()
def run_search(study_file: StudyFile, *, quiet: bool = False) -> tuple[optuna.Study, Any]:
    """:func:`run_sklearn`, also returning the fitted scikit-learn search object
    (its ``cv_results_`` cover the candidates evaluated in this run)."""
    prepare_process(study_file)
    cfg = study_file.config
    seed = cfg.search.seed or 0
    scoring = scoring_of(study_file)
    study, dataset, _ = open_checked(
        study_file, engine=ENGINE, objective_names=[_metric_name(scoring)]
    )
    n_candidates = study_file.n_trials or 0
    progress = Progress(_metric_name(scoring), None, quiet=quiet)
    count_stored(progress, study)
    estimator = build_estimator(study_file, seed, dataset.target)
    search = make_search(study_file, estimator, seed)
    folds = _FoldProgress(progress, n_candidates, cfg.search.cv)
    halving_epochs = cfg.search.resource == "epochs" and cfg.search.method.startswith("halving")
    recorder = _Recorder(
        study,
        study_file,
        seed,
        folds,
        "epochs" if halving_epochs else None,
        estimator.get_params()["space"],
    )
    search._recorder = recorder
    what = f"{type(search).__name__} over {n_candidates} candidates x {cfg.search.cv} folds"
    announce(study, study_file, dataset, progress, what)
    pending = _pending(search, recorder)
    if pending is not None and pending < n_candidates:
        progress.message(
            f"resuming: {n_candidates - pending} candidates already stored, {pending} to go"
        )
    start = time.monotonic()
    if pending != 0:
        _fit(search, dataset, progress, folds)
    _store_summary(study, study_file, search, time.monotonic() - start)
    if cfg.search.refit:
        _refit(study, study_file, dataset, estimator, progress)
    return study, search


def _fit(search: Any, dataset: Dataset, progress: Progress, folds: _FoldProgress) -> None:
    """Evaluate the candidates (each stored as it finishes); Ctrl-C keeps the finished."""
    global _ACTIVE_PROGRESS
    _ACTIVE_PROGRESS = folds
    try:
        with progress:
            search.fit(dataset.x_train, _targets(dataset, dataset.y_train))
    except KeyboardInterrupt as exc:
        raise interrupted(
            exc, "finished candidates are stored; run the same command again to evaluate the rest"
        ) from None
    finally:
        _ACTIVE_PROGRESS = None


def _targets(dataset: Dataset, y: np.ndarray) -> np.ndarray:
    """The targets as the estimator takes them: a standardized regression target back in
    its own units (the estimator's target encoder standardizes it for the network)."""
    if dataset.target:
        return np.asarray(y * dataset.target["std"] + dataset.target["mean"], dtype="float32")
    return y


def _store_summary(study: optuna.Study, study_file: StudyFile, search: Any, seconds: float) -> None:
    search_cfg = study_file.config.search
    before = SklearnSummary.of(study)
    SklearnSummary(
        search=type(search).__name__,
        cv=search_cfg.cv,
        scoring=scoring_of(study_file),
        # search time over every run of the study (resumed runs add theirs)
        seconds=round((before.seconds if before else 0.0) + seconds, 3),
        ranking=_ranking(study),
    ).write(study)


def _pending(search: Any, recorder: _Recorder) -> int | None:
    """Candidates still to evaluate (None for halving searches, which choose as they go)."""
    from sklearn.model_selection import ParameterGrid, ParameterSampler

    if isinstance(search, GridSearchCV):
        candidates: Iterable[dict[str, Any]] = ParameterGrid(search.param_grid)
    elif isinstance(search, RandomizedSearchCV):
        candidates = ParameterSampler(
            search.param_distributions, search.n_iter, random_state=search.random_state
        )
    else:
        return None
    return sum(not recorder.is_done(p) for p in candidates)


def _ranking(study: optuna.Study) -> dict[str, int]:
    """Trial number -> rank by mean CV score (1 = best), over every stored candidate.

    Kept on the study, not on the trials: Optuna freezes a trial once it is finished,
    and a resumed search changes the ranks.
    """
    from optuna.trial import TrialState

    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    ordered = sorted(done, key=lambda t: -(t.value or 0.0))
    return {str(t.number): rank for rank, t in enumerate(ordered, start=1)}


def _refit(
    study: optuna.Study,
    study_file: StudyFile,
    dataset: Dataset,
    estimator: KerasClassifier,
    progress: Progress,
) -> None:
    """Refit the best candidate on all training data; score it on the validation split."""
    from sklearn.base import clone

    if best_value(study) is None:
        return
    best = study.best_trial
    stored = RefitRecord.of(study)
    if stored is not None and stored.trial == best.number:
        return  # a resumed run with nothing new: the stored refit stands
    names: EstimatorNames = estimator.get_params()["space"]
    model = clone(estimator).set_params(**names.encode(best.params))
    t0 = time.perf_counter()
    model.fit(dataset.x_train, _targets(dataset, dataset.y_train))
    seconds = time.perf_counter() - t0
    loss = float(model.model_.evaluate(dataset.x_val, dataset.y_val, verbose=0)[0])
    if dataset.regression:
        err = model.predict(dataset.x_val).reshape(-1) - _targets(dataset, dataset.y_val)
        rmse = float(np.sqrt(np.mean(np.square(err, dtype="float64"))))
        record = RefitRecord(best.number, best.params, None, loss, round(seconds, 3), rmse)
        score = f"val_rmse {rmse:.6g}"
    else:
        accuracy = float(model.model_.evaluate(dataset.x_val, dataset.y_val, verbose=0)[1])
        record = RefitRecord(best.number, best.params, accuracy, loss, round(seconds, 3))
        score = f"val_accuracy {accuracy:.4f}"
    record.write(study)
    progress.message(
        f"refit trial {best.number} on all {len(dataset.x_train)} training samples: "
        f"{score}, val_loss {loss:.4f} ({seconds:.1f}s)"
    )
