"""Builders that declare their own search space while they build ("define-by-run").

Besides today's ``fn(params, input_shape=..., num_classes=...)``, a user builder may be

* **KerasTuner style**: ``build_model(hp)``, a ``keras_tuner.HyperModel`` subclass (made
  with no arguments) or instance, called as ``.build(hp)``. ``hp`` is
  :class:`HyperParameters`, our own implementation of KerasTuner's interface
  (``Int``, ``Float``, ``Choice``, ``Boolean``, ``Fixed``, ``conditional_scope``,
  ``name_scope``, ``get``, ``values``, ``in``), so such a builder runs unchanged
  without keras_tuner installed;
* **Optuna style**: ``build(trial)``, calling ``trial.suggest_int`` and friends.

``model.api`` picks the style; ``auto`` (:func:`detect_api`) reads it from the object:
an object with a ``build`` method (a HyperModel) is KerasTuner style (Optuna style if
that method's first parameter is ``trial``; a Keras layer or model class is not a
HyperModel), a function whose first parameter is ``hp`` KerasTuner style, ``trial``
Optuna style, anything else ``params`` style. :func:`detect_api_in_source` applies the
same rules to the module's source, for validation (which imports nothing).

Each ``hp`` call becomes one Optuna suggestion on a trial-like object (``suggest_int``,
``suggest_float``, ``suggest_categorical``): the live ``optuna.Trial`` while a search
samples, :class:`ReplayTrial` when a stored trial's model is built again (training,
export, retry), or none at all for the check before a run (every parameter at its
default, as KerasTuner's first build). How KerasTuner's parameters map to Optuna's
distributions (the values are KerasTuner's in every case):

=====================================  =============================================
``Int(a, b)``, ``Int(a, b, step=s)``     ``suggest_int(a, b', step=s)`` (``b'``: the
                                        last value of the grid, KerasTuner's ``b`` if
                                        it lies on it)
``Int(..., sampling="log")``            ``suggest_int(a, b, log=True)``
``Int(..., step=s, sampling="log")``    ``suggest_categorical([a, a*s, a*s*s, ...])``:
                                        KerasTuner multiplies by the step; Optuna has
                                        no multiplicative step, so the explicit list
``Float`` alike                         ``suggest_float`` (``step=s``, ``log=True``),
                                        the categorical list for a log step
``sampling="reverse_log"``              without a step: sampled **uniformly** on the
                                        same range (Optuna has no reversed-log prior;
                                        the values are right, the prior is not
                                        KerasTuner's denser-near-the-top one); with a
                                        step: the categorical list of its values
``Choice(values)``                      ``suggest_categorical(values)`` (``ordered``
                                        is accepted and ignored: Optuna's categorical
                                        has no order)
``Boolean``                             ``suggest_categorical([True, False])``
``Fixed(value)``                        no suggestion: ``value`` (kept in ``values``)
=====================================  =============================================

KerasTuner's meaning is kept: a parameter under a ``conditional_scope`` whose parent
value is not among ``parent_values`` is not sampled and returns None; calling a name
again returns its value; a bad argument (``min_value > max_value``, an unknown
``sampling``, empty ``values``...) is a :class:`~hpsearch.exceptions.SetupError` (the
builder is wrong for every trial). The study file's parameters come first: ``hp`` is
made with them (``hp.get("epochs")``, ``hp.values``), and a name the study file's
``space`` declares is answered with the study file's value, never sampled.

Imports neither Keras nor Optuna.
"""

from __future__ import annotations

import ast
import contextlib
import inspect
import math
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from typing import Any, Literal

from hpsearch.exceptions import SetupError

__all__ = [
    "API_STYLES",
    "BuilderReplayError",
    "HyperParameters",
    "ReplayTrial",
    "TrialProxy",
    "builder_target",
    "detect_api",
    "detect_api_in_source",
]

Api = Literal["params", "keras_tuner", "optuna"]
API_STYLES = ("auto", "params", "keras_tuner", "optuna")
SAMPLINGS = ("linear", "log", "reverse_log")
_LAYER_CLASSES = {"Layer", "Model", "Sequential", "Functional", "Operation"}


class BuilderReplayError(ValueError):
    """A replayed build asked for a parameter the stored trial does not have (the
    builder declares other parameters than when the trial was sampled)."""


# ------------------------------------------------------------------ which style
def _first_param(fn: Any, skip_self: bool = False) -> str | None:
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return None
    if skip_self and params and params[0].name == "self":  # an unbound method
        params = params[1:]
    return params[0].name if params else None


def _is_keras_layer(obj: Any) -> bool:
    """A Keras layer or model (class or instance): its ``build`` is Keras', not a
    HyperModel's. Read from the class names, so Keras is not imported."""
    cls = obj if inspect.isclass(obj) else type(obj)
    return any(
        c.__name__ in _LAYER_CLASSES and c.__module__.split(".")[0] in ("keras", "tensorflow")
        for c in getattr(cls, "__mro__", ())
    )


def detect_api(obj: Any, api: str = "auto") -> Api:
    """The builder style of ``obj`` (``model.api``; ``auto`` reads it from ``obj``).

    >>> def a(hp): ...
    >>> def b(trial): ...
    >>> def c(params, input_shape, num_classes): ...
    >>> class MyHyperModel:
    ...     def build(self, hp): ...
    >>> [detect_api(f) for f in (a, b, c, MyHyperModel, MyHyperModel())]
    ['keras_tuner', 'optuna', 'params', 'keras_tuner', 'keras_tuner']
    >>> detect_api(c, "optuna")
    'optuna'
    """
    if api != "auto":
        return api  # type: ignore[return-value]
    build = getattr(obj, "build", None)
    if callable(build) and not inspect.isfunction(obj) and not _is_keras_layer(obj):
        first = _first_param(build, skip_self=inspect.isclass(obj))
        return "optuna" if first == "trial" else "keras_tuner"
    first = _first_param(obj)
    if first == "hp":
        return "keras_tuner"
    if first == "trial":
        return "optuna"
    return "params"


def detect_api_in_source(tree: ast.Module, name: str) -> Api | None:
    """:func:`detect_api` for ``name`` defined in a parsed module, without running it;
    None when the source does not tell (a name imported from elsewhere, say).

    >>> tree = ast.parse("import keras_tuner\\n"
    ...     "def f(hp): pass\\n"
    ...     "class M(keras_tuner.HyperModel):\\n    def build(self, hp): pass\\n"
    ...     "m = M()\\n"
    ...     "class K(keras.Model):\\n    def build(self, input_shape): pass\\n")
    >>> [detect_api_in_source(tree, n) for n in ("f", "M", "m", "K", "keras_tuner")]
    ['keras_tuner', 'keras_tuner', 'keras_tuner', 'params', None]
    """
    classes = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == name:
            args = [*node.args.posonlyargs, *node.args.args]
            first = args[0].arg if args else None
            return "keras_tuner" if first == "hp" else "optuna" if first == "trial" else "params"
        if isinstance(node, ast.ClassDef) and node.name == name:
            return _class_api(node)
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == name for t in node.targets
        ):
            value = node.value
            if (
                isinstance(value, ast.Call)
                and isinstance(value.func, ast.Name)
                and value.func.id in classes
            ):
                return _class_api(classes[value.func.id])
            return None
    return None


def _class_api(node: ast.ClassDef) -> Api:
    bases = {b.attr if isinstance(b, ast.Attribute) else getattr(b, "id", "") for b in node.bases}
    build = next(
        (n for n in node.body if isinstance(n, ast.FunctionDef) and n.name == "build"), None
    )
    if "HyperModel" not in bases and (build is None or bases & _LAYER_CLASSES):
        return "params"
    args = [] if build is None else [a.arg for a in build.args.args[1:]]
    return "optuna" if args[:1] == ["trial"] else "keras_tuner"


def builder_target(obj: Any, api: Api) -> Callable[..., Any]:
    """What to call for a define-by-run builder: ``obj.build`` of a HyperModel (a class
    is made with no arguments), else ``obj`` itself.

    Raises:
        SetupError: a HyperModel class that cannot be made with no arguments.
    """
    build = getattr(obj, "build", None)
    if api == "params" or not callable(build) or inspect.isfunction(obj) or _is_keras_layer(obj):
        return obj
    if inspect.isclass(obj):
        try:
            obj = obj()
        except TypeError as exc:
            raise SetupError(
                f"cannot make {obj.__name__}() with no arguments ({exc}); give an instance "
                "instead (model.family: module:name_of_the_instance)"
            ) from None
    return obj.build


# ------------------------------------------------------------------ trial-like objects
class ReplayTrial:
    """Answers ``suggest_*`` calls from stored values (a trial built again).

    >>> t = ReplayTrial({"units": 32})
    >>> t.suggest_int("units", 8, 64), t.params
    (32, {'units': 32})
    >>> t.suggest_float("rate", 0.0, 0.5)
    Traceback (most recent call last):
    hpsearch.models._hp.BuilderReplayError: the builder asked for parameter 'rate', which ...
    """

    def __init__(self, values: Mapping[str, Any]) -> None:
        self._values = dict(values)
        self.params: dict[str, Any] = {}

    def _get(self, name: str) -> Any:
        if name not in self._values:
            raise BuilderReplayError(
                f"the builder asked for parameter {name!r}, which the trial does not have "
                f"(it has {', '.join(sorted(self._values)) or 'none'}): a builder must "
                "declare the same parameters when its trial is built again"
            )
        self.params[name] = self._values[name]
        return self._values[name]

    def suggest_int(self, name: str, low: int, high: int, **_: Any) -> Any:
        return self._get(name)

    def suggest_float(self, name: str, low: float, high: float, **_: Any) -> Any:
        return self._get(name)

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any:
        return self._get(name)


class _FirstValues:
    """Answers ``suggest_*`` with a range's low end and a choice's first value (the
    check before a run of an Optuna-style builder)."""

    def suggest_int(self, name: str, low: int, high: int, **_: Any) -> int:
        return low

    def suggest_float(self, name: str, low: float, high: float, **_: Any) -> float:
        return low

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any:
        return list(choices)[0]


def _bad(what: str, reason: str) -> SetupError:
    return SetupError(f"{what}: {reason}")


class _Values:
    """What ``hp`` and the trial proxy share: the values given before the build (the
    study file's), the names the study file owns, and what the builder declared."""

    def __init__(self, given: Mapping[str, Any], owned: Collection[str] | None, trial: Any) -> None:
        self._given = dict(given)
        self._owned = set(self._given) if owned is None else set(owned)
        self._trial = trial
        self.declared: dict[str, Any] = {}
        """The values the builder declared and got (active ones, not the study file's)."""

    def _lookup(self, name: str) -> tuple[bool, Any]:
        """(True, value) for a name already answered (the study file's or declared)."""
        if name in self._owned:
            return True, self._given.get(name)
        if name in self.declared:
            return True, self.declared[name]
        return False, None


# ------------------------------------------------------------------ KerasTuner's hp
class HyperParameters(_Values):
    """KerasTuner's ``HyperParameters`` interface on an Optuna trial-like object.

    Args:
        trial: has ``suggest_int``, ``suggest_float``, ``suggest_categorical`` (a live
            ``optuna.Trial`` or :class:`ReplayTrial`); None answers every parameter
            with its default (KerasTuner's first build).
        given: values known before the build (the study file's parameters).
        owned: the names answered from ``given`` and never sampled (default: all of
            ``given``); a name owned but not given is inactive (None).

    >>> hp = HyperParameters(None, given={"epochs": 3}, owned=["epochs"])
    >>> hp.Choice("arch", ["shallow", "deep"]), hp.Int("units", 8, 32, step=8, default=16)
    ('shallow', 16)
    >>> with hp.conditional_scope("arch", ["deep"]):
    ...     print(hp.Int("extra", 1, 4))
    None
    >>> hp.get("epochs"), "extra" in hp, hp.declared
    (3, False, {'arch': 'shallow', 'units': 16})
    >>> hp.Int("bad", 5, 1)
    Traceback (most recent call last):
    hpsearch.exceptions.SetupError: hp.Int('bad'): min_value 5 is greater than max_value 1
    """

    def __init__(
        self,
        trial: Any = None,
        *,
        given: Mapping[str, Any] | None = None,
        owned: Collection[str] | None = None,
    ) -> None:
        super().__init__(given or {}, owned, trial)
        self._conditions: list[tuple[str, tuple[Any, ...]]] = []
        self._name_scopes: list[str] = []
        self._inactive: set[str] = set()

    # ------------------------------------------------ KerasTuner's read side
    @property
    def values(self) -> dict[str, Any]:
        """The active values: the study file's and the builder's."""
        given = {k: v for k, v in self._given.items() if v is not None}
        return {**given, **self.declared}

    def get(self, name: str) -> Any:
        """The value of ``name``; ValueError if it is inactive, KeyError if unknown."""
        name = self._full_name(name)
        values = self.values
        if name in values:
            return values[name]
        if name in self._inactive:
            raise ValueError(f"{name} is currently inactive.")
        raise KeyError(f"{name} does not exist.")

    def __getitem__(self, name: str) -> Any:
        return self.get(name)

    def __contains__(self, name: object) -> bool:
        try:
            self.get(str(name))
        except (KeyError, ValueError):
            return False
        return True

    def is_active(self, name: str) -> bool:
        """Whether ``name`` has a value in this trial."""
        return self._full_name(name) in self.values

    # ------------------------------------------------ scopes
    @contextlib.contextmanager
    def conditional_scope(self, parent_name: str, parent_values: Any) -> Iterator[None]:
        """Parameters declared inside are active only while ``parent_name``'s value is
        one of ``parent_values`` (they are not sampled, and return None, otherwise).
        The code inside runs either way, as in KerasTuner."""
        parent = self._full_name(parent_name)
        if parent not in self.values and parent not in self._inactive and parent not in self._owned:
            raise _bad(
                f"hp.conditional_scope({parent_name!r})",
                "no parameter of that name is declared before the scope",
            )
        wanted = _as_list(parent_values)
        if not wanted:
            raise _bad(f"hp.conditional_scope({parent_name!r})", "parent_values is empty")
        self._conditions.append((parent, tuple(wanted)))
        try:
            yield
        finally:
            self._conditions.pop()

    @contextlib.contextmanager
    def name_scope(self, name: str) -> Iterator[None]:
        """Prefix the names declared inside with ``name/`` (KerasTuner's)."""
        self._name_scopes.append(str(name))
        try:
            yield
        finally:
            self._name_scopes.pop()

    def _full_name(self, name: str) -> str:
        return "/".join([*self._name_scopes, str(name)])

    def _active(self) -> bool:
        values = self.values
        return all(p in values and values[p] in wanted for p, wanted in self._conditions)

    @contextlib.contextmanager
    def _maybe_scope(self, parent_name: str | None, parent_values: Any) -> Iterator[None]:
        if parent_name:
            if parent_values is None:
                raise _bad(f"hp(parent_name={parent_name!r})", "parent_values is needed too")
            with self.conditional_scope(parent_name, parent_values):
                yield
        else:
            yield

    def _retrieve(
        self, name: str, default: Any, suggest: Callable[[Any], Any] | None, check: str
    ) -> Any:
        """The value of a declaration: known, None if inactive, else sampled (or the
        default without a trial)."""
        for parent, _ in self._conditions:
            if parent == name:
                raise _bad(check, "a conditional parameter cannot have its parent's name")
        known, value = self._lookup(name)
        if known:
            return value if self._active() else None
        if not self._active():
            self._inactive.add(name)
            return None
        value = default if suggest is None or self._trial is None else suggest(self._trial)
        self._inactive.discard(name)
        self.declared[name] = value
        return value

    # ------------------------------------------------ the declarations
    def Int(  # noqa: N802 - KerasTuner's names
        self,
        name: str,
        min_value: int,
        max_value: int,
        step: int | None = None,
        sampling: str | None = "linear",
        default: int | None = None,
        parent_name: str | None = None,
        parent_values: Any = None,
    ) -> Any:
        """An integer in ``[min_value, max_value]`` (both included)."""
        with self._maybe_scope(parent_name, parent_values):
            full = self._full_name(name)
            what = f"hp.Int({full!r})"
            low = _int_arg(min_value, "min_value", what)
            high = _int_arg(max_value, "max_value", what)
            stepped = None if step is None else _int_arg(step, "step", what)
            how = _check_numeric(what, low, high, stepped, sampling)
            if stepped is None and how == "linear":
                stepped = 1
            suggest = _int_suggestion(full, low, high, stepped, how)
            return self._retrieve(full, low if default is None else default, suggest, what)

    def Float(  # noqa: N802
        self,
        name: str,
        min_value: float,
        max_value: float,
        step: float | None = None,
        sampling: str | None = "linear",
        default: float | None = None,
        parent_name: str | None = None,
        parent_values: Any = None,
    ) -> Any:
        """A number in ``[min_value, max_value]``."""
        with self._maybe_scope(parent_name, parent_values):
            full = self._full_name(name)
            what = f"hp.Float({full!r})"
            low = _float_arg(min_value, "min_value", what)
            high = _float_arg(max_value, "max_value", what)
            stepped = None if step is None else _float_arg(step, "step", what)
            how = _check_numeric(what, low, high, stepped, sampling)
            suggest = _float_suggestion(full, low, high, stepped, how)
            return self._retrieve(full, low if default is None else default, suggest, what)

    def Choice(  # noqa: N802
        self,
        name: str,
        values: Sequence[Any],
        ordered: bool | None = None,
        default: Any = None,
        parent_name: str | None = None,
        parent_values: Any = None,
    ) -> Any:
        """One of ``values`` (all of one type: str, int, float or bool)."""
        with self._maybe_scope(parent_name, parent_values):
            full = self._full_name(name)
            what = f"hp.Choice({full!r})"
            choices = _check_choices(what, values, ordered, default)
            return self._retrieve(
                full,
                choices[0] if default is None else default,
                lambda trial: trial.suggest_categorical(full, choices),
                what,
            )

    def Boolean(  # noqa: N802
        self,
        name: str,
        default: bool = False,
        parent_name: str | None = None,
        parent_values: Any = None,
    ) -> Any:
        """True or False."""
        with self._maybe_scope(parent_name, parent_values):
            full = self._full_name(name)
            what = f"hp.Boolean({full!r})"
            if default not in (True, False):
                raise _bad(what, f"default must be True or False, got {default!r}")
            return self._retrieve(
                full,
                bool(default),
                lambda trial: trial.suggest_categorical(full, [True, False]),
                what,
            )

    def Fixed(  # noqa: N802
        self, name: str, value: Any, parent_name: str | None = None, parent_values: Any = None
    ) -> Any:
        """A value that is not searched (kept in ``values``, not an Optuna parameter)."""
        with self._maybe_scope(parent_name, parent_values):
            full = self._full_name(name)
            what = f"hp.Fixed({full!r})"
            if not isinstance(value, bool | int | float | str):
                raise _bad(what, f"value must be an int, float, str or bool, got {value!r}")
            return self._retrieve(full, value, None, what)


def _as_list(values: Any) -> list[Any]:
    if values is None:
        return []
    if isinstance(values, list | tuple | set | frozenset):
        return list(values)
    return [values]


def _int_arg(value: Any, arg: str, what: str) -> int:
    try:
        as_int = int(value)
    except (TypeError, ValueError):
        raise _bad(what, f"{arg} must be an int, got {value!r}") from None
    if as_int != value:
        raise _bad(what, f"{arg} must be an int, got {value!r}")
    return as_int


def _float_arg(value: Any, arg: str, what: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise _bad(what, f"{arg} must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise _bad(what, f"{arg} must be finite, got {value!r}")
    return number


def _check_numeric(
    what: str, low: float, high: float, step: float | None, sampling: str | None
) -> str:
    """KerasTuner's checks of a range; its sampling (lower case)."""
    if low > high:
        raise _bad(what, f"min_value {low:g} is greater than max_value {high:g}")
    how = "linear" if sampling is None else str(sampling).lower()
    if how not in SAMPLINGS:
        raise _bad(what, f"sampling must be one of linear, log, reverse_log, got {sampling!r}")
    if how != "linear" and low <= 0:
        raise _bad(what, f"sampling={how!r} needs min_value > 0, got {low:g}")
    if how != "linear" and step is not None and step <= 1:
        raise _bad(what, f"sampling={how!r} multiplies by the step: it must be > 1, got {step:g}")
    if step is not None and step <= 0:
        raise _bad(what, f"step must be > 0, got {step:g}")
    return how


def _grid(low: float, high: float, step: float, how: str) -> list[float]:
    """KerasTuner's values of a stepped range (``Numerical._get_value_by_index``)."""
    if how == "linear":
        # KerasTuner computes (high - low) // step, which loses the top value to rounding
        # for steps like 0.2 (1.0 // 0.2 == 4.0); its documented values include it
        n = int(math.floor((high - low) / step + 1e-9)) + 1
        return [low + i * step for i in range(n)]
    n = int(math.log(high / low, step) + 1e-8) + 1
    if how == "log":
        return [low * step**i for i in range(n)]
    return [high + low - low * step**i for i in range(n)]


def _int_suggestion(
    name: str, low: int, high: int, step: int | None, how: str
) -> Callable[[Any], Any]:
    if step is None:  # log: Optuna's log-int; reverse_log: uniform (no reversed prior)
        return lambda trial: trial.suggest_int(name, low, high, log=how == "log")
    if how == "linear":
        top = low + (high - low) // step * step
        return lambda trial: trial.suggest_int(name, low, top, step=step)
    values = [int(v) for v in _grid(low, high, step, how)]
    return lambda trial: trial.suggest_categorical(name, values)


def _float_suggestion(
    name: str, low: float, high: float, step: float | None, how: str
) -> Callable[[Any], Any]:
    if step is None:
        return lambda trial: trial.suggest_float(name, low, high, log=how == "log")
    if how == "linear":
        top = _grid(low, high, step, how)[-1]
        top = high if math.isclose(top, high, rel_tol=1e-9, abs_tol=1e-12) else top
        return lambda trial: trial.suggest_float(name, low, top, step=step)
    values = _grid(low, high, step, how)
    return lambda trial: trial.suggest_categorical(name, values)


def _check_choices(what: str, values: Any, ordered: bool | None, default: Any) -> list[Any]:
    choices = _as_list(values)
    if not choices:
        raise _bad(what, "values must not be empty")
    types = {type(v) for v in choices}
    if len(types) > 1:
        names = ", ".join(sorted(t.__name__ for t in types))
        raise _bad(what, f"values must all be of one type, got {names}")
    if not isinstance(choices[0], bool | int | float | str):
        raise _bad(what, f"values must be int, float, str or bool, got {choices[0]!r}")
    if ordered and not isinstance(choices[0], int | float):
        raise _bad(what, "ordered must be False for values that are not numbers")
    if default is not None and default not in choices:
        raise _bad(what, f"default {default!r} is not one of the values")
    return choices


# ------------------------------------------------------------------ Optuna's trial
class TrialProxy(_Values):
    """What an Optuna-style builder gets: ``suggest_*`` of ``trial``, except that a
    name the study file owns is answered with the study file's value; every other
    attribute is the trial's. Without a trial, a range answers its low end and a
    choice its first value (the check before a run).

    >>> proxy = TrialProxy(None, given={"epochs": 3, "optimizer": "adam"}, owned=["optimizer"])
    >>> proxy.suggest_categorical("optimizer", ["sgd", "adam"]), proxy.suggest_int("u", 4, 9)
    ('adam', 4)
    >>> proxy.declared
    {'u': 4}
    """

    def __init__(
        self,
        trial: Any = None,
        *,
        given: Mapping[str, Any] | None = None,
        owned: Collection[str] | None = None,
    ) -> None:
        super().__init__(given or {}, owned, _FirstValues() if trial is None else trial)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._trial, name)

    def _ask(self, name: str, ask: Callable[[], Any]) -> Any:
        known, value = self._lookup(name)
        if known:
            return value
        value = ask()
        self.declared[name] = value
        return value

    def suggest_int(
        self, name: str, low: int, high: int, *, step: int = 1, log: bool = False
    ) -> Any:
        what = f"trial.suggest_int({name!r})"
        _check_range(what, low, high, log)
        return self._ask(name, lambda: self._trial.suggest_int(name, low, high, step=step, log=log))

    def suggest_float(
        self,
        name: str,
        low: float,
        high: float,
        *,
        step: float | None = None,
        log: bool = False,
    ) -> Any:
        what = f"trial.suggest_float({name!r})"
        _check_range(what, low, high, log)
        if step is not None and log:
            raise _bad(what, "step and log cannot be combined")
        return self._ask(
            name, lambda: self._trial.suggest_float(name, low, high, step=step, log=log)
        )

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any:
        if not list(choices):
            raise _bad(f"trial.suggest_categorical({name!r})", "choices must not be empty")
        return self._ask(name, lambda: self._trial.suggest_categorical(name, list(choices)))

    def suggest_uniform(self, name: str, low: float, high: float) -> Any:
        return self.suggest_float(name, low, high)

    def suggest_loguniform(self, name: str, low: float, high: float) -> Any:
        return self.suggest_float(name, low, high, log=True)

    def suggest_discrete_uniform(self, name: str, low: float, high: float, q: float) -> Any:
        return self.suggest_float(name, low, high, step=q)


def _check_range(what: str, low: float, high: float, log: bool) -> None:
    if low > high:
        raise _bad(what, f"low {low:g} is greater than high {high:g}")
    if log and low <= 0:
        raise _bad(what, f"log needs low > 0, got {low:g}")
