"""Figures for personalisation and images: per-hospital bars, verdicts, scan galleries.

- ``hospital_gains(history)``: each hospital's own test set, its local-only
  model against the global (and the personalised) model, with the verdict of
  ``personalise.hospital_verdicts`` above each hospital; updated live by
  ``update_hospital_gains`` (the same traces, new numbers).
- ``hospital_comparison(histories)``: several runs side by side, per
  hospital (e.g. local-only, FedAvg and FedBN on three scanners).
- ``scan_gallery(dataset)``: sample images per hospital, with and without a
  lesion, so the scanners' differences are seen before they are measured.
- ``intensity_histograms(dataset)``: each hospital's pixel intensities.

Bars are told apart by colour (Okabe–Ito, the palette of ``fedlab_core.viz``)
*and* pattern, lines by colour *and* dash and marker, so the figures read in
greyscale and for colour-blind readers.

>>> from fedlab_core.history import History
>>> fig = hospital_gains(History(config={}, client_names=["A", "B"]))
>>> [t.name for t in fig.data]
['local-only (never shares)', 'global model', 'personalised model', 'verdict']
"""

from __future__ import annotations

import math
from typing import Mapping

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from fedlab_core.personalise import hospital_verdicts
from fedlab_core.viz import (BLACK, BLUE, FONT, FONT_SIZE, GRID_GREY, ORANGE, RUN_COLORS, RUN_DASHES,
                              WHITE, hospital_style)

__all__ = ["hospital_gains", "update_hospital_gains", "hospital_comparison", "scan_gallery",
           "intensity_histograms"]

# which bar is which model: colour, pattern
_BARS = {
    "local_only": ("local-only (never shares)", ORANGE, "/"),
    "global": ("global model", BLACK, ""),
    "personal": ("personalised model", BLUE, "x"),
}
BACKGROUND = 0.02
_PATTERNS = ("", "/", "x", ".", "\\", "+", "-", "|")
_VERDICT_MARK = {"gained": "▲ gained", "lost": "▼ lost", "too close to call": "≈ too close"}


def _nan(x) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


def _gain_values(history, last: int):
    """The three bars' heights per hospital, and the verdict texts (empty before round 1)."""
    K = len(history.client_names)
    if not history.records or history.records[-1].local_only_clients is None:
        return {key: [None] * K for key in _BARS}, [""] * K
    verdicts = hospital_verdicts(history, last=last)
    values = {"local_only": [_nan(v.local_only) for v in verdicts],
              "global": [_nan(v.global_model) for v in verdicts],
              "personal": [_nan(v.personalised) for v in verdicts]}
    return values, [_VERDICT_MARK[v.verdict] for v in verdicts]


GAINS_TITLE = "Did each hospital gain from joining? Its own test set, against its local-only model"


def hospital_gains(history, *, last: int = 1, title: str | None = GAINS_TITLE, height: int = 400,
                   width: int | None = None) -> go.Figure:
    """Did each hospital gain from joining? Accuracy on its own test set, averaged over the
    ``last`` rounds: local-only, global and personalised model, verdict on top.

    The verdict (``personalise.hospital_verdicts``) compares the model the
    hospital would use with its local-only one, against two standard errors
    of its test set. Before the first round (or without baselines) the bars
    are empty.
    """
    names = list(history.client_names)
    values, marks = _gain_values(history, last)
    fig = go.Figure()
    for key, (label, color, pattern) in _BARS.items():
        fig.add_trace(go.Bar(
            x=names, y=values[key], name=label, marker=dict(color=color, pattern_shape=pattern,
                                                            line=dict(color=WHITE, width=0.5)),
            hovertemplate=f"%{{x}}: {label} %{{y:.3f}}<extra></extra>", meta={"model": key}))
    fig.add_trace(go.Scatter(x=names, y=[1.04] * len(names), text=marks, mode="text", name="verdict",
                             showlegend=False, hoverinfo="skip",
                             meta={"model": "verdict"}))
    fig.update_layout(template="simple_white", font=FONT, barmode="group", height=height,
                      width=width, margin=dict(l=60, r=20, t=60 if title else 30, b=50),
                      title=dict(text=title, x=0.01) if title else None,
                      legend=dict(orientation="h", y=-0.18),
                      meta={"fedlab": "hospital_gains", "last": last})
    fig.update_yaxes(title_text="accuracy, hospital's own test set", range=[0, 1.1],
                     showgrid=True, gridcolor=GRID_GREY)
    return fig


def update_hospital_gains(fig: go.Figure, history, *, last: int | None = None) -> None:
    """Refresh the bars and verdicts of ``hospital_gains`` in place (a live ``FigureWidget``)."""
    last = last or (fig.layout.meta or {}).get("last", 1)
    values, marks = _gain_values(history, last)
    for trace, key in zip(fig.data, _BARS):
        trace.y = values[key]
    fig.data[-1].text = marks


def hospital_comparison(histories: Mapping[str, object], *, model: str = "auto",
                        local_only: bool = True, title: str | None = None, height: int = 380,
                        width: int | None = None) -> go.Figure:
    """Several runs on each hospital's own test set (final round's accuracy), side by side.

    ``model='auto'`` scores each run's personalised models when it has them,
    else its global model; ``local_only`` adds the first run's local-only
    baseline as the leftmost bar.
    """
    runs = list(dict(histories).items())
    if not runs:
        raise ValueError("histories = {} is not allowed: give at least one named run")
    if model not in ("auto", "global", "personal"):
        raise ValueError(f"model = {model!r} is not allowed: choose auto, global or personal")
    names = list(runs[0][1].client_names)
    fig = go.Figure()
    bars = []
    first = runs[0][1].records[-1] if runs[0][1].records else None
    if local_only and first is not None and first.local_only_clients is not None:
        bars.append(("local-only", [m["accuracy"] for m in first.local_only_clients]))
    for name, h in runs:
        if not h.records:
            raise ValueError(f"run {name!r} has no rounds yet")
        r = h.records[-1]
        use_personal = (model == "personal" or (model == "auto" and r.personal_clients is not None))
        if use_personal and r.personal_clients is None:
            raise ValueError(f"run {name!r} has no personalised models (personal.method = 'none')")
        scores = r.personal_clients if use_personal else r.global_clients
        bars.append((name, [m["accuracy"] for m in scores]))
    for i, (name, ys) in enumerate(bars):
        color = RUN_COLORS[(i + 1) % len(RUN_COLORS)] if i else ORANGE
        fig.add_trace(go.Bar(x=names, y=[_nan(v) for v in ys], name=name,
                             marker=dict(color=color, pattern_shape=_PATTERNS[i % len(_PATTERNS)],
                                         line=dict(color=WHITE, width=0.5)),
                             text=[f"{v:.2f}" if _nan(v) is not None else "" for v in ys],
                             textposition="outside",
                             hovertemplate=f"%{{x}}: {name} %{{y:.3f}}<extra></extra>"))
    fig.update_layout(template="simple_white", font=FONT, barmode="group", height=height,
                      width=width, margin=dict(l=60, r=20, t=60 if title else 30, b=50),
                      title=dict(text=title, x=0.01) if title else None,
                      legend=dict(orientation="h", y=-0.18),
                      meta={"fedlab": "hospital_comparison"})
    fig.update_yaxes(title_text="accuracy, hospital's own test set", range=[0, 1.08],
                     showgrid=True, gridcolor=GRID_GREY)
    return fig


def _side(dataset) -> int:
    """The image side of a dataset of flattened square images (``data.scans.pixel_names``)."""
    from fedlab_core.data.scans import pixel_names

    side = math.isqrt(dataset.n_features)
    if side * side != dataset.n_features or tuple(dataset.feature_names) != pixel_names(side):
        raise ValueError(f"dataset {dataset.name!r} has {dataset.n_features} features, not the pixels "
                         "of a square image: scan figures need data.dataset = 'scans'")
    return side


def scan_gallery(dataset, *, per_class: int = 3, split: str = "train", height: int | None = None,
                 width: int | None = None) -> go.Figure:
    """``per_class`` images without and with a lesion for every hospital: one row per hospital.

    The first images of each class in the hospital's ``split`` (no
    randomness: the same dataset draws the same gallery). Intensities are
    shown on one fixed grey scale, 0 = black to 1 = white, so a dark or a
    low-contrast scanner looks dark or flat.
    """
    if split not in ("train", "test"):
        raise ValueError(f"split = {split!r} is not allowed: choose train or test")
    if not isinstance(per_class, int) or isinstance(per_class, bool) or not 1 <= per_class <= 8:
        raise ValueError(f"per_class = {per_class!r} is not allowed: must be an integer in [1, 8]")
    side = _side(dataset)
    K, cols = dataset.n_clients, 2 * per_class
    titles = [("no lesion" if c < per_class else "lesion") if k == 0 else "" for k in range(K)
              for c in range(cols)]
    fig = make_subplots(rows=K, cols=cols, horizontal_spacing=0.01, vertical_spacing=0.03,
                        subplot_titles=titles, row_titles=[c.name for c in dataset.clients])
    for k, client in enumerate(dataset.clients):
        X, y = (client.X_train, client.y_train) if split == "train" else (client.X_test, client.y_test)
        for label in (0, 1):
            rows = np.flatnonzero(y == label)[:per_class]
            for j, i in enumerate(rows):
                # rows of an image go top to bottom, as on a screen
                fig.add_trace(go.Heatmap(z=np.asarray(X[i]).reshape(side, side)[::-1],
                                         colorscale="gray", zmin=0, zmax=1, showscale=False,
                                         hovertemplate=f"{client.name}, "
                                         f"{'lesion' if label else 'no lesion'}: %{{z:.2f}}<extra></extra>"),
                              row=k + 1, col=label * per_class + j + 1)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    for i in range(1, K * cols + 1):   # square pixels in every panel
        fig.layout[f"yaxis{i if i > 1 else ''}"].scaleanchor = f"x{i if i > 1 else ''}"
    fig.update_layout(template="simple_white", font=FONT, height=height or 110 * K + 60,
                      width=width, margin=dict(l=10, r=110, t=40, b=10),
                      meta={"fedlab": "scan_gallery"})
    fig.for_each_annotation(lambda a: a.update(font=dict(size=FONT_SIZE)))
    return fig


def intensity_histograms(dataset, *, bins: int = 40, height: int = 320,
                         width: int | None = None) -> go.Figure:
    """Each hospital's pixel intensities (training images), as overlaid outlines.

    A scanner's brightness shifts its histogram, its contrast stretches or
    squeezes it, and noise widens it: the feature shift FedBN undoes. Pixels at
    or below ``BACKGROUND`` (the black outside the body) are left out.
    """
    _side(dataset)
    edges = np.linspace(BACKGROUND, 1, bins + 1)
    fig = go.Figure()
    for k, client in enumerate(dataset.clients):
        pixels = np.asarray(client.X_train).ravel()
        # the black background outside the body would dwarf everything else
        counts, _ = np.histogram(pixels[pixels > BACKGROUND], bins=edges, density=True)
        # colour, dash and marker all differ, so any number of hospitals stays apart
        style = hospital_style(k)
        fig.add_trace(go.Scatter(x=(edges[:-1] + edges[1:]) / 2, y=counts, name=client.name,
                                 mode="lines+markers",
                                 line=dict(color=style["color"], width=2.4,
                                           dash=RUN_DASHES[k % len(RUN_DASHES)]),
                                 marker=dict(symbol=style["symbol"], color=style["color"], size=7,
                                             maxdisplayed=10),
                                 line_shape="hvh",
                                 hovertemplate=f"{client.name}: %{{x:.2f}}<extra></extra>"))
    fig.update_layout(template="simple_white", font=FONT, height=height, width=width,
                      margin=dict(l=60, r=20, t=30, b=50), meta={"fedlab": "intensity_histograms"})
    fig.update_xaxes(title_text="pixel intensity (0 black, 1 white)")
    fig.update_yaxes(title_text="density")
    return fig
