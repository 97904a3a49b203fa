"""Page assembly: sections of plotly figures and HTML tables in one offline HTML file.

plotly.js is embedded once in the page's head (about 4.8 MB), so the file opens
without a network and can be copied or mailed alone.
"""

from __future__ import annotations

import datetime as _dt
import html
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from hpsearch._version import __version__

if TYPE_CHECKING:
    import plotly.graph_objects as go

__all__ = ["Section", "build_page", "html_table"]

DEFAULT_HEIGHT = 460

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0;
       color: #1f2933; background: #f5f7fa; }
header { background: #243b53; color: #fff; padding: 18px 28px; }
header h1 { margin: 0 0 4px 0; font-size: 24px; }
header p { margin: 2px 0; color: #d9e2ec; }
nav { padding: 8px 28px; background: #fff; border-bottom: 1px solid #d9e2ec; font-size: 14px; }
nav a { margin-right: 14px; color: #334e68; text-decoration: none; }
main { padding: 8px 28px 40px 28px; }
section { background: #fff; border: 1px solid #d9e2ec; border-radius: 6px; margin: 16px 0;
          padding: 12px 16px; }
section h2 { font-size: 18px; margin: 4px 0 8px 0; }
p.note { color: #52606d; font-size: 14px; margin: 4px 0 8px 0; }
table.trials { border-collapse: collapse; font-size: 13px; width: 100%; }
table.trials th, table.trials td { border-bottom: 1px solid #e4e7eb; padding: 3px 8px;
          text-align: right; white-space: nowrap; }
table.trials th { background: #f0f4f8; position: sticky; top: 0; }
table.trials td.text, table.trials th.text { text-align: left; }
table.trials td.text { white-space: normal; min-width: 60px; }
div.scroll { max-height: 560px; overflow: auto; }
tr.COMPLETE td.state { color: #1f7a1f; } tr.PRUNED td.state { color: #b7791f; }
tr.FAIL td.state { color: #c53030; } tr.best { background: #f0fff4; }
footer { color: #7b8794; font-size: 12px; padding: 0 28px 20px 28px; }
"""


@dataclass
class Section:
    """One part of a page: a plotly figure and/or HTML, with a title and a note.

    Attributes:
        id: the anchor (``#history``); tests find sections by it.
        title: the heading.
        figure: a plotly figure, or None when there is nothing to draw.
        html: extra HTML (a table), already escaped.
        note: a sentence under the heading: how to read it, or why it is empty.
        height: the figure's height in pixels.
    """

    id: str
    title: str
    figure: go.Figure | None = None
    html: str = ""
    note: str = ""
    height: int = DEFAULT_HEIGHT


def html_table(
    header: Sequence[str] | None,
    rows: Sequence[Sequence[str]],
    *,
    text_columns: Sequence[int] = (),
    row_classes: Sequence[str] | None = None,
    scroll: bool = True,
) -> str:
    """An HTML table (``header`` None: no header row); every cell is escaped here."""
    text = set(text_columns)
    state = header.index("state") if header and "state" in header else -1

    def cls(i: int) -> str:
        names = (["text"] if i in text else []) + (["state"] if i == state else [])
        return f' class="{" ".join(names)}"' if names else ""

    head = ""
    if header:
        cells = "".join(f"<th{cls(i)}>{html.escape(h)}</th>" for i, h in enumerate(header))
        head = f"<thead><tr>{cells}</tr></thead>"
    body = []
    for r, row in enumerate(rows):
        row_cls = f' class="{html.escape(row_classes[r])}"' if row_classes else ""
        cells = "".join(f"<td{cls(i)}>{html.escape(c)}</td>" for i, c in enumerate(row))
        body.append(f"<tr{row_cls}>{cells}</tr>")
    table = f'<table class="trials">{head}<tbody>{"".join(body)}</tbody></table>'
    return f'<div class="scroll">{table}</div>' if scroll else table


def _figure_html(section: Section) -> str:
    import plotly.io as pio

    if section.figure is None:
        return ""
    fig = section.figure
    fig.update_layout(height=section.height)
    return pio.to_html(
        fig,
        full_html=False,
        include_plotlyjs=False,
        include_mathjax=False,
        div_id=f"fig-{section.id}",
        default_height=f"{section.height}px",
        default_width="100%",
        config={"displaylogo": False, "responsive": True},
    )


def build_page(title: str, lines: Sequence[str], sections: Sequence[Section]) -> str:
    """The whole page: a header (``title`` and descriptive ``lines``), a section index,
    the sections, and plotly.js inline."""
    from plotly.offline import get_plotlyjs

    nav = "".join(f'<a href="#{html.escape(s.id)}">{html.escape(s.title)}</a>' for s in sections)
    parts = []
    for s in sections:
        note = f'<p class="note">{html.escape(s.note)}</p>' if s.note else ""
        parts.append(
            f'<section id="{html.escape(s.id)}"><h2>{html.escape(s.title)}</h2>{note}'
            f"{_figure_html(s)}{s.html}</section>"
        )
    header_lines = "".join(f"<p>{html.escape(line)}</p>" for line in lines)
    stamp = _dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title>"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<style>{_CSS}</style>"
        # plotly.js inline: the page must open offline
        f'<script type="text/javascript">{get_plotlyjs()}</script>'
        f"</head><body><header><h1>{html.escape(title)}</h1>{header_lines}</header>"
        f"<nav>{nav}</nav><main>{''.join(parts)}</main>"
        f"<footer>hpsearch {html.escape(__version__)} · generated {stamp} · "
        "read from Optuna's storage</footer></body></html>\n"
    )
