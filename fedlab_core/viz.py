"""Plotly figure builders: data in, ``go.Figure`` out.

Pure functions, no widgets and no state. The dashboards (``fedlab_core.ui``)
wrap them in a live ``FigureWidget``; notebooks show them directly.

- ``partition_figure(summary)``: how the patients are split across hospitals
  (sizes, label mix, Jensen–Shannon distance of each hospital's labels to the
  pooled labels), so the odd hospital stands out at a glance.
- ``learning_curves(history)``: the global model against the baselines, on
  the pooled test set and on each hospital's own test set.
- ``curve_data(history)``: just the ``(x, y)`` of every trace of
  ``learning_curves``, in the same order, for live updates without a rebuild.
- ``compare_runs(histories)``: named runs (algorithms, servers) side by side,
  pooled and at the worst-served hospital.
- ``fairness_figure(history)``: worst / mean / best hospital per round.
- ``communication_figure(histories)``: cumulative bytes per run, and final
  accuracy against bytes sent (the trade-off).

Colours are the Okabe–Ito colour-blind-safe set (Okabe & Ito 2008, "Color
Universal Design"); a hospital is also told apart by its marker symbol and a
model kind by its dash style, so nothing relies on colour alone. The other
figure modules (``viz_privacy``, ``viz_secure``, ``viz_personal``) take their
colours, greys and font from the constants here: ``OKABE_ITO`` (also by name:
``BLACK``, ``ORANGE``, …), ``NEUTRALS`` for what is not data (grid lines,
"the rest" bars, chance lines), ``rgba`` for a translucent palette colour, and
``FONT`` (``FONT_SIZE`` = 13 px, the smallest text any figure draws).

>>> from fedlab_core.history import History
>>> fig = learning_curves(History(config={}, client_names=["A", "B"]))
>>> len(fig.data) == len(trace_specs(["A", "B"], baselines=True))
True
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

__all__ = [
    "OKABE_ITO", "BLACK", "ORANGE", "SKY_BLUE", "BLUISH_GREEN", "YELLOW", "BLUE", "VERMILLION",
    "REDDISH_PURPLE", "GRID_GREY", "LIGHT_GREY", "MID_GREY", "GREY", "WHITE", "NEUTRALS", "rgba",
    "FONT_SIZE", "FONT", "HOSPITAL_COLORS", "HOSPITAL_SYMBOLS", "MODEL_DASH", "METRIC_LABELS",
    "TraceSpec", "trace_specs", "has_baselines", "curve_data", "learning_curves",
    "update_learning_curves", "set_metric_axes", "set_round_range", "partition_figure",
    "hospital_style", "figure_summary", "RUN_COLORS", "RUN_DASHES", "run_style",
    "compare_runs", "fairness_figure", "communication_figure",
]

# Okabe & Ito (2008): black, orange, sky blue, bluish green, yellow, blue,
# vermillion, reddish purple.
OKABE_ITO = ("#000000", "#E69F00", "#56B4E9", "#009E73",
             "#F0E442", "#0072B2", "#D55E00", "#CC79A7")
BLACK, ORANGE, SKY_BLUE, BLUISH_GREEN, YELLOW, BLUE, VERMILLION, REDDISH_PURPLE = OKABE_ITO
# Greys carry no meaning by hue, so they are safe for everything that is not a
# series of data: grid lines, the "negative" remainder of a share, a chance line.
GRID_GREY, LIGHT_GREY, MID_GREY, GREY, WHITE = "#E5E5E5", "#DDDDDD", "#BBBBBB", "#999999", "#FFFFFF"
NEUTRALS = (GRID_GREY, LIGHT_GREY, MID_GREY, GREY, WHITE)
# Black is kept for the global model; yellow goes last (weak on white).
HOSPITAL_COLORS = (BLUE, ORANGE, BLUISH_GREEN, REDDISH_PURPLE, VERMILLION, SKY_BLUE, YELLOW)
HOSPITAL_SYMBOLS = ("circle", "square", "diamond", "triangle-up", "cross", "x",
                    "star", "triangle-down", "pentagon", "hexagon", "star-triangle-up",
                    "hourglass", "bowtie", "triangle-left", "triangle-right",
                    "star-square", "star-diamond", "diamond-tall", "diamond-wide",
                    "hexagram", "octagon", "circle-open", "square-open",
                    "diamond-open", "triangle-up-open")
# dash style = kind of model; colour + symbol = hospital
MODEL_DASH = {"global": "solid", "central": "dashdot", "local": "dot", "local_only": "dash"}
MODEL_LABELS = {
    "global": "global model",
    "central": "centralised (all data pooled)",
    "local": "local model, after local training",
    "local_only": "local-only (never shares)",
}
METRIC_LABELS = {"accuracy": "accuracy", "auc": "ROC AUC", "loss": "loss (cross-entropy)"}
_METRICS = tuple(METRIC_LABELS)
# 13 px is the floor for every text in every figure (ticks, legends, labels on
# bars): below it, a projected figure is unreadable from the back of a room.
FONT_SIZE = 13
FONT = dict(family="Arial, Helvetica, sans-serif", size=FONT_SIZE)


def rgba(color: str, alpha: float) -> str:
    """A palette colour ``"#RRGGBB"`` made translucent: ``"rgba(r, g, b, alpha)"``.

    >>> rgba(BLUE, 0.15)
    'rgba(0, 114, 178, 0.15)'
    """
    if not (isinstance(color, str) and len(color) == 7 and color.startswith("#")):
        raise ValueError(f"color = {color!r} is not allowed: give a '#RRGGBB' colour such as {BLUE!r}")
    if not 0 <= alpha <= 1:
        raise ValueError(f"alpha = {alpha!r} is not allowed: must be in [0, 1]")
    r, g, b = (int(color[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r}, {g}, {b}, {alpha:g})"


def hospital_style(k: int) -> dict[str, str]:
    """Colour and marker symbol of hospital ``k`` (cycled past the palette)."""
    return {"color": HOSPITAL_COLORS[k % len(HOSPITAL_COLORS)],
            "symbol": HOSPITAL_SYMBOLS[k % len(HOSPITAL_SYMBOLS)]}


@dataclass(frozen=True)
class TraceSpec:
    """One learning-curve trace: which model, on which test set, in which panel.

    ``panel`` is 1 (pooled test set) or 2 (each hospital's own test set);
    ``client`` is the hospital index, or ``None`` for a pooled-only model.
    """

    panel: int
    model: str
    client: int | None
    name: str
    legendgroup: str


def trace_specs(client_names: Sequence[str], *, baselines: bool = True) -> list[TraceSpec]:
    """The traces of ``learning_curves``, in order, from the hospitals and baselines alone.

    >>> [(s.panel, s.model, s.client) for s in trace_specs(["A"], baselines=False)]
    [(1, 'global', None), (2, 'global', 0), (2, 'local', 0)]
    """
    specs = [TraceSpec(1, "global", None, "global model · pooled test", "global")]
    if baselines:
        specs.append(TraceSpec(1, "central", None, "centralised · pooled test", "global"))
        specs += [TraceSpec(1, "local_only", k, "local-only · pooled test", f"h{k}")
                  for k, n in enumerate(client_names)]
    for k, n in enumerate(client_names):
        specs.append(TraceSpec(2, "global", k, "global model · own test", f"h{k}"))
        specs.append(TraceSpec(2, "local", k, "local, after training · own test", f"h{k}"))
        if baselines:
            specs.append(TraceSpec(2, "local_only", k, "local-only · own test", f"h{k}"))
    return specs


def has_baselines(history) -> bool:
    """Whether a History carries the baselines (from its records, else its config)."""
    if history.records:
        r = history.records[0]
        return r.central_pooled is not None or r.local_only_clients is not None
    return bool((history.config or {}).get("baselines", True))


def _value(m: dict[str, float] | None, metric: str) -> float:
    if m is None:
        return math.nan
    v = m.get(metric, math.nan)
    return math.nan if v is None else float(v)


def _spec_metrics(r, spec: TraceSpec):
    if spec.panel == 1:
        if spec.model == "global":
            return r.global_pooled
        if spec.model == "central":
            return r.central_pooled
        lst = r.local_only_pooled  # local_only on pooled test
    elif spec.model == "global":
        lst = r.global_clients
    elif spec.model == "local":
        lst = r.local_clients
    else:
        lst = r.local_only_clients
    if lst is None or spec.client is None or spec.client >= len(lst):
        return None
    return lst[spec.client]


def curve_data(history, metric: str = "accuracy", *,
               baselines: bool | None = None) -> list[tuple[list[int], list[float]]]:
    """The ``(x, y)`` of every ``learning_curves`` trace, in the same order.

    Missing values (a hospital not sampled that round, an absent baseline)
    are ``nan``, drawn as a gap.

    >>> from fedlab_core.history import History
    >>> curve_data(History(config={}, client_names=["A"]), baselines=False)
    [([], []), ([], []), ([], [])]
    """
    if metric not in _METRICS:
        raise ValueError(f"metric = {metric!r} is not allowed: choose one of {', '.join(_METRICS)}")
    if baselines is None:
        baselines = has_baselines(history)
    specs = trace_specs(history.client_names, baselines=baselines)
    records = list(history.records)  # a snapshot: a run may append meanwhile
    x = [int(r.round) for r in records]
    return [(list(x), [_value(_spec_metrics(r, s), metric) for r in records]) for s in specs]


def _yaxis_clip(metric: str) -> dict[str, float]:
    # autorange shows the gaps between models; a score never leaves [0, 1]
    return {"clipmin": 0.0, "clipmax": 1.0} if metric in ("accuracy", "auc") else {"clipmin": 0.0}


def learning_curves(history, *, metric: str = "accuracy", baselines: bool | None = None,
                    rounds: int | None = None, metric_menu: bool = False,
                    height: int = 480, width: int | None = 880) -> go.Figure:
    """Learning curves: pooled test set (left) and each hospital's own test set (right).

    Left: the global model (thick black), the centralised baseline and each
    hospital's local-only model, all on the pooled test set. Right, per
    hospital: the global model on that hospital's test set, its local-only
    model, and (hidden until clicked in the legend, when baselines exist) its
    model right after local training. Works with no
    records (every trace present, empty), so a live widget can be built first.

    ``rounds`` fixes the x range (default: the config's ``federation.rounds``);
    ``metric_menu`` adds a dropdown to switch between accuracy, AUC and loss.
    """
    if baselines is None:
        baselines = has_baselines(history)
    names = list(history.client_names)
    specs = trace_specs(names, baselines=baselines)
    data = curve_data(history, metric, baselines=baselines)
    if rounds is None:
        rounds = ((history.config or {}).get("federation") or {}).get("rounds")

    # room between the panels for the right one's tick labels and axis title (at 0.08 the
    # title sat on the left panel's curves, seen in the browser tests' screenshots)
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.14,
                        subplot_titles=("pooled test set", "each hospital's own test set"))
    for spec, (x, y) in zip(specs, data):
        fig.add_trace(_trace(spec, x, y, names, baselines=baselines), row=1, col=spec.panel)

    fig.update_xaxes(title_text="round", rangemode="tozero", zeroline=False,
                     showgrid=True, gridcolor=GRID_GREY)
    set_round_range(fig, rounds)
    fig.update_yaxes(showgrid=True, gridcolor=GRID_GREY, zeroline=False)
    set_metric_axes(fig, metric)
    _empty_y_range(fig, metric, empty=len(history) == 0)
    fig.update_layout(
        template="simple_white", font=FONT, height=height, width=width,
        margin=dict(l=60, r=20, t=50, b=50),
        legend=dict(groupclick="togglegroup", tracegroupgap=6),
        hovermode="closest", uirevision="fedlab",
        meta={"fedlab": "learning_curves", "metric": metric},
    )
    if metric_menu:
        buttons = []
        for m in _METRICS:
            ys = [y for _, y in curve_data(history, m, baselines=baselines)]
            clip = _yaxis_clip(m)
            buttons.append(dict(
                label=METRIC_LABELS[m], method="update",
                args=[{"y": ys}, {"yaxis.title.text": METRIC_LABELS[m],
                                  "yaxis2.title.text": f"{METRIC_LABELS[m]} (own test set)",
                                  "yaxis.autorange": True, "yaxis2.autorange": True,
                                  "yaxis.autorangeoptions": clip,
                                  "yaxis2.autorangeoptions": clip}]))
        fig.update_layout(updatemenus=[dict(
            type="dropdown", buttons=buttons, x=0, xanchor="left", y=1.18, yanchor="top",
            active=_METRICS.index(metric), showactive=True)])
    return fig


def set_metric_axes(fig, metric: str) -> None:
    """Title and range the y axes of a ``learning_curves`` figure for ``metric``, in place."""
    label = METRIC_LABELS[metric]
    for axis, title in (("yaxis", label), ("yaxis2", f"{label} (own test set)")):
        fig.layout[axis].title.text = title
        fig.layout[axis].update(range=None, autorange=True,
                                autorangeoptions=dict(clipmin=None, clipmax=None))
        fig.layout[axis].autorangeoptions.update(_yaxis_clip(metric))
    fig.layout.meta = {"fedlab": "learning_curves", "metric": metric}


def _empty_y_range(fig, metric: str, empty: bool) -> None:
    """With no data plotly's autorange shows -1…4; show a score's 0…1 until round 1."""
    for axis in ("yaxis", "yaxis2"):
        if empty and metric in ("accuracy", "auc"):
            fig.layout[axis].update(range=[0, 1], autorange=False)
        elif fig.layout[axis].autorange is False:
            fig.layout[axis].update(range=None, autorange=True)


def set_round_range(fig, rounds: int | None) -> None:
    """Fix both x axes to rounds ``0 … rounds`` (``None``: autorange), in place."""
    for axis in ("xaxis", "xaxis2"):
        if rounds:
            fig.layout[axis].update(range=[0, int(rounds) + 0.5], autorange=False)
        else:
            fig.layout[axis].update(range=None, autorange=True)


def _trace(spec: TraceSpec, x, y, names, *, baselines: bool = True) -> go.Scatter:
    if spec.client is None:
        color, symbol = BLACK, "circle"
        group_title = "all hospitals"
    else:
        st = hospital_style(spec.client)
        color, symbol = st["color"], st["symbol"]
        group_title = names[spec.client]
    global_pooled = spec.model == "global" and spec.panel == 1
    width = 4 if global_pooled else (2.5 if spec.model == "global" else 1.6)
    what = MODEL_LABELS[spec.model]
    if spec.client is not None:
        what = f"{names[spec.client]}: {what}"
    where = "pooled test set" if spec.panel == 1 else f"{names[spec.client]}'s test set"
    return go.Scatter(
        x=x, y=y, name=spec.name, mode="lines+markers",
        line=dict(color=color, width=width, dash=MODEL_DASH[spec.model]),
        marker=dict(symbol=symbol, size=9 if global_pooled else 7, color=color,
                    line=dict(width=0.5, color=WHITE), maxdisplayed=25),
        opacity=1.0 if spec.model == "global" else 0.85,
        legendgroup=spec.legendgroup,
        legendgrouptitle=dict(text=group_title),
        connectgaps=False,
        # four lines per hospital would bury the comparison that matters (global vs
        # local-only): the model right after local training is one legend click away
        visible="legendonly" if (spec.model == "local" and baselines) else True,
        hovertemplate=f"<b>{what}</b><br>{where}<br>round %{{x}}: %{{y:.3f}}<extra></extra>",
        meta={"panel": spec.panel, "model": spec.model, "client": spec.client},
    )


def update_learning_curves(fig, history, *, metric: str = "accuracy",
                           baselines: bool | None = None) -> None:
    """Write ``curve_data`` into an existing ``learning_curves`` figure, in place.

    Use inside ``with fig.batch_update():`` for a ``FigureWidget``. The figure
    must have been built for the same hospitals and baselines.
    """
    data = curve_data(history, metric, baselines=baselines)
    if len(data) != len(fig.data):
        raise ValueError(f"figure has {len(fig.data)} traces but the history needs {len(data)}: "
                         "rebuild it with learning_curves()")
    for trace, (x, y) in zip(fig.data, data):
        trace.x = x
        trace.y = y
    _empty_y_range(fig, metric, empty=len(history) == 0)


# ---- partition ---------------------------------------------------------------

_ALIASES = {
    "name": ("name", "client", "hospital", "client_name"),
    "n_train": ("n_train", "train", "n_train_samples"),
    "n_test": ("n_test", "test", "n_test_samples"),
    "positive_rate": ("positive_rate", "pos_rate", "positive_share", "positive_fraction",
                      "prevalence", "p_positive", "label_1", "frac_1"),
    "js_distance": ("js_distance", "js", "jsd", "js_to_pooled", "jensen_shannon",
                    "js_distance_to_pooled"),
    "feature_shift": ("feature_shift",),
}


def _column(df, key: str, *, required: bool = True):
    for c in _ALIASES[key]:
        if c in df.columns:
            return df[c]
    if required:
        raise ValueError(f"summary is missing column {key!r} (looked for {', '.join(_ALIASES[key])}); "
                         f"it has {', '.join(map(str, df.columns))}")
    return None


def partition_figure(summary, *, height: int | None = None, width: int | None = 880,
                     title: str | None = None) -> go.Figure:
    """How the data is split: per hospital, its size, its label mix, and how odd it is.

    ``summary`` is a DataFrame with one row per hospital (as from
    ``fedlab_core.heterogeneity.summarize``) with columns ``name``,
    ``n_train``, ``n_test``, ``positive_rate`` and ``js_distance`` (the
    Jensen–Shannon distance of the hospital's label distribution to the
    pooled one). The hospital farthest from the pooled labels is drawn in
    vermillion. An optional ``feature_shift`` column (how far the hospital's
    feature means sit from the pooled ones, in pooled standard deviations)
    adds a fourth panel, drawn the same way.

    >>> import pandas as pd
    >>> df = pd.DataFrame({"name": ["A", "B"], "n_train": [30, 10], "n_test": [10, 4],
    ...                    "positive_rate": [0.5, 0.9], "js_distance": [0.02, 0.4]})
    >>> len(partition_figure(df).data)
    5
    """
    names = [str(n) for n in _column(summary, "name")]
    n_train = [int(v) for v in _column(summary, "n_train")]
    n_test_col = _column(summary, "n_test", required=False)
    n_test = [int(v) for v in n_test_col] if n_test_col is not None else [0] * len(names)
    pos = [float(v) for v in _column(summary, "positive_rate")]
    js_col = _column(summary, "js_distance", required=False)
    js = [float(v) for v in js_col] if js_col is not None else [math.nan] * len(names)
    fs_col = _column(summary, "feature_shift", required=False)
    fs = [float(v) for v in fs_col] if fs_col is not None else None
    n = len(names)
    titles = ["patients (train / test)", "label mix", "label shift (JS distance)"]
    if fs is not None:
        titles.append("feature shift (SDs)")
    fig = make_subplots(rows=1, cols=len(titles), shared_yaxes=True, horizontal_spacing=0.035,
                        subplot_titles=titles)
    fig.add_trace(go.Bar(y=names, x=n_train, name="train", orientation="h",
                         marker=dict(color=BLUE), legendgroup="size",
                         hovertemplate="%{y}: %{x} train<extra></extra>"), row=1, col=1)
    fig.add_trace(go.Bar(y=names, x=n_test, name="test", orientation="h",
                         marker=dict(color=SKY_BLUE, pattern=dict(shape="/")),
                         legendgroup="size",
                         hovertemplate="%{y}: %{x} test<extra></extra>"), row=1, col=1)
    fig.add_trace(go.Bar(y=names, x=pos, name="positive (disease)", orientation="h",
                         marker=dict(color=VERMILLION), legendgroup="labels",
                         text=[f"{p:.0%}" for p in pos], textposition="inside",
                         insidetextanchor="start",
                         hovertemplate="%{y}: %{x:.1%} positive<extra></extra>"), row=1, col=2)
    fig.add_trace(go.Bar(y=names, x=[1 - p for p in pos], name="negative", orientation="h",
                         # dotted as well as lighter: told apart from the vermillion
                         # share without colour
                         marker=dict(color=LIGHT_GREY,
                                     pattern=dict(shape=".", fgcolor=GREY, solidity=0.2)),
                         legendgroup="labels",
                         hovertemplate="%{y}: %{x:.1%} negative<extra></extra>"), row=1, col=2)
    fig.add_trace(_odd_one_out_bars(names, js, "JS distance",
                                    "%{y}: JS distance %{x:.3f} to the pooled labels"), row=1, col=3)
    if fs is not None:
        fig.add_trace(_odd_one_out_bars(names, fs, "feature shift",
                                        "%{y}: feature means %{x:.2f} pooled SDs away"), row=1, col=4)
    fig.update_layout(
        barmode="stack", template="simple_white", font=FONT, width=width,
        height=height or max(260, 150 + 28 * n), margin=dict(l=10, r=30, t=60, b=100),
        legend=dict(orientation="h", x=0, xanchor="left", yref="container", y=0.01,
                    yanchor="bottom"),
        bargap=0.25, title=dict(text=title, x=0.01) if title else None,
        uniformtext=dict(minsize=FONT_SIZE, mode="hide"),  # no unreadable shrunken labels
        meta={"fedlab": "partition_figure"},
    )
    fig.update_yaxes(autorange="reversed", type="category")
    fig.update_xaxes(title_text="patients", row=1, col=1)
    fig.update_xaxes(title_text="share", range=[0, 1], tickformat=".0%", row=1, col=2)
    finite = [v for v in js if not math.isnan(v)]
    js_max = max([0.1, *finite])
    fig.update_xaxes(title_text="0 = same as pooled", range=[0, min(1.0, js_max * 1.35)],
                     row=1, col=3)
    if fs is not None:
        fs_max = max([0.1, *[v for v in fs if not math.isnan(v)]])
        fig.update_xaxes(title_text="0 = same as pooled", range=[0, fs_max * 1.35], row=1, col=4)
    return fig


def _odd_one_out_bars(names, values, name, hover) -> go.Bar:
    """Grey bars, the largest one vermillion: the hospital least like the pool."""
    finite = [v for v in values if not math.isnan(v)]
    worst = max(finite) if finite else math.nan
    colors = [VERMILLION if (finite and v == worst and worst > 0) else GREY for v in values]
    return go.Bar(y=names, x=values, name=name, orientation="h", marker=dict(color=colors),
                  showlegend=False, text=[("" if math.isnan(v) else f"{v:.2f}") for v in values],
                  textposition="outside", cliponaxis=False, hovertemplate=hover + "<extra></extra>")


def figure_summary(fig: go.Figure) -> dict[str, Any]:
    """Trace names and point counts, for tests and debugging."""
    return {"traces": [t.name for t in fig.data], "points": [len(t.x or ()) for t in fig.data]}


# ---- comparing runs: algorithms, fairness, communication ----------------------

# one style per named run: colour (Okabe–Ito, black first), marker symbol and dash all differ,
# so two runs are told apart in greyscale and by colour-blind readers
RUN_COLORS = (BLACK, BLUE, VERMILLION, BLUISH_GREEN, REDDISH_PURPLE, ORANGE, SKY_BLUE)
RUN_DASHES = ("solid", "dash", "dot", "dashdot", "longdash", "longdashdot")


def run_style(i: int) -> dict[str, str]:
    """Colour, marker symbol and dash of the ``i``-th run in a comparison (cycled)."""
    return {"color": RUN_COLORS[i % len(RUN_COLORS)],
            "symbol": HOSPITAL_SYMBOLS[i % len(HOSPITAL_SYMBOLS)],
            "dash": RUN_DASHES[i % len(RUN_DASHES)]}


def _open_symbol(symbol: str) -> str:
    return symbol if symbol.endswith("-open") else f"{symbol}-open"


def _check_metric(metric: str) -> None:
    if metric not in _METRICS:
        raise ValueError(f"metric = {metric!r} is not allowed: choose one of {', '.join(_METRICS)}")


def _check_runs(histories) -> list[tuple[str, Any]]:
    runs = list(dict(histories).items())
    if not runs:
        raise ValueError("histories = {} is not allowed: give at least one named run")
    return runs


def _run_line(i: int, name: str, x, y, *, hover: str, showlegend: bool = True,
              width: float = 2.2) -> go.Scatter:
    st = run_style(i)
    return go.Scatter(x=list(x), y=list(y), name=name, mode="lines+markers",
                      line=dict(color=st["color"], dash=st["dash"], width=width),
                      marker=dict(symbol=st["symbol"], color=st["color"], size=7,
                                  line=dict(width=0.5, color=WHITE), maxdisplayed=25),
                      legendgroup=f"run{i}", showlegend=showlegend, connectgaps=False,
                      hovertemplate=f"<b>{name}</b><br>{hover}<extra></extra>",
                      meta={"run": name})


def _rounds(history) -> list[int]:
    return [int(r.round) for r in history.records]


def compare_runs(histories, *, metric: str = "accuracy", title: str | None = None,
                 height: int = 420, width: int | None = 880) -> go.Figure:
    """Several named runs side by side: the global model per round, overall and at its worst hospital.

    Left: each run's global model on the pooled test set. Right: the same model
    on the hospital it serves worst that round (``History.fairness(metric)["worst"]``;
    for ``loss`` the highest loss is the worst). One trace per run and panel, in
    the order of ``histories``; a run keeps its colour, marker and dash in both.

    >>> from fedlab_core.history import History
    >>> fig = compare_runs({"FedAvg": History(config={}, client_names=["A"])})
    >>> [t.name for t in fig.data]
    ['FedAvg', 'FedAvg']
    """
    _check_metric(metric)
    runs = _check_runs(histories)
    label = METRIC_LABELS[metric]
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.09,
                        subplot_titles=("pooled test set", "worst-served hospital"))
    for i, (name, h) in enumerate(runs):
        x = _rounds(h)
        fig.add_trace(_run_line(i, name, x, h.series("global", metric),
                                hover=f"round %{{x}}: {label} %{{y:.3f}} (pooled)"), row=1, col=1)
        worst = _worst_per_round(h, metric)
        fig.add_trace(_run_line(i, name, x, worst, showlegend=False,
                                hover=f"round %{{x}}: {label} %{{y:.3f}} (worst hospital)"),
                      row=1, col=2)
    fig.update_xaxes(title_text="round", showgrid=True, gridcolor=GRID_GREY, zeroline=False)
    fig.update_yaxes(showgrid=True, gridcolor=GRID_GREY, zeroline=False, autorange=True,
                     autorangeoptions=_yaxis_clip(metric))
    fig.update_yaxes(title_text=label, row=1, col=1)
    fig.update_yaxes(title_text=f"{label}, worst hospital", row=1, col=2)
    _lab_layout(fig, "compare_runs", metric, title=title, height=height, width=width)
    return fig


def _lab_layout(fig, kind: str, metric: str, *, title, height, width, left: int = 60,
                top: tuple[int, int] = (60, 40), hovermode: str = "closest") -> None:
    """The look the aggregation-lab figures share; ``top`` is the margin with/without a title."""
    fig.update_layout(template="simple_white", font=FONT, height=height, width=width,
                      margin=dict(l=left, r=20, t=top[0] if title else top[1], b=50),
                      title=dict(text=title, x=0.01) if title else None,
                      hovermode=hovermode,
                      meta={"fedlab": kind, "metric": metric})


def _worst_per_round(history, metric: str) -> list[float]:
    if not history.records:
        return []
    if metric == "loss":   # the worst-served hospital has the highest loss
        return [float(v) for v in history.fairness(metric)["best"]]
    return [float(v) for v in history.fairness(metric)["worst"]]


def fairness_figure(history, *, metric: str = "accuracy", title: str | None = None,
                    height: int = 380, width: int | None = 720) -> go.Figure:
    """The spread across hospitals, per round: worst, mean and best hospital (``History.fairness``).

    The global model is scored on each hospital's own test set; a shaded band
    runs from the worst to the best hospital, so a wide band is a model that
    serves hospitals unequally. Traces, in order: ``best``, ``worst`` (filled up
    to ``best``), ``mean``. For ``loss`` the curves keep the table's names
    (``worst`` is the lowest value).

    >>> from fedlab_core.history import History
    >>> [t.name for t in fairness_figure(History(config={}, client_names=["A"])).data]
    ['best hospital', 'worst hospital', 'mean over hospitals']
    """
    _check_metric(metric)
    label = METRIC_LABELS[metric]
    if history.records:
        table = history.fairness(metric)
        x = [int(r) for r in table["round"]]
        cols = {c: [float(v) for v in table[c]] for c in ("worst", "mean", "best")}
    else:
        x, cols = [], {"worst": [], "mean": [], "best": []}
    band = rgba(BLUE, 0.15)
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=x, y=cols["best"], name="best hospital", mode="lines+markers",
                             line=dict(color=BLUE, width=1.6, dash="dot"),
                             marker=dict(symbol="triangle-up", size=7, color=BLUE),
                             hovertemplate=f"round %{{x}}: best {label} %{{y:.3f}}<extra></extra>",
                             meta={"series": "best"}))
    fig.add_trace(go.Scatter(x=x, y=cols["worst"], name="worst hospital", mode="lines+markers",
                             line=dict(color=VERMILLION, width=1.6, dash="dash"),
                             marker=dict(symbol="triangle-down", size=7, color=VERMILLION),
                             fill="tonexty", fillcolor=band,
                             hovertemplate=f"round %{{x}}: worst {label} %{{y:.3f}}<extra></extra>",
                             meta={"series": "worst"}))
    fig.add_trace(go.Scatter(x=x, y=cols["mean"], name="mean over hospitals", mode="lines+markers",
                             line=dict(color=BLACK, width=3),
                             marker=dict(symbol="circle", size=7, color=BLACK),
                             hovertemplate=f"round %{{x}}: mean {label} %{{y:.3f}}<extra></extra>",
                             meta={"series": "mean"}))
    fig.update_xaxes(title_text="round", showgrid=True, gridcolor=GRID_GREY, zeroline=False)
    fig.update_yaxes(title_text=f"{label} (each hospital's own test set)", showgrid=True,
                     gridcolor=GRID_GREY, zeroline=False, autorange=True,
                     autorangeoptions=_yaxis_clip(metric))
    _lab_layout(fig, "fairness_figure", metric, title=title, height=height, width=width,
                top=(50, 20), hovermode="x unified")
    return fig


def communication_figure(histories, *, metric: str = "accuracy", title: str | None = None,
                         height: int = 420, width: int | None = 900) -> go.Figure:
    """Bytes moved per run (``History.communication``), and what they bought.

    Left: cumulative bytes per round, sent up by the hospitals (solid line,
    the run's marker) and down by the server (thin dotted line, open marker).
    Right: one point per run, the final global model's ``metric`` on the pooled
    test set against the total bytes sent up (log axis): the trade-off.
    Traces: per run ``"<name> · up"`` and ``"<name> · down"`` (left), then one
    ``"<name>"`` point per run (right).

    >>> from fedlab_core.history import History
    >>> [t.name for t in communication_figure({"dense": History(config={}, client_names=["A"])}).data]
    ['dense · up', 'dense · down', 'dense']
    """
    _check_metric(metric)
    runs = _check_runs(histories)
    label = METRIC_LABELS[metric]
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.1, column_widths=[0.58, 0.42],
                        subplot_titles=("cumulative bytes", f"final {label} vs bytes sent up"))
    points = []
    for i, (name, h) in enumerate(runs):
        st = run_style(i)
        x = _rounds(h)
        if h.records:
            comm = h.communication()
            up = [int(v) for v in comm["bytes_up"].cumsum()]
            down = [int(v) for v in comm["bytes_down"].cumsum()]
        else:
            up, down = [], []
        fig.add_trace(_run_line(i, f"{name} · up", x, up,
                                hover="round %{x}: %{y:,} bytes up so far"), row=1, col=1)
        fig.add_trace(go.Scatter(
            x=x, y=down, name=f"{name} · down", mode="lines+markers", legendgroup=f"run{i}",
            line=dict(color=st["color"], dash="dot", width=1.2),
            marker=dict(symbol=_open_symbol(st["symbol"]), color=st["color"], size=6,
                        maxdisplayed=25),
            visible="legendonly",   # the same for every scheme: the model goes down dense
            hovertemplate=f"<b>{name}</b><br>round %{{x}}: %{{y:,}} bytes down so far<extra></extra>",
            meta={"run": name, "direction": "down"}), row=1, col=1)
        last = h.last()
        points.append((i, name, up[-1] if up else math.nan,
                       _value(last.global_pooled, metric) if last is not None else math.nan))
    for i, name, total, value in points:
        st = run_style(i)
        fig.add_trace(go.Scatter(
            x=[total], y=[value], name=name, mode="markers+text", text=[name],
            textposition="top center", showlegend=False, legendgroup=f"run{i}",
            marker=dict(symbol=st["symbol"], color=st["color"], size=12,
                        line=dict(width=1, color=WHITE)),
            hovertemplate=f"<b>{name}</b><br>%{{x:,}} bytes up · final {label} %{{y:.3f}}"
                          "<extra></extra>",
            meta={"run": name, "total_bytes_up": total}), row=1, col=2)
    fig.update_xaxes(title_text="round", showgrid=True, gridcolor=GRID_GREY, zeroline=False,
                     row=1, col=1)
    fig.update_yaxes(title_text="bytes (cumulative)", showgrid=True, gridcolor=GRID_GREY,
                     rangemode="tozero", row=1, col=1)
    fig.update_xaxes(title_text="total bytes sent up (log)", type="log", showgrid=True,
                     gridcolor=GRID_GREY, row=1, col=2)
    fig.update_yaxes(title_text=f"final {label} (pooled test)", showgrid=True,
                     gridcolor=GRID_GREY, autorange=True, autorangeoptions=_yaxis_clip(metric),
                     row=1, col=2)
    _lab_layout(fig, "communication_figure", metric, title=title, height=height, width=width,
                left=70)
    return fig
