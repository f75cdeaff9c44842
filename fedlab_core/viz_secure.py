"""Secure-aggregation figures: what the server sees, and what protection costs.

Pure plotly builders, in the styles (palette, greys, font) of ``fedlab_core.viz``; their width
follows the notebook's (``width=None``), as three panels need the room:

- ``server_view_figure(view)``: one hospital's update, what the server
  received from it (masked: uniform noise on the ring), and the sum the
  server recovered next to the plain sum.
- ``cost_figure(table)``: bytes per hospital and seconds per round, per
  protocol, on log axes.

>>> import pandas as pd
>>> table = pd.DataFrame({"protocol": ["plain", "masking"], "seconds per round": [1e-4, 0.05],
...                       "bytes per hospital": [124, 1278]})
>>> cost_figure(table).layout.meta["fedlab"]
'cost_figure'
"""

from __future__ import annotations

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from fedlab_core.viz import BLUE, FONT, GRID_GREY, MID_GREY, VERMILLION, run_style

__all__ = ["server_view_figure", "cost_figure"]

_GRID = dict(showgrid=True, gridcolor=GRID_GREY, zeroline=False)


def server_view_figure(view, *, title: str | None = None, height: int = 420,
                       width: int | None = None) -> go.Figure:
    """Three panels: the hospital's update; what the server received; the recovered sum."""
    name = view.names[view.hospital]
    P = len(view.update)
    index = list(range(1, P + 1))
    fig = make_subplots(rows=1, cols=3, horizontal_spacing=0.09, subplot_titles=(
        f"{name}'s update (what it computed)", "what the server received from it",
        "the sum the server recovered"))
    fig.add_trace(go.Bar(x=index, y=view.update, name=f"{name}'s update", marker_color=BLUE,
                         hovertemplate="coordinate %{x}: %{y:.4f}<extra></extra>"), row=1, col=1)
    fig.add_trace(go.Scatter(x=index, y=view.received / view.modulus, mode="markers",
                             name="masked value / R", marker=dict(color=VERMILLION, size=6, symbol="x"),
                             hovertemplate="coordinate %{x}: %{y:.3f} of the ring<extra></extra>"),
                  row=1, col=2)
    plain, recovered = run_style(0), run_style(1)
    fig.add_trace(go.Bar(x=index, y=view.plain, name="plain sum (for comparison)",
                         marker_color=MID_GREY), row=1, col=3)
    fig.add_trace(go.Scatter(x=index, y=view.recovered, mode="markers",
                             name=f"recovered (max error {view.max_error:.1e})",
                             marker=dict(color=recovered["color"], symbol=recovered["symbol"], size=7),
                             hovertemplate="coordinate %{x}: %{y:.6f}<extra></extra>"), row=1, col=3)
    fig.update_xaxes(title_text="coordinate", **_GRID)
    fig.update_yaxes(title_text="value", row=1, col=1, **_GRID)
    fig.update_yaxes(title_text="masked value / R", range=[0, 1], row=1, col=2, **_GRID)
    fig.update_yaxes(title_text="sum over survivors", row=1, col=3, **_GRID)
    fig.update_layout(template="simple_white", font=FONT, height=height, width=width,
                      margin=dict(l=60, r=20, t=70 if title else 50, b=90),
                      title=dict(text=title, x=0.01) if title else None, bargap=0.15,
                      legend=dict(orientation="h", x=0, y=-0.22, yanchor="top"),
                      meta={"fedlab": "server_view_figure", "plain_color": plain["color"]})
    return fig


def cost_figure(table, *, title: str | None = None, height: int = 400,
                width: int | None = None) -> go.Figure:
    """Bytes per hospital (left) and seconds per round (right), one bar per protocol, log scales."""
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.14,
                        subplot_titles=("bytes sent per hospital", "seconds per round"))
    names = list(table["protocol"])
    colors = [run_style(i)["color"] for i in range(len(names))]
    patterns = ["", "/", "x", ".", "-", "+", "\\"]
    marker = dict(color=colors, pattern=dict(shape=[patterns[i % len(patterns)] for i in range(len(names))]))
    fig.add_trace(go.Bar(x=names, y=table["bytes per hospital"], marker=marker, showlegend=False,
                         text=[f"{v:,.0f} B" for v in table["bytes per hospital"]], textposition="outside",
                         hovertemplate="%{x}: %{y:,.0f} bytes<extra></extra>"), row=1, col=1)
    fig.add_trace(go.Bar(x=names, y=table["seconds per round"], marker=marker, showlegend=False,
                         text=[_seconds(v) for v in table["seconds per round"]], textposition="outside",
                         hovertemplate="%{x}: %{y:.3g} s<extra></extra>"), row=1, col=2)
    fig.update_yaxes(type="log", **_GRID)
    fig.update_yaxes(title_text="bytes (log)", row=1, col=1)
    fig.update_yaxes(title_text="seconds (log)", row=1, col=2)
    fig.update_xaxes(tickangle=-25)
    fig.update_layout(template="simple_white", font=FONT, height=height, width=width,
                      margin=dict(l=60, r=20, t=70 if title else 50, b=120),
                      title=dict(text=title, x=0.01) if title else None,
                      meta={"fedlab": "cost_figure"})
    return fig


def _seconds(v: float) -> str:
    """``0.023 ms``, ``53 ms``, ``270 ms``, ``1.9 s``: never scientific notation on a bar."""
    if v >= 1:
        return f"{v:.2g} s"
    ms = v * 1e3
    return f"{ms:.0f} ms" if ms >= 10 else f"{ms:.2g} ms"
