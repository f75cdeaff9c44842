"""Privacy figures: the ε meter, the privacy–utility frontier, attack ROC curves, inversions.

Pure plotly builders like ``fedlab_core.viz`` (data in, ``go.Figure`` out),
in the same colour-blind-safe styles (the palette, greys and font of
``fedlab_core.viz``):

- ``privacy_meter(history)``: ε spent so far as a gauge, and ε per round
  (the headline and each hospital's own), against the budget.
  ``update_privacy_meter(fig, history)`` refreshes it in place, for live widgets.
- ``frontier_figure(table)``: accuracy against ε (mean ± sd over seeds), with
  the non-private model as the ceiling.
- ``attack_roc_figure(results)``: membership-inference ROC curves on log–log
  axes (where the low-FPR regime that matters is visible), under the bound
  that an (ε, δ)-DP guarantee implies.
- ``inversion_figure(...)``: a patient's real features beside what gradient
  inversion recovered from the shared gradient.

>>> from fedlab_core.history import History
>>> fig = privacy_meter(History(config={}, client_names=["A", "B"]), budget=4.0)
>>> fig.layout.meta["fedlab"], fig.data[0].type
('privacy_meter', 'indicator')
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np
import plotly.graph_objects as go

from fedlab_core.viz import (BLACK, FONT, GREY, GRID_GREY, VERMILLION, hospital_style, rgba,
                              run_style)

__all__ = ["privacy_meter", "update_privacy_meter", "meter_budget", "frontier_figure",
           "attack_roc_figure", "inversion_figure"]

_GRID = dict(showgrid=True, gridcolor=GRID_GREY, zeroline=False)
_PATTERNS = ("/", "x", ".", "-", "\\", "+", "|")


def meter_budget(config: Mapping[str, Any] | None) -> float | None:
    """The ε a run is meant to stay under: ``stop.max_epsilon``, else ``privacy.target_epsilon``."""
    config = config or {}
    return ((config.get("stop") or {}).get("max_epsilon")
            or (config.get("privacy") or {}).get("target_epsilon"))


def _finite(values) -> list[float | None]:
    # ε = ∞ (no noise) cannot be drawn; leave a gap and say so in the gauge
    return [v if v is not None and math.isfinite(v) else None for v in values]


def _meter_data(history) -> tuple[list[int], list[float | None], list[list[float | None]]]:
    x = [r.round for r in history.records]
    headline = _finite([r.epsilon for r in history.records])
    per_client = [_finite([(r.epsilon_clients or [None] * len(history.client_names))[k]
                           for r in history.records]) for k in range(len(history.client_names))]
    return x, headline, per_client


def _gauge_title(history) -> str:
    # two short lines: on one line the title was wider than the gauge and ran off the
    # figure's left edge ("ent (per patient record, δ = …", seen in the browser test)
    plan = history.privacy or {}
    unit = plan.get("unit", "unit")
    delta = plan.get("delta")
    return f"ε spent per {unit}" + (f"<br>δ = {delta:g}" if delta else "")


def privacy_meter(history, *, budget: float | None = None, height: int = 320,
                  width: int | None = 880) -> go.Figure:
    """The ε meter: a gauge of ε spent (left) and ε per round (right).

    The headline is the largest ε over the protected units (thick black).
    Under DP-SGD and local DP each hospital spends its own ε (thin, in the
    hospital's colour and marker). ``budget`` (default: the run's
    ``stop.max_epsilon`` or ``privacy.target_epsilon``) is drawn as a dashed
    line and sets the gauge's range.
    """
    if budget is None:
        budget = meter_budget(history.config)
    x, headline, per_client = _meter_data(history)
    last = history.records[-1].epsilon if history.records else 0.0
    fig = go.Figure()
    fig.add_trace(go.Indicator(
        mode="number+gauge", value=_gauge_value(last),
        number=dict(valueformat=".3~g", suffix="" if last is None or math.isfinite(last) else " (∞)"),
        title=dict(text=_gauge_title(history)),
        domain=dict(x=[0.0, 0.26], y=[0.05, 0.85]),
        gauge=dict(axis=dict(range=[0, _gauge_top(headline, budget)]), bar=dict(color=BLACK),
                   threshold=dict(value=budget, line=dict(color=VERMILLION, width=3))
                   if budget else None)))
    # the headline is a wide grey band *under* the hospitals' lines: it highlights
    # the worst hospital's line instead of hiding it
    fig.add_trace(go.Scatter(x=x, y=headline, name="ε (worst unit)", mode="lines",
                             line=dict(color=rgba(BLACK, 0.28), width=9),
                             hovertemplate="round %{x}: ε = %{y:.3g}<extra></extra>",
                             meta={"fedlab_meter": "headline"}))
    for k, name in enumerate(history.client_names):
        st = hospital_style(k)
        fig.add_trace(go.Scatter(
            x=x, y=per_client[k], name=name, mode="lines+markers",
            line=dict(color=st["color"], width=1.3), marker=dict(symbol=st["symbol"], size=6),
            visible=True if any(v is not None for v in per_client[k]) else "legendonly",
            hovertemplate=f"<b>{name}</b> round %{{x}}: ε = %{{y:.3g}}<extra></extra>",
            meta={"fedlab_meter": "client", "client": k}))
    if budget:
        fig.add_hline(y=budget, line=dict(color=VERMILLION, dash="dash", width=2.5),
                      annotation_text=f"budget ε = {budget:g}", annotation_position="top left",
                      annotation_font=dict(color=VERMILLION))
    rounds = ((history.config or {}).get("federation") or {}).get("rounds")
    fig.update_layout(
        template="simple_white", font=FONT, height=height, width=width,
        margin=dict(l=40, r=20, t=40, b=50), hovermode="closest", uirevision="fedlab",
        xaxis=dict(domain=[0.36, 1.0], title="round", range=[0, rounds] if rounds else None, **_GRID),
        yaxis=dict(title="ε spent so far", rangemode="tozero",
                   range=[0, budget * 1.2] if budget else None, **_GRID),
        meta={"fedlab": "privacy_meter", "budget": budget})
    return fig


def _gauge_top(headline, budget: float | None) -> float:
    """The gauge's end: past the budget (so its mark shows) and past every ε drawn."""
    spent = max([v for v in headline if v is not None] + [0.0])
    return max(budget or 0.0, spent, 1.0) * 1.25


def _gauge_value(epsilon: float | None) -> float:
    if epsilon is None:
        return 0.0
    return epsilon if math.isfinite(epsilon) else 0.0


def update_privacy_meter(fig, history) -> None:
    """Refresh a ``privacy_meter`` figure (or ``FigureWidget``) from ``history``, in place."""
    x, headline, per_client = _meter_data(history)
    last = history.records[-1].epsilon if history.records else 0.0
    gauge = fig.data[0]
    gauge.value = _gauge_value(last)
    budget = fig.layout.meta.get("budget")
    gauge.gauge.axis.range = [0, _gauge_top(headline, budget)]
    if budget and max([v for v in headline if v is not None] + [0.0]) > budget:
        fig.layout.yaxis.range = None   # a run past its budget (e.g. target ε) stays in view
    fig.data[1].x, fig.data[1].y = x, headline
    for trace in fig.data[2:]:
        k = trace.meta["client"]
        trace.x, trace.y = x, per_client[k]
        if any(v is not None for v in per_client[k]) and trace.visible == "legendonly":
            trace.visible = True


def frontier_figure(table, *, metric: str = "accuracy", title: str | None = None,
                    height: int = 420, width: int | None = 760) -> go.Figure:
    """Utility against privacy: ``metric`` (mean ± sd over seeds) at each target ε.

    ``table`` has columns ``epsilon``, ``<metric>_mean``, ``<metric>_sd``
    (``fedlab_core.privacy.frontier.summarize``). ε = ∞ (no DP) is drawn as a
    dashed ceiling: it has no place on a log axis.
    """
    finite = table[np.isfinite(table["epsilon"])]
    fig = go.Figure()
    st = run_style(1)
    fig.add_trace(go.Scatter(
        x=finite["epsilon"], y=finite[f"{metric}_mean"], name="with DP (mean ± sd)",
        mode="lines+markers", line=dict(color=st["color"], width=2.5),
        marker=dict(symbol=st["symbol"], size=9),
        error_y=dict(type="data", array=finite[f"{metric}_sd"], visible=True, thickness=1.5),
        hovertemplate=f"ε = %{{x:g}}: {metric} %{{y:.3f}}<extra></extra>"))
    private_free = table[~np.isfinite(table["epsilon"])]
    if len(private_free):
        mean = float(private_free[f"{metric}_mean"].iloc[0])
        sd = float(private_free[f"{metric}_sd"].iloc[0])
        fig.add_hline(y=mean, line=dict(color=BLACK, dash="dash", width=2),
                      annotation_text=f"no DP (ε = ∞): {mean:.3f} ± {sd:.3f}",
                      annotation_position="bottom right")
    fig.update_xaxes(type="log", title="ε (smaller = more private)", **_GRID)
    fig.update_yaxes(title=metric, **_GRID)
    fig.update_layout(template="simple_white", font=FONT, height=height, width=width,
                      margin=dict(l=60, r=20, t=60 if title else 30, b=50),
                      title=dict(text=title, x=0.01) if title else None,
                      meta={"fedlab": "frontier_figure", "metric": metric})
    return fig


def attack_roc_figure(results: Mapping[str, Any], *, epsilon: float | None = None,
                      delta: float = 0.0, title: str | None = None, height: int = 600,
                      width: int | None = 600) -> go.Figure:
    """Membership-inference ROC curves, log–log, with chance and the DP bound.

    ``results`` maps a name to an object with ``fpr``, ``tpr`` and ``auc``
    (``fedlab_core.privacy.membership.AttackResult``). With ``epsilon``, the
    region above ``TPR = min(e^ε FPR + δ, 1 − e^−ε (1 − δ − FPR))`` is
    forbidden to every attack on an (ε, δ)-DP model (Kairouz et al. 2015).
    """
    fpr_grid = np.logspace(-4, 0, 200)
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=fpr_grid, y=fpr_grid, name="chance (TPR = FPR)", mode="lines",
                             line=dict(color=GREY, dash="dot", width=1.5), hoverinfo="skip"))
    if epsilon is not None and math.isfinite(epsilon):
        bound = np.minimum(np.exp(epsilon) * fpr_grid + delta,
                           1 - np.exp(-epsilon) * (1 - delta - fpr_grid))
        fig.add_trace(go.Scatter(x=fpr_grid, y=np.clip(bound, 0, 1),
                                 name=f"DP bound at ε = {epsilon:.3g}: no attack above", mode="lines",
                                 line=dict(color=BLACK, dash="longdash", width=2.5),
                                 hoverinfo="skip"))
    for i, (name, res) in enumerate(results.items()):
        st = run_style(i + 1)   # black is the bound's
        fpr, tpr = np.asarray(res.fpr, dtype=float), np.asarray(res.tpr, dtype=float)
        keep = fpr > 0   # log axes: the (0, 0) corner has no place
        # a marker as well as a dash: the third curve's dots would otherwise match chance's
        fig.add_trace(go.Scatter(x=fpr[keep], y=tpr[keep], name=f"{name} (AUC {res.auc:.3f})",
                                 mode="lines+markers",
                                 line=dict(color=st["color"], dash=st["dash"], width=2.2),
                                 marker=dict(symbol=st["symbol"], color=st["color"], size=7,
                                             maxdisplayed=20),
                                 hovertemplate=f"<b>{name}</b><br>FPR %{{x:.2g}} → TPR %{{y:.3f}}"
                                               "<extra></extra>"))
    fig.update_xaxes(type="log", range=[-3.2, 0], title="false positive rate", **_GRID)
    fig.update_yaxes(type="log", range=[-3.2, 0], title="true positive rate", **_GRID)
    fig.update_layout(template="simple_white", font=FONT, height=height, width=width,
                      margin=dict(l=60, r=20, t=60 if title else 30, b=50),
                      title=dict(text=title, x=0.01) if title else None,
                      # below the plot: the low-FPR corner, where attacks are judged, stays clear
                      legend=dict(x=0, y=-0.16, yanchor="top"),
                      meta={"fedlab": "attack_roc_figure"})
    return fig


def inversion_figure(true_x, reconstructions: Mapping[str, Any], *,
                     feature_names: Sequence[str] | None = None, title: str | None = None,
                     height: int = 460, width: int | None = 880) -> go.Figure:
    """A patient's real (standardised) features beside what each attack recovered.

    ``reconstructions`` maps a name (e.g. "no defence", "clip + noise") to a
    feature vector of the same length as ``true_x``.
    """
    true_x = np.asarray(true_x, dtype=float).ravel()
    names = list(feature_names) if feature_names is not None else [f"x{i}" for i in range(len(true_x))]
    fig = go.Figure()
    fig.add_trace(go.Bar(x=names, y=true_x, name="real patient", marker_color=BLACK))
    for i, (name, x_hat) in enumerate(reconstructions.items()):
        x_hat = np.asarray(x_hat, dtype=float).ravel()
        err = np.linalg.norm(x_hat - true_x) / max(np.linalg.norm(true_x), 1e-12)
        st = run_style(i + 1)
        fig.add_trace(go.Bar(x=names, y=x_hat, name=f"{name} (rel. error {err:.2f})",
                             marker=dict(color=st["color"],
                                         # the real patient's bar is plain black: every
                                         # reconstruction gets a pattern of its own (as many
                                         # patterns as run colours, so no two bars share both)
                                         pattern=dict(shape=_PATTERNS[i % len(_PATTERNS)]))))
    fig.update_layout(template="simple_white", font=FONT, height=height, width=width,
                      barmode="group", margin=dict(l=60, r=20, t=60 if title else 30, b=80),
                      title=dict(text=title, x=0.01) if title else None,
                      legend=dict(orientation="h", x=0, y=-0.3, yanchor="top"),
                      yaxis=dict(title="standardised value", **_GRID),
                      meta={"fedlab": "inversion_figure"})
    return fig
