"""The figures: one study's page, and comparisons across studies.

Each function returns :class:`~hpsearch.dashboards._page.Section` objects whose
plotly figures the tests read back (trial counts, curve lengths, groups).
Optuna's own plots (``optuna.visualization``) draw the parallel coordinates, slices,
contour and Pareto front; the rest is drawn here because Optuna's versions hide
pruned trials, need one objective, or use the importance that conditional spaces break.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from hpsearch.dashboards._data import (
    StudyView,
    duration,
    fmt,
    group_of,
    order_groups,
)
from hpsearch.dashboards._importance import ParamImportance, active_param_importances
from hpsearch.dashboards._page import Section, html_table
from hpsearch.study._record import SHOWN_ATTRS, TrialRecord

if TYPE_CHECKING:
    import plotly.graph_objects as go
    from optuna.trial import FrozenTrial

    from hpsearch.dashboards._schema import DashboardFile

__all__ = ["comparison_sections", "study_sections"]

TEMPLATE = "plotly_white"
STATE_STYLE = {  # colour and dash of a learning curve by trial state
    "COMPLETE": ("#4c78a8", "solid"),
    "PRUNED": ("#f58518", "dash"),
    "FAIL": ("#e45756", "dot"),
    "RUNNING": ("#72b7b2", "longdash"),
    "WAITING": ("#bab0ac", "dot"),
}
BEST_COLOR = "#2ca02c"
SLICE_PER_FIGURE = 4


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _palette(i: int) -> str:
    from plotly.colors import qualitative

    colors = qualitative.Plotly
    return colors[i % len(colors)]


def _new_figure(**layout: Any) -> go.Figure:
    import plotly.graph_objects as go

    fig = go.Figure()
    fig.update_layout(template=TEMPLATE, margin={"l": 60, "r": 20, "t": 40, "b": 50}, **layout)
    return fig


def _hover(view: StudyView, t: FrozenTrial, metric: str | None = None) -> str:
    lines = [f"{view.label} trial {t.number} ({t.state.name})"]
    if metric is not None:
        value = view.value(t, metric)
        if value is not None:
            lines.append(f"{view.metric_name(metric)} = {fmt(value)}")
    lines += [f"{k} = {fmt(v)}" for k, v in t.params.items()]
    return "<br>".join(lines)


def _best_index(values: Sequence[float], direction: str) -> int:
    pick = max if direction == "maximize" else min
    return values.index(pick(values))


def _best_so_far(values: Sequence[float], direction: str) -> list[float]:
    out: list[float] = []
    for v in values:
        if not out:
            out.append(v)
        else:
            out.append(max(out[-1], v) if direction == "maximize" else min(out[-1], v))
    return out


@contextmanager
def _quiet() -> Iterator[None]:
    """Optuna's plots log and warn about small studies; the page says it instead."""
    from hpsearch._logs import quiet_optuna

    with quiet_optuna(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


# ---------------------------------------------------------------------- one study
def _history(view: StudyView) -> list[Section]:
    import plotly.graph_objects as go

    done = view.complete()
    sections = []
    for i, (name, direction) in enumerate(zip(view.objectives, view.directions, strict=True)):
        sid = "history" if i == 0 else f"history-{i + 1}"
        title = "Optimization history" + (f": {name}" if not view.single else "")
        if not done:
            sections.append(Section(sid, title, note="No COMPLETE trial yet."))
            continue
        xs = [t.number for t in done]
        ys = [t.values[i] for t in done]
        fig = _new_figure(xaxis_title="trial", yaxis_title=name)
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=ys,
                mode="markers",
                name="complete",
                marker={"color": STATE_STYLE["COMPLETE"][0], "size": 8},
                hovertext=[_hover(view, t) for t in done],
                hoverinfo="text",
            )
        )
        if view.single:
            pruned = [t for t in view.trials if t.state.name == "PRUNED" and t.intermediate_values]
            if pruned:
                fig.add_trace(
                    go.Scatter(
                        x=[t.number for t in pruned],
                        y=[t.intermediate_values[max(t.intermediate_values)] for t in pruned],
                        mode="markers",
                        name="pruned (last reported value)",
                        marker={"color": STATE_STYLE["PRUNED"][0], "symbol": "x", "size": 8},
                        hovertext=[_hover(view, t) for t in pruned],
                        hoverinfo="text",
                    )
                )
        best = _best_so_far(ys, direction)
        last = max(t.number for t in view.trials)
        fig.add_trace(
            go.Scatter(
                # drawn on to the last trial: later (pruned, failed) trials did not beat it
                x=xs + ([last] if last > xs[-1] else []),
                y=best + ([best[-1]] if last > xs[-1] else []),
                mode="lines",
                line={"shape": "hv", "color": BEST_COLOR, "width": 2},
                name="best so far" if view.single else "best so far (this objective alone)",
            )
        )
        sections.append(
            Section(sid, title, fig, note=f"{_n(len(done), 'COMPLETE trial')}; {direction} {name}.")
        )
    return sections


def _curves(view: StudyView) -> Section:
    import plotly.graph_objects as go

    name = view.objectives[0]
    done = view.complete()
    best = (
        done[_best_index([t.values[0] for t in done], view.directions[0])].number
        if done and view.single
        else None
    )
    fig = _new_figure(xaxis_title="epoch", yaxis_title=name, legend={"groupclick": "togglegroup"})
    n = 0
    for t in view.trials:
        steps, values = view.curve(t)
        if not steps:
            continue
        n += 1
        color, dash = STATE_STYLE.get(t.state.name, ("#888888", "solid"))
        is_best = t.number == best
        fig.add_trace(
            go.Scatter(
                x=steps,
                y=values,
                mode="lines+markers" if len(steps) < 3 else "lines",
                name=f"trial {t.number}" + (" (best)" if is_best else ""),
                legendgroup=t.state.name,
                legendgrouptitle_text=t.state.name,
                line={
                    "color": BEST_COLOR if is_best else color,
                    "dash": dash,
                    "width": 3 if is_best else 1.5,
                },
                marker={"symbol": "x" if t.state.name == "PRUNED" else "circle"},
                meta={"trial": t.number, "state": t.state.name},
                hovertext=_hover(view, t),
                hoverinfo="text+y",
            )
        )
    if not n:
        why = (
            "No trial yet."
            if not view.trials
            else "No per-epoch values in this study (the scikit-learn engine, for one, stores "
            "one mean CV score per candidate)."
        )
        return Section("curves", "Learning curves", note=why)
    return Section(
        "curves",
        "Learning curves",
        fig,
        note=f"{name} after each epoch, {_n(n, 'trial')}; pruned trials dashed (they stop where "
        "the pruner stopped them), failed trials dotted, the best trial green. Click a state "
        "in the legend to hide its trials.",
    )


def _target(view: StudyView, index: int = 0) -> Callable[[FrozenTrial], float] | None:
    if view.single:
        return None
    return lambda t: t.values[index]


def _parallel(view: StudyView) -> Section:
    import optuna.visualization as vis

    title = "Parallel coordinates"
    if not view.complete() or not any(t.params for t in view.complete()):
        return Section("parallel", title, note="No COMPLETE trial with parameters yet.")
    with _quiet():
        fig = vis.plot_parallel_coordinate(
            view.study, target=_target(view), target_name=view.objectives[0]
        )
    fig.update_layout(template=TEMPLATE, title=None, width=None)
    return Section(
        "parallel",
        title,
        fig,
        note="One line per COMPLETE trial, coloured by "
        f"{view.objectives[0]}; a parameter a trial did not have is drawn at its 'missing' tick.",
    )


def _objective(index: int) -> Callable[[FrozenTrial], float | None]:
    return lambda t: t.values[index]


def _by_number(values: dict[int, float]) -> Callable[[FrozenTrial], float | None]:
    return lambda t: values.get(t.number)


def _importances(view: StudyView) -> dict[str, list[ParamImportance]]:
    done = view.complete()
    return {
        name: active_param_importances(done, _objective(i))
        for i, name in enumerate(view.objectives)
    }


def _importance_figure(
    series: Sequence[tuple[str, list[ParamImportance], str | None]],
) -> tuple[go.Figure | None, list[str]]:
    """A horizontal bar chart, one trace per (name, importances, colour)."""
    import plotly.graph_objects as go

    best: dict[str, float] = {}
    missing: list[str] = []
    for label, imps, _ in series:
        for imp in imps:
            if imp.importance is not None:
                best[imp.param] = max(best.get(imp.param, 0.0), imp.importance)
            else:
                missing.append(
                    f"{imp.param}" + (f" ({label})" if len(series) > 1 else "") + f": {imp.note}"
                )
    if not best:
        return None, missing
    order = sorted(best, key=lambda p: best[p])  # most important on top
    fig = _new_figure(
        xaxis_title="share of variance explained (among the trials where it was active)",
        barmode="group",
        xaxis_range=[0, 1],
    )
    for label, imps, color in series:
        found = {i.param: i for i in imps if i.importance is not None}
        params = [p for p in order if p in found]
        if not params:
            continue
        fig.add_trace(
            go.Bar(
                y=params,
                x=[found[p].importance for p in params],
                orientation="h",
                name=label,
                marker={"color": color} if color else None,
                text=[f"{found[p].n_trials} trials" for p in params],
                textposition="auto",
                hovertemplate="%{y}: %{x:.3f} over %{text}<extra>" + label + "</extra>",
            )
        )
    return fig, missing


_IMPORTANCE_NOTE = (
    "fANOVA per parameter over the COMPLETE trials in which it was active (a layer's "
    "width only where the layer exists, momentum only with sgd): the share of the "
    "variance of the objective among those trials that the parameter alone explains. "
)


def _importance(view: StudyView, imps: dict[str, list[ParamImportance]]) -> Section:
    series = [(name, values, None) for name, values in imps.items()]
    fig, missing = _importance_figure(series)
    note = _IMPORTANCE_NOTE + (("No number for " + "; ".join(missing) + ".") if missing else "")
    if fig is None:
        return Section("importance", "Parameter importance", note=note)
    height = max(300, 30 * len({p for d in fig.data for p in d.y}) * len(series) + 120)
    return Section("importance", "Parameter importance", fig, note=note, height=height)


def _ranked_params(view: StudyView, imps: dict[str, list[ParamImportance]]) -> list[str]:
    first = next(iter(imps.values()), [])
    ranked = [i.param for i in first]
    present = list(dict.fromkeys(p for t in view.complete() for p in t.params))
    return [p for p in ranked if p in present] + [p for p in present if p not in ranked]


def _chunks(items: Sequence[str], size: int) -> Iterator[list[str]]:
    for i in range(0, len(items), size):
        yield list(items[i : i + size])


def _slices(view: StudyView, ranked: list[str]) -> list[Section]:
    import optuna.visualization as vis

    if not ranked:
        return [Section("slice", "Slice plots", note="No COMPLETE trial with parameters yet.")]
    sections = []
    for k, chunk in enumerate(_chunks(ranked, SLICE_PER_FIGURE)):
        with _quiet():
            fig = vis.plot_slice(
                view.study, params=chunk, target=_target(view), target_name=view.objectives[0]
            )
        fig.update_layout(template=TEMPLATE, title=None, width=None)
        sid = "slice" if k == 0 else f"slice-{k + 1}"
        title = "Slice plots" + (f" ({k + 1})" if len(ranked) > SLICE_PER_FIGURE else "")
        note = (
            f"{view.objectives[0]} against each parameter, most important first; each "
            "panel shows the trials that had that parameter, coloured by trial number."
            if k == 0
            else ""
        )
        sections.append(Section(sid, title, fig, note=note, height=420))
    return sections


def _contour(view: StudyView, ranked: list[str]) -> Section:
    import optuna.visualization as vis

    title = "Contour of the two most important parameters"
    done = view.complete()
    pair = None
    for i, a in enumerate(ranked):
        for b in ranked[i + 1 :]:
            both = [t for t in done if a in t.params and b in t.params]
            if len(both) >= 3 and all(len({repr(t.params[p]) for t in both}) > 1 for p in (a, b)):
                pair = (a, b)
                break
        if pair:
            break
    if pair is None:
        return Section(
            "contour", title, note="Needs two varied parameters shared by at least 3 trials."
        )
    with _quiet():
        fig = vis.plot_contour(
            view.study, params=list(pair), target=_target(view), target_name=view.objectives[0]
        )
    fig.update_layout(template=TEMPLATE, title=None, width=None)
    return Section(
        "contour",
        f"Contour: {pair[0]} × {pair[1]}",
        fig,
        note=f"{view.objectives[0]} interpolated between the trials that had both parameters "
        "(dots).",
        height=520,
    )


def _pareto(view: StudyView) -> Section | None:
    import optuna.visualization as vis

    if view.single:
        return None
    if not view.complete():
        return Section("pareto", "Pareto front", note="No COMPLETE trial yet.")
    with _quiet():
        fig = vis.plot_pareto_front(view.study, target_names=view.objectives)
    fig.update_layout(template=TEMPLATE, title=None, width=None)
    return Section(
        "pareto",
        "Pareto front",
        fig,
        note="Each COMPLETE trial by its objectives; the best trials (no other trial is better "
        "in every objective) are highlighted.",
        height=520,
    )


def _table(view: StudyView) -> Section:
    best = {t.number for t in _best_trials(view)}
    params = list(dict.fromkeys(p for t in view.trials for p in t.params))
    records = {t.number: TrialRecord.from_trial(t) for t in view.trials}
    present = {a for r in records.values() for a in r.shown()}
    attrs = [a for a in SHOWN_ATTRS if a in present and a not in view.objectives]
    has_reason = any(r.fail_reason is not None for r in records.values())
    header = ["trial", "state", *view.objectives, *params, *attrs, "duration (s)"]
    if has_reason:
        header.append("fail reason")
    rows, classes = [], []
    for t in view.trials:
        values = list(t.values) if t.values else []
        row = [str(t.number), t.state.name]
        row += [fmt(values[i]) if i < len(values) else "" for i in range(len(view.objectives))]
        row += [fmt(t.params[p]) if p in t.params else "—" for p in params]
        shown = records[t.number].shown()
        row += [fmt(shown[a]) if a in shown else "" for a in attrs]
        seconds = duration(t)
        row.append("" if seconds is None else f"{seconds:.1f}")
        if has_reason:
            reason = records[t.number].fail_reason
            row.append(str("" if reason is None else reason)[:160])
        rows.append(row)
        classes.append(t.state.name + (" best" if t.number in best else ""))
    text_cols = [1] + ([len(header) - 1] if has_reason else [])
    table = html_table(header, rows, text_columns=text_cols, row_classes=classes)
    return Section(
        "trials",
        "Trials",
        html=table,
        note=f"{_n(len(view.trials), 'trial')}; — marks a parameter the trial did not have; "
        "the best trial(s) are shaded.",
    )


def _best_trials(view: StudyView) -> list[FrozenTrial]:
    done = view.complete()
    if not done:
        return []
    if view.single:
        return [done[_best_index([t.values[0] for t in done], view.directions[0])]]
    return list(view.study.best_trials)


def _objectives_text(view: StudyView) -> str:
    return ", ".join(f"{d} {n}" for n, d in zip(view.objectives, view.directions, strict=True))


def _summary(view: StudyView) -> Section:
    counts = view.state_counts()
    rows = [
        ["study", view.name],
        ["storage", view.storage or "?"],
        ["engine", view.engine],
        ["objectives", _objectives_text(view)],
        ["trials", ", ".join(f"{k.lower()} {v}" for k, v in counts.items()) or "none"],
    ]
    for t in _best_trials(view)[:10]:
        values = ", ".join(f"{n}={fmt(v)}" for n, v in zip(view.objectives, t.values, strict=True))
        params = ", ".join(f"{k}={fmt(v)}" for k, v in t.params.items())
        rows.append([f"best: trial {t.number}", f"{values}  ({params})"])
    from hpsearch.study import StudyMeta

    data = StudyMeta.of(view.study).data
    if data:
        plain = [f"{k} {fmt(v)}" for k, v in data.items() if not isinstance(v, dict | list)]
        rows.append(["data", ", ".join(plain)])
    table = html_table(None, rows, text_columns=[0, 1], scroll=False)
    return Section("summary", "Summary", html=table)


def study_sections(view: StudyView) -> list[Section]:
    """Every section of one study's page, in page order.

    Example:
        >>> sections = study_sections(StudyView.of(study))
        >>> [s.id for s in sections]
        ['summary', 'history', 'curves', 'parallel', 'importance', 'slice', 'contour', 'trials']
    """
    imps = _importances(view)
    ranked = _ranked_params(view, imps)
    sections = [_summary(view), *_history(view), _curves(view)]
    pareto = _pareto(view)
    if pareto is not None:
        sections.append(pareto)
    sections += [_parallel(view), _importance(view, imps), *_slices(view, ranked)]
    sections += [_contour(view, ranked), _table(view)]
    return sections


# ---------------------------------------------------------------------- comparisons
def _metric_label(views: Sequence[StudyView], metric: str) -> str:
    names = list(dict.fromkeys(v.metric_name(metric) for v in views))
    return " / ".join(names)


def _scored(view: StudyView, metric: str) -> list[tuple[FrozenTrial, float]]:
    out = []
    for t in view.complete():
        value = view.value(t, metric)
        if value is not None:
            out.append((t, value))
    return out


def _cmp_best(board: DashboardFile, views: Sequence[StudyView]) -> Section:
    import plotly.graph_objects as go

    metric = board.config.metric
    xs, ys, texts, hovers, colors, empty = [], [], [], [], [], []
    for i, view in enumerate(views):
        scored = _scored(view, metric)
        if not scored:
            empty.append(view.label)
            continue
        direction = view.direction(metric, board.config.direction)
        k = _best_index([v for _, v in scored], direction)
        t, value = scored[k]
        xs.append(view.label)
        ys.append(value)
        texts.append(fmt(value))
        hovers.append(_hover(view, t, metric))
        colors.append(_palette(i))
    title = "Best value per study"
    note = f"The best {_metric_label(views, metric)} of each study"
    note += f"; no value yet in {', '.join(empty)}." if empty else "."
    if not xs:
        return Section("best", title, note=note)
    fig = _new_figure(yaxis_title=_metric_label(views, metric), showlegend=False)
    fig.add_trace(
        go.Bar(
            x=xs,
            y=ys,
            text=texts,
            textposition="outside",
            marker={"color": colors},
            hovertext=hovers,
            hoverinfo="text",
        )
    )
    low = min(ys)
    high = max(ys)
    pad = (high - low) * 0.5 or abs(high) * 0.05 or 1.0
    fig.update_yaxes(range=[low - pad, high + pad * 0.6])
    return Section("best", title, fig, note=note, height=400)


def _cmp_progress(board: DashboardFile, views: Sequence[StudyView]) -> Section:
    metric = board.config.metric
    per_view = [_timed_scores(view, metric) for view in views]
    unit, scale = _time_unit(views, per_view)
    fig = _progress_figure(unit)
    drawn = 0
    for i, (view, scored) in enumerate(zip(views, per_view, strict=True)):
        if not scored:
            continue
        drawn += 1
        direction = view.direction(metric, board.config.direction)
        _add_best_so_far(fig, view, scored, metric, direction, color=_palette(i), scale=scale)
    fig.update_yaxes(title_text=_metric_label(views, metric), row=1, col=1)
    fig.update_xaxes(title_text=unit, row=1, col=1)
    fig.update_xaxes(title_text="trial", row=1, col=2)
    title = "Best so far"
    if not drawn:
        return Section("progress", title, note="No COMPLETE trial with a value yet.")
    return Section(
        "progress",
        title,
        fig,
        note="The best value found so far in each study, against the wall time since the "
        "study's first trial started and against the trial number.",
        height=440,
    )


def _timed_scores(view: StudyView, metric: str) -> list[tuple[FrozenTrial, float]]:
    """The scored trials of ``view`` that have a start time."""
    return [(t, v) for t, v in _scored(view, metric) if view.elapsed(t) is not None]


def _time_unit(
    views: Sequence[StudyView], per_view: Sequence[Sequence[tuple[FrozenTrial, float]]]
) -> tuple[str, float]:
    """Minutes if the longest study ran 3 minutes or more, else seconds; and their scale."""
    longest = 0.0
    for view, scored in zip(views, per_view, strict=True):
        longest = max([longest] + [view.elapsed(t) or 0.0 for t, _ in scored])
    return ("minutes", 60.0) if longest >= 180 else ("seconds", 1.0)


def _progress_figure(unit: str) -> go.Figure:
    """Two panels sharing the y axis: by wall time and by trial number."""
    from plotly.subplots import make_subplots

    fig = make_subplots(
        rows=1,
        cols=2,
        subplot_titles=(f"by wall time ({unit})", "by trial number"),
        shared_yaxes=True,
        horizontal_spacing=0.06,
    )
    fig.update_layout(template=TEMPLATE, margin={"l": 60, "r": 20, "t": 40, "b": 50})
    return fig


def _add_best_so_far(
    fig: go.Figure,
    view: StudyView,
    scored: Sequence[tuple[FrozenTrial, float]],
    metric: str,
    direction: str,
    *,
    color: str,
    scale: float,
) -> None:
    """One study's best-so-far line in both panels (one legend entry)."""
    by_time = sorted(scored, key=lambda tv: view.elapsed(tv[0]) or 0.0)
    by_number = sorted(scored, key=lambda tv: tv[0].number)
    style = {"color": color, "shape": "hv", "width": 2}
    times = [(view.elapsed(t) or 0.0) / scale for t, _ in by_time]
    fig.add_trace(_best_line(view, by_time, times, metric, direction, style), row=1, col=1)
    numbers = [t.number for t, _ in by_number]
    line = _best_line(view, by_number, numbers, metric, direction, style, showlegend=False)
    fig.add_trace(line, row=1, col=2)


def _best_line(
    view: StudyView,
    scored: Sequence[tuple[FrozenTrial, float]],
    xs: Sequence[float],
    metric: str,
    direction: str,
    style: dict[str, Any],
    **extra: Any,
) -> go.Scatter:
    import plotly.graph_objects as go

    return go.Scatter(
        x=xs,
        y=_best_so_far([v for _, v in scored], direction),
        mode="lines+markers",
        line=style,
        name=view.label,
        legendgroup=view.label,
        **extra,
        hovertext=[_hover(view, t, metric) for t, _ in scored],
    )


def _by_group(board: DashboardFile, views: Sequence[StudyView]) -> bool:
    """One study with groups: colour its trials by group instead of by study."""
    return len(views) == 1 and board.grouping


def _group_order(board: DashboardFile, views: Sequence[StudyView]) -> list[str]:
    cfg = board.config
    keys = [group_of(t, v.label, cfg.group_by, cfg.groups) for v in views for t in v.trials]
    return order_groups(keys, list(cfg.groups) if cfg.groups else None)


def _cmp_params(board: DashboardFile, views: Sequence[StudyView]) -> Section:
    import plotly.graph_objects as go

    cfg = board.config
    metric = cfg.metric
    fig = _new_figure(
        xaxis_title="parameters (weights) of the model",
        xaxis_type="log",
        yaxis_title=_metric_label(views, metric),
    )
    by_group = _by_group(board, views)
    order = _group_order(board, views) if by_group else []
    lacking = []
    for i, view in enumerate(views):
        points = [
            (t, v, count)
            for t, v in _scored(view, metric)
            if isinstance(count := TrialRecord.from_trial(t).param_count, int | float)
        ]
        if not points:
            lacking.append(view.label)
            continue
        series: dict[str, list[tuple[FrozenTrial, float, float]]] = {}
        for point in points:
            key = group_of(point[0], view.label, cfg.group_by, cfg.groups) if by_group else ""
            series.setdefault(key, []).append(point)
        for key in sorted(series, key=lambda k: order.index(k) if k in order else 0):
            chosen = series[key]
            fig.add_trace(
                go.Scatter(
                    x=[p for _, _, p in chosen],
                    y=[v for _, v, _ in chosen],
                    mode="markers",
                    name=key or view.label,
                    marker={
                        "color": _palette(order.index(key) if by_group else i),
                        "size": 10,
                        "opacity": 0.85,
                    },
                    hovertext=[_hover(view, t, metric) for t, _, _ in chosen],
                    hoverinfo="text",
                )
            )
    title = f"{_metric_label(views, metric)} vs parameter count"
    note = "Each COMPLETE trial by the size of its network (log scale)."
    if lacking:
        note += f" No parameter counts in {', '.join(lacking)}."
    if not fig.data:
        return Section("params", title, note=note)
    return Section("params", title, fig, note=note)


def _cmp_groups(board: DashboardFile, views: Sequence[StudyView]) -> Section:
    import plotly.graph_objects as go

    cfg = board.config
    metric = cfg.metric
    axis = ", ".join(cfg.group_by) if cfg.group_by else "group"
    named = list(cfg.groups) if cfg.groups else None
    fig = _new_figure(xaxis_title=axis, yaxis_title=_metric_label(views, metric), boxmode="group")
    keys: list[str] = []
    m = metric
    for view in views:
        keys += [group_of(t, view.label, cfg.group_by, cfg.groups) for t, _ in _scored(view, m)]
    order = order_groups(keys, named)
    for i, view in enumerate(views):
        scored = _scored(view, metric)
        if not scored:
            continue
        groups = [group_of(t, view.label, cfg.group_by, cfg.groups) for t, _ in scored]
        fig.add_trace(
            go.Box(
                x=groups,
                y=[v for _, v in scored],
                name=view.label,
                boxpoints="all",
                jitter=0.3,
                pointpos=0,
                marker={"color": _palette(i), "size": 7},
                line={"width": 1},
                hovertext=[_hover(view, t, metric) for t, _ in scored],
                hoverinfo="text",
            )
        )
    fig.update_xaxes(categoryorder="array", categoryarray=order, type="category")
    title = f"{_metric_label(views, metric)} by {axis}"
    if not fig.data:
        return Section("groups", title, note="No COMPLETE trial with a value yet.")
    return Section(
        "groups",
        title,
        fig,
        note="Every COMPLETE trial as a dot, a box per group and study. Groups: "
        + ", ".join(order)
        + ".",
    )


def _cmp_curves(board: DashboardFile, views: Sequence[StudyView]) -> Section:
    import plotly.graph_objects as go

    cfg = board.config
    by_group = _by_group(board, views)
    fig = _new_figure(
        xaxis_title="epoch",
        yaxis_title=_metric_label(views, cfg.metric),
        legend={"groupclick": "togglegroup"},
    )
    seen: set[str] = set()
    groups = _group_order(board, views) if by_group else []
    lacking = []
    for i, view in enumerate(views):
        drawn = 0
        for t in view.trials:
            steps, values = view.curve(t, cfg.metric)
            if not steps:
                continue
            drawn += 1
            key = group_of(t, view.label, cfg.group_by, cfg.groups) if by_group else view.label
            color = _palette(groups.index(key) if by_group else i)
            dash = STATE_STYLE.get(t.state.name, ("", "solid"))[1]
            fig.add_trace(
                go.Scatter(
                    x=steps,
                    y=values,
                    mode="lines+markers" if len(steps) < 3 else "lines",
                    name=key,
                    legendgroup=key,
                    showlegend=key not in seen,
                    line={"color": color, "dash": dash, "width": 1.5},
                    opacity=0.8,
                    meta={"study": view.label, "trial": t.number, "state": t.state.name},
                    hovertext=_hover(view, t),
                    hoverinfo="text+y",
                )
            )
            seen.add(key)
        if not drawn:
            lacking.append(view.label)
    title = "Learning curves"
    note = (
        f"{_metric_label(views, cfg.metric)} per epoch of every trial, coloured by "
        + ("group" if by_group else "study")
        + "; pruned trials dashed, failed ones dotted."
    )
    if lacking:
        note += f" No per-epoch values in {', '.join(lacking)}."
    if not fig.data:
        return Section("curves", title, note=note)
    return Section("curves", title, fig, note=note)


def _cmp_importance(board: DashboardFile, views: Sequence[StudyView]) -> Section:
    metric = board.config.metric
    series = []
    for i, view in enumerate(views):
        scored = _scored(view, metric)
        values = {t.number: v for t, v in scored}
        imps = active_param_importances([t for t, _ in scored], _by_number(values))
        series.append((view.label, imps, _palette(i)))
    fig, missing = _importance_figure(series)
    note = _IMPORTANCE_NOTE.replace("the objective", _metric_label(views, metric))
    note += "Computed per study. "
    if missing:
        note += "No number for " + "; ".join(missing) + "."
    if fig is None:
        return Section("importance", "Parameter importance per study", note=note)
    height = max(320, 26 * len({p for d in fig.data for p in d.y}) * len(views) + 120)
    return Section("importance", "Parameter importance per study", fig, note=note, height=height)


def _cmp_summary(board: DashboardFile, views: Sequence[StudyView]) -> Section:
    metric = board.config.metric
    header = ["study", "name", "storage", "engine", "objective", "trials", "best", "best trial"]
    rows = []
    for view in views:
        counts = view.state_counts()
        scored = _scored(view, metric)
        best_txt, trial_txt = "", ""
        if scored:
            direction = view.direction(metric, board.config.direction)
            t, value = scored[_best_index([v for _, v in scored], direction)]
            best_txt = f"{view.metric_name(metric)}={fmt(value)}"
            trial_txt = f"{t.number}: " + ", ".join(f"{k}={fmt(v)}" for k, v in t.params.items())
        rows.append(
            [
                view.label,
                view.name,
                view.storage,
                view.engine,
                _objectives_text(view),
                ", ".join(f"{k.lower()} {v}" for k, v in counts.items()) or "none",
                best_txt,
                trial_txt,
            ]
        )
    table = html_table(header, rows, text_columns=range(len(header)), scroll=False)
    return Section("summary", "Studies", html=table)


_COMPARISONS: dict[str, Callable[[DashboardFile, Sequence[StudyView]], Section]] = {
    "best": _cmp_best,
    "progress": _cmp_progress,
    "params": _cmp_params,
    "groups": _cmp_groups,
    "curves": _cmp_curves,
    "importance": _cmp_importance,
}


def comparison_sections(board: DashboardFile, views: Sequence[StudyView]) -> list[Section]:
    """The sections of a comparison page: a summary table, then the definition's plots.

    Example:
        >>> board = load_dashboard_file("dashboards/mlp_vs_cnn.yaml")
        >>> [s.id for s in comparison_sections(board, views)]
        ['summary', 'best', 'progress', 'params', 'groups', 'curves', 'importance']
    """
    return [_cmp_summary(board, views)] + [_COMPARISONS[p](board, views) for p in board.plots]
