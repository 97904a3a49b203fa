"""Dashboards: self-contained HTML pages of plotly figures, read from Optuna's storage.

* One study (``hpsearch dashboard STUDY``): optimization history with best-so-far,
  per-epoch learning curves (pruned trials visible as such), parallel coordinates,
  parameter importances over the trials where each parameter was active, slice
  plots, the contour of the two most important parameters, the Pareto front of a
  multi-objective study and a trial table.
* A comparison (``hpsearch dashboard dashboards/NAME.yaml``): the studies a
  definition file names, side by side (see :mod:`hpsearch.dashboards._schema`).

Pages embed plotly.js and open offline. Example::

    from hpsearch.dashboards import render
    pages = render(["studies/quickstart.yaml", "dashboards/mlp_vs_cnn.yaml"])
    print([str(p.path) for p in pages])      # ['dashboards/quickstart.html', ...]
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from hpsearch.dashboards._data import StudyView, load_view
from hpsearch.dashboards._figures import comparison_sections, study_sections
from hpsearch.dashboards._importance import ParamImportance, active_param_importances
from hpsearch.dashboards._page import Section, build_page
from hpsearch.dashboards._schema import (
    COMPARISON_PLOTS,
    DashboardConfig,
    DashboardFile,
    is_dashboard_file,
    load_dashboard_file,
)
from hpsearch.exceptions import ConfigError, HpsearchError, StudyNotFoundError

__all__ = [
    "COMPARISON_PLOTS",
    "DEFAULT_OUT",
    "DashboardConfig",
    "DashboardFile",
    "Page",
    "ParamImportance",
    "Section",
    "StudyView",
    "active_param_importances",
    "comparison_sections",
    "is_dashboard_file",
    "load_dashboard_file",
    "load_views",
    "render",
    "render_comparison",
    "render_study",
    "study_sections",
]

DEFAULT_OUT = Path("dashboards")


@dataclass
class Page:
    """A rendered page.

    Attributes:
        path: the HTML file written.
        title: its title.
        sections: what it shows (figures and tables), for tests and notebooks.
        views: the studies it read.
    """

    path: Path
    title: str
    sections: list[Section] = field(default_factory=list)
    views: list[StudyView] = field(default_factory=list)

    def section(self, sid: str) -> Section:
        """The section with id ``sid`` (``history``, ``curves``, ...)."""
        for s in self.sections:
            if s.id == sid:
                return s
        raise KeyError(f"no section {sid!r}; sections: {', '.join(s.id for s in self.sections)}")

    @property
    def n_trials(self) -> int:
        return sum(len(v.trials) for v in self.views)


def _file_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "study"


def _write(out_dir: Path | None, name: str, text: str) -> Path:
    folder = Path(out_dir) if out_dir is not None else DEFAULT_OUT
    try:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{_file_name(name)}.html"
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise HpsearchError(f"cannot write the page into {folder}: {exc.strerror or exc}") from None
    return path


def render_study(
    study: str, *, storage: str | None = None, out_dir: str | Path | None = None
) -> Page:
    """Render one study's page into ``out_dir`` (default ``./dashboards``) as ``NAME.html``.

    Args:
        study: a study file or a study name.
        storage: a storage URL that overrides the file's (or the default).
        out_dir: the folder for the page.

    Raises:
        StudyNotFoundError: no such study in the storage.
        ConfigError: a bad study file or storage URL.
    """
    view = load_view(study, storage)
    sections = study_sections(view)
    counts = ", ".join(f"{v} {k.lower()}" for k, v in view.state_counts().items()) or "no trials"
    from hpsearch.study import StudyMeta

    lines = [f"{len(view.trials)} trials ({counts}) · engine {view.engine} · {view.storage}"]
    description = StudyMeta.of(view.study).description
    if description:
        lines.insert(0, str(description))
    title = f"Study {view.name}"
    path = _write(Path(out_dir) if out_dir else None, view.name, build_page(title, lines, sections))
    return Page(path, title, sections, [view])


def load_views(board: DashboardFile, storage: str | None = None) -> list[StudyView]:
    """Open every study a dashboard definition names.

    ``storage`` (the command line's ``--storage``) overrides every study's storage;
    otherwise a study's own ``storage``, then the definition's, then the study
    file's (or the default) is used.
    """
    views: list[StudyView] = []
    for i, ref in enumerate(board.config.studies):
        where = f"{board.label}: studies[{i}]"
        url = storage or ref.storage or board.config.storage
        try:
            view = load_view(board.resolve_study(ref), url, ref.label)
        except ConfigError as exc:
            raise exc.with_source(f"{where}: {exc.source}" if exc.source else where) from None
        except StudyNotFoundError as exc:
            raise StudyNotFoundError(f"{where}: {exc}") from None
        metric = board.config.metric
        if view.task == "regression" and "accuracy" in metric:
            raise ConfigError(
                f"study {view.study.study_name!r} is a regression (no accuracy): use value "
                "(each study's objective), val_rmse or val_mae",
                path="metric",
                value=metric,
                has_value=True,
            ).with_source(board.label)
        labels = {v.label for v in views}
        if view.label in labels:
            n = 2
            while f"{view.label} ({n})" in labels:
                n += 1
            view.label = f"{view.label} ({n})"
        views.append(view)
    return views


def render_comparison(
    definition: str | Path | DashboardFile,
    *,
    storage: str | None = None,
    out_dir: str | Path | None = None,
) -> Page:
    """Render a dashboard definition (``dashboards/NAME.yaml``) as ``NAME.html``.

    Raises:
        ConfigError: the definition is invalid.
        StudyNotFoundError: a study it names is not in its storage.
    """
    board = definition if isinstance(definition, DashboardFile) else load_dashboard_file(definition)
    views = load_views(board, storage)
    sections = comparison_sections(board, views)
    lines = []
    if board.config.description:
        lines.append(board.config.description.strip())
    lines.append(
        f"{len(views)} {'study' if len(views) == 1 else 'studies'}: "
        + ", ".join(v.label for v in views)
        + f" · {sum(len(v.trials) for v in views)} trials · from {board.label}"
    )
    path = _write(
        Path(out_dir) if out_dir else None, board.name, build_page(board.title, lines, sections)
    )
    return Page(path, board.title, sections, views)


def render(
    targets: Sequence[str], *, storage: str | None = None, out_dir: str | Path | None = None
) -> list[Page]:
    """Render each target: a dashboard definition (a YAML file with ``studies``), a
    study file or a study name. Pages go to ``out_dir`` (default ``./dashboards``).

    Example:
        >>> [p.path.name for p in render(["studies/quickstart.yaml"])]
        ['quickstart.html']
    """
    pages = []
    for target in targets:
        if is_dashboard_file(target):
            pages.append(render_comparison(target, storage=storage, out_dir=out_dir))
        else:
            pages.append(render_study(target, storage=storage, out_dir=out_dir))
    return pages
