"""Dashboard definitions: the YAML files in ``dashboards/`` that compare studies.

Validated once, here (pydantic, unknown keys rejected); mistakes come out as
:class:`~hpsearch.exceptions.ConfigError` in the same one-line shape as study files:
``dashboards/x.yaml: plots[1]: got 'histroy'; allowed: best, progress, ...``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from hpsearch.exceptions import ConfigError

__all__ = [
    "COMPARISON_PLOTS",
    "DashboardConfig",
    "DashboardFile",
    "StudyRef",
    "is_dashboard_file",
    "load_dashboard_file",
]

Scalar = bool | int | float | str
PlotName = Literal["best", "progress", "params", "groups", "curves", "importance"]
COMPARISON_PLOTS: tuple[str, ...] = get_args(PlotName)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class StudyRef(_Strict):
    """One study to compare: a study file (``.yaml``) or a study name, and where it is stored."""

    study: str = Field(min_length=1)
    storage: str | None = None
    label: str | None = None


def _wrap_ref(value: Any) -> Any:
    return {"study": value} if isinstance(value, str) else value


def _wrap_group_by(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


class DashboardConfig(_Strict):
    """A whole dashboard definition.

    Example (``dashboards/optimizers.yaml``)::

        title: Which optimizer?
        studies:
          - {study: ../studies/tutorial_b_optimizers.yaml, label: GridSearchCV}
          - ../studies/mnist_mlp.yaml
        group_by: optimizer
    """

    title: str | None = None
    description: str | None = None
    storage: str | None = None
    studies: list[Annotated[StudyRef, BeforeValidator(_wrap_ref)]] = Field(min_length=1)
    metric: str = "value"
    direction: Literal["maximize", "minimize"] | None = None
    group_by: Annotated[list[str] | None, BeforeValidator(_wrap_group_by)] = None
    groups: dict[str, dict[str, Scalar | list[Scalar]]] | None = None
    plots: list[PlotName] | None = None


@dataclass
class DashboardFile:
    """A validated dashboard definition and the file it came from.

    Attributes:
        config: the typed definition.
        source: the YAML file.
        label: the file name as the user gave it, for messages.
    """

    config: DashboardConfig
    source: Path
    label: str

    @property
    def name(self) -> str:
        """The page's file stem: the definition's file stem."""
        return self.source.stem

    @property
    def title(self) -> str:
        return self.config.title or self.source.stem.replace("_", " ")

    @property
    def grouping(self) -> bool:
        return bool(self.config.group_by or self.config.groups)

    @property
    def plots(self) -> list[str]:
        """The plots to draw: the listed ones, or every plot that the definition allows."""
        if self.config.plots is not None:
            return list(dict.fromkeys(self.config.plots))
        return [p for p in COMPARISON_PLOTS if p != "groups" or self.grouping]

    def resolve_study(self, ref: StudyRef) -> str:
        """A study file's path (next to the definition, else in the working directory),
        or the study name as given."""
        if not ref.study.endswith((".yaml", ".yml")):
            return ref.study
        for base in (self.source.parent, Path.cwd()):
            candidate = base / ref.study
            if candidate.is_file():
                return str(candidate)
        return ref.study


def is_dashboard_file(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a dashboard definition (a YAML mapping with ``studies``)
    rather than a study file."""
    p = Path(path)
    if p.suffix not in (".yaml", ".yml") or not p.is_file():
        return False
    from hpsearch.config._yaml import read_yaml_file

    try:
        raw = read_yaml_file(p, str(path), "dashboard file")
    except ConfigError:  # a study file's loader gives the same message
        return False
    if not isinstance(raw, dict):
        return False
    if "studies" in raw:
        return True
    # a definition with a misspelt ``studies`` should get the definition's error message
    keys = set(raw)
    return bool(keys & {"plots", "group_by", "groups", "title"}) and not keys & {
        "data",
        "model",
        "space",
        "search",
        "objective",
    }


def load_dashboard_file(path: str | os.PathLike[str]) -> DashboardFile:
    """Load and validate a dashboard definition.

    Raises:
        ConfigError: the file is missing, malformed or invalid; study files it
            names do not exist.

    Example:
        >>> board = load_dashboard_file("dashboards/mlp_vs_cnn.yaml")
        >>> board.plots
        ['best', 'progress', 'params', 'groups', 'curves', 'importance']
    """
    from hpsearch.config._loader import read_yaml_mapping, unexpected_error

    source = Path(path)
    label = str(path)
    try:
        raw = read_yaml_mapping(source, label, "dashboard file", "title, studies, plots, ...")
        try:
            config = DashboardConfig.model_validate(raw)
        except ValidationError as exc:
            raise _from_pydantic(exc, raw).with_source(label) from None
        board = DashboardFile(config=config, source=source.resolve(), label=label)
        _check(board)
    except ConfigError:
        raise
    except Exception as exc:  # a bug: still one line naming the file (--debug: the traceback)
        raise unexpected_error(exc, label, "dashboard file") from exc
    return board


def _check(board: DashboardFile) -> None:
    config = board.config
    if config.plots is not None and "groups" in config.plots and not board.grouping:
        raise ConfigError(
            "the groups plot needs group_by (a parameter, several, or 'study') or groups",
            path=f"plots[{config.plots.index('groups')}]",
            source=board.label,
        )
    for i, ref in enumerate(config.studies):
        if ref.study.endswith((".yaml", ".yml")):
            found = board.resolve_study(ref)
            if not Path(found).is_file():
                raise ConfigError(
                    f"study file not found (looked next to {board.label} and in the "
                    "working directory)",
                    path=f"studies[{i}].study",
                    value=ref.study,
                    has_value=True,
                    source=board.label,
                )
    labels = [ref.label for ref in config.studies if ref.label]
    for name in labels:
        if labels.count(name) > 1:
            raise ConfigError(
                "labels must be distinct",
                path="studies",
                value=name,
                has_value=True,
                source=board.label,
            )
    for group, match in (config.groups or {}).items():
        if not match:
            raise ConfigError(
                "a group needs at least one parameter value, e.g. {depth: 1, width: 50}",
                path=f"groups.{group}",
                source=board.label,
            )


def _from_pydantic(exc: ValidationError, raw: Mapping[str, Any]) -> ConfigError:
    errors = exc.errors()
    # an unknown key explains the other errors it causes
    first = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    from hpsearch.config._loader import error_loc, loc_path, pydantic_error

    loc = error_loc(first, raw)
    path = loc_path(loc)
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    kind = first["type"]
    if kind == "extra_forbidden":
        model: type[BaseModel] = StudyRef if loc and loc[0] == "studies" else DashboardConfig
        allowed = ", ".join(model.model_fields)
        return ConfigError(f"unknown key; allowed: {allowed}{more}", path=path)
    if kind == "literal_error":
        expected = str(first.get("ctx", {}).get("expected", ""))
        allowed = expected.replace("'", "").replace(" or ", ", ")
        return ConfigError(
            f"allowed: {allowed}{more}", path=path, value=first.get("input"), has_value=True
        )
    if kind == "too_short" and loc == ["studies"]:
        return ConfigError("list at least one study (a study file or a study name)", path=path)
    return pydantic_error(first, path, more)
