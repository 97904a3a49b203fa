"""The scikit-learn engine: ``GridSearchCV`` and friends over scikeras' ``KerasClassifier``.

The tutorials tune Keras the scikit-learn way; this engine runs exactly that from a
study file and writes every candidate as an Optuna trial (params with their
distributions, value = mean CV score, per-fold scores, std, fit and score times), so
``optuna-dashboard``, ``hpsearch best`` and the dashboards read it like any study.

Candidates are evaluated one at a time (grid and random methods) and stored as soon
as their folds are done: Ctrl-C keeps the finished ones, and a re-run skips them.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import optuna
from scikeras.wrappers import KerasClassifier as _ScikerasClassifier
from sklearn.experimental import enable_halving_search_cv  # noqa: F401
from sklearn.model_selection import (
    GridSearchCV,
    HalvingGridSearchCV,
    HalvingRandomSearchCV,
    RandomizedSearchCV,
)
from sklearn.utils import ClassifierTags

from hpsearch._logs import quiet_optuna
from hpsearch._progress import Progress
from hpsearch.engines._core import (
    announce,
    best_value,
    count_stored,
    interrupted,
    open_checked,
    prepare_process,
)
from hpsearch.space import join_layers, parse_layer_name
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
    from hpsearch.study import StudyFile

__all__ = ["ENGINE", "KerasClassifier", "StudyClassifier", "build_estimator", "run_sklearn"]

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


class StudyClassifier(KerasClassifier):
    """The estimator of a study: seeds Keras like the Optuna engine and reports folds.

    Seeding with ``keras.utils.set_random_seed`` (not scikeras' ``random_state``, which
    turns on TensorFlow's deterministic ops) keeps both engines' runs comparable.
    """

    def fit(self, X: Any, y: Any, sample_weight: Any = None, **kwargs: Any) -> StudyClassifier:
        import keras

        seed = getattr(self, "seed", None)
        if seed is not None:
            keras.utils.set_random_seed(int(seed))
        result = super().fit(X, y, sample_weight=sample_weight, **kwargs)
        if _ACTIVE_PROGRESS is not None:
            _ACTIVE_PROGRESS.fold_done()
        return result


def _build(meta: Mapping[str, Any], params: Mapping[str, Any], **_: Any) -> keras.Model:
    """scikeras' model function: our builders, compiled with the candidate's optimizer.

    scikeras passes every estimator parameter it was given as a keyword (``**_``) and,
    because of that ``**``, all of them again as ``params``.
    """
    from hpsearch.models import build_model
    from hpsearch.training import compile_model

    hp = _hyperparameters(params)
    model = build_model(params["family"], hp, tuple(meta["X_shape_"][1:]), int(meta["n_classes_"]))
    if not getattr(model, "compiled", False):
        compile_model(model, hp, int(meta["X_shape_"][0]))
    return model


def _hyperparameters(params: Mapping[str, Any]) -> dict[str, Any]:
    """The estimator's parameters -> the builder's (``width_1, width_2`` -> ``width: [..]``)."""
    names = set(params["hp_names"])
    per_layer = set(params["per_layer_names"])
    hp = {k: v for k, v in params.items() if k in names}
    depth_param = params["depth_param"]
    if depth_param:
        depth = int(hp[depth_param])
        for name in per_layer:
            hp[name] = join_layers(name, params, depth)
    return hp


def build_estimator(study_file: StudyFile, seed: int) -> StudyClassifier:
    """The estimator for a study: fixed parameters set, searched ones to be set by the search."""
    space = study_file.space
    fixed = space.fixed
    searched_flat: dict[str, Any] = {}
    dists = space.distributions()
    for branch in dists if isinstance(dists, list) else [dists]:
        for name, values in branch.items():
            first = values[0] if isinstance(values, list) else None
            searched_flat[name] = searched_flat.get(name, first)
    per_layer = [n for n, d in space.dims.items() if d.per_layer and d.searched]
    hp_names = [n for n in space.dims if n not in per_layer]
    init: dict[str, Any] = {**fixed, **{k: v for k, v in searched_flat.items() if v is not None}}
    for name in per_layer:  # defaults for every layer; the search overrides them
        for key in searched_flat:
            parsed = parse_layer_name(key)
            if parsed is not None and parsed[0] == name and init.get(key) is None:
                init[key] = _midpoint(space.dims[name].spec)
    for name, value in searched_flat.items():
        if value is None and name not in init:
            init[name] = _midpoint(space.dims[name].spec)
    return StudyClassifier(
        model=_build,
        loss="sparse_categorical_crossentropy",
        verbose=0,
        seed=seed,
        family=space.family.name,  # a choice of families: the search sets it
        hp_names=tuple(hp_names),
        per_layer_names=tuple(per_layer),
        depth_param=space.depth_param,
        **init,
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
    ) -> None:
        from optuna.trial import TrialState

        self.study = study
        self.space = study_file.space
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
        flat = {k: v for k, v in params.items() if k != self.resource}
        return self.space.active(flat)

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
        "scoring": search.scoring,
        "cv": search.cv,
        "refit": False,  # we refit the best of *all* stored candidates, resumed ones included
        "error_score": np.nan,
        "n_jobs": None,  # Keras already uses both cores; n_jobs=2 gains nothing (STACK.md)
    }
    cls = _incremental(_SEARCHES[method])
    if method in ("grid", "halving_grid"):
        space_arg: dict[str, Any] = {"param_grid": study_file.space.grid(steps_required=True)}
    else:
        space_arg = {"param_distributions": study_file.space.distributions(), "random_state": seed}
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
    study, dataset, _ = open_checked(
        study_file, engine=ENGINE, objective_names=[_metric_name(cfg.search.scoring)]
    )
    n_candidates = study_file.n_trials or 0
    progress = Progress(_metric_name(cfg.search.scoring), None, quiet=quiet)
    count_stored(progress, study)
    estimator = build_estimator(study_file, seed)
    search = make_search(study_file, estimator, seed)
    folds = _FoldProgress(progress, n_candidates, cfg.search.cv)
    halving_epochs = cfg.search.resource == "epochs" and cfg.search.method.startswith("halving")
    recorder = _Recorder(study, study_file, seed, folds, "epochs" if halving_epochs else None)
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
            search.fit(dataset.x_train, dataset.y_train)
    except KeyboardInterrupt as exc:
        raise interrupted(
            exc, "finished candidates are stored; run the same command again to evaluate the rest"
        ) from None
    finally:
        _ACTIVE_PROGRESS = None


def _store_summary(study: optuna.Study, study_file: StudyFile, search: Any, seconds: float) -> None:
    search_cfg = study_file.config.search
    before = SklearnSummary.of(study)
    SklearnSummary(
        search=type(search).__name__,
        cv=search_cfg.cv,
        scoring=search_cfg.scoring or "accuracy",
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
    model = clone(estimator).set_params(**best.params)
    t0 = time.perf_counter()
    model.fit(dataset.x_train, dataset.y_train)
    seconds = time.perf_counter() - t0
    loss, accuracy = model.model_.evaluate(dataset.x_val, dataset.y_val, verbose=0)[:2]
    RefitRecord(
        trial=best.number,
        params=best.params,
        val_accuracy=float(accuracy),
        val_loss=float(loss),
        train_seconds=round(seconds, 3),
    ).write(study)
    progress.message(
        f"refit trial {best.number} on all {len(dataset.x_train)} training samples: "
        f"val_accuracy {accuracy:.4f}, val_loss {loss:.4f} ({seconds:.1f}s)"
    )
