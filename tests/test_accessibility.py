"""Every figure the kit draws is readable by colour-blind learners and from the back of a room.

A representative figure from every builder of ``viz``, ``viz_privacy``,
``viz_secure`` and ``viz_personal`` (built from small real runs where the
figure needs one) is held to three rules:

1. **Palette.** Every colour it sets is an Okabe–Ito colour (``viz.OKABE_ITO``),
   one of the named greys (``viz.NEUTRALS``), or one of those made translucent.
   Images (the scan gallery) are drawn on a grey scale.
2. **Not colour alone.** Two traces in the same panel with different colours
   also differ in shape: line dash, marker symbol, bar pattern, or the kind
   of mark (bars against points).
3. **Readable text.** The base font is at least ``viz.FONT_SIZE`` = 13 px and
   no text (legend, labels on bars, subplot titles, annotations) is set smaller.

A test also checks that every function these modules export that returns a
figure is in the list below, so a new figure cannot skip the rules.
"""

from __future__ import annotations

import inspect
import math
import re
from types import SimpleNamespace

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from fedlab_core import viz, viz_personal, viz_privacy, viz_secure
from fedlab_core.config import DataConfig, ExperimentConfig
from fedlab_core.data import load_dataset
from fedlab_core.heterogeneity import summarize
from fedlab_core.simulation import Simulation

SMALL = {"data.n_clients": 5, "data.n_samples": 600, "federation.rounds": 3}


def run(**overrides):
    return Simulation(ExperimentConfig().with_overrides({**SMALL, **overrides})).run()


@pytest.fixture(scope="module")
def histories():
    return {
        "FedAvg": run(),
        "FedProx": run(**{"train.algorithm": "fedprox", "train.prox_mu": 0.1}),
        "FedAdam": run(**{"federation.server_optimizer": "adam"}),
        "SCAFFOLD": run(**{"train.algorithm": "scaffold"}),
        "top-k": run(**{"federation.compression": "topk"}),
        "fine-tuning": run(**{"personal.method": "finetune"}),
        "Ditto": run(**{"personal.method": "ditto"}),
        "DP-SGD": run(**{"privacy.mechanism": "dpsgd", "train.batch_size": 32,
                         "stop.max_epsilon": 50.0}),
    }


@pytest.fixture(scope="module")
def scans():
    # seven hospitals: one more than there are dash styles, so dashes repeat and markers must differ
    return load_dataset(DataConfig(dataset="scans", n_clients=7, n_samples=350, image_size=16), seed=0)


def roc(seed: int, lift: float):
    rng = np.random.default_rng(seed)
    fpr = np.sort(np.concatenate([[0.0, 1.0], rng.uniform(0, 1, 60)]))
    tpr = np.clip(fpr ** (1 / lift), 0, 1)
    return SimpleNamespace(fpr=fpr, tpr=tpr, auc=float(np.trapezoid(tpr, fpr)))


def server_view_figure(_histories, _scans):
    pytest.importorskip("cryptography")   # the secure extra
    from fedlab_core.secure.inspect import server_view

    updates = np.random.default_rng(0).normal(0, 0.1, size=(5, 40))
    return viz_secure.server_view_figure(server_view(updates, hospital=1, drop_before_masking=[4]))


FIGURES = {
    # viz
    "learning_curves": lambda h, s: viz.learning_curves(h["FedAvg"], metric_menu=True),
    "partition_figure": lambda h, s: viz.partition_figure(
        summarize(Simulation(ExperimentConfig().with_overrides(SMALL)).dataset).assign(
            feature_shift=[0.1, 0.4, 0.2, 0.3, 0.05])),
    "compare_runs": lambda h, s: viz.compare_runs(
        {k: h[k] for k in ("FedAvg", "FedProx", "FedAdam", "SCAFFOLD", "top-k", "fine-tuning",
                           "Ditto")}, title="seven runs"),
    "fairness_figure": lambda h, s: viz.fairness_figure(h["FedAvg"], title="spread"),
    "communication_figure": lambda h, s: viz.communication_figure(
        {"dense": h["FedAvg"], "top-k": h["top-k"], "SCAFFOLD": h["SCAFFOLD"]}),
    # viz_privacy
    "privacy_meter": lambda h, s: viz_privacy.privacy_meter(h["DP-SGD"]),
    "frontier_figure": lambda h, s: viz_privacy.frontier_figure(pd.DataFrame({
        "epsilon": [0.5, 2.0, 8.0, math.inf], "accuracy_mean": [0.6, 0.7, 0.75, 0.76],
        "accuracy_sd": [0.05, 0.03, 0.01, 0.01]}), title="frontier"),
    "attack_roc_figure": lambda h, s: viz_privacy.attack_roc_figure(
        {f"attack {i}": roc(i, 1 + i) for i in range(5)}, epsilon=1.0, delta=1e-5, title="ROC"),
    "inversion_figure": lambda h, s: viz_privacy.inversion_figure(
        np.linspace(-1, 1, 9), {f"defence {i}": np.linspace(-1, 1, 9) * (1 - i / 5) for i in range(5)},
        title="inversion"),
    # viz_secure
    "server_view_figure": server_view_figure,
    "cost_figure": lambda h, s: viz_secure.cost_figure(pd.DataFrame({
        "protocol": ["plain", "masking", "Paillier", "Paillier, packed", "SecAgg+"],
        "seconds per round": [1e-4, 0.05, 1.9, 0.06, 0.02],
        "bytes per hospital": [124, 1278, 15872, 512, 900]}), title="costs"),
    # viz_personal
    "hospital_gains": lambda h, s: viz_personal.hospital_gains(h["fine-tuning"]),
    "hospital_comparison": lambda h, s: viz_personal.hospital_comparison(
        {"FedAvg": h["FedAvg"], "fine-tuning": h["fine-tuning"], "Ditto": h["Ditto"],
         "FedProx": h["FedProx"], "FedAdam": h["FedAdam"], "SCAFFOLD": h["SCAFFOLD"]},
        title="per hospital"),
    "scan_gallery": lambda h, s: viz_personal.scan_gallery(s, per_class=2),
    "intensity_histograms": lambda h, s: viz_personal.intensity_histograms(s),
}


@pytest.fixture(scope="module")
def figures(histories, scans):
    return {name: build(histories, scans) for name, build in FIGURES.items()}


# ---- reading a figure ---------------------------------------------------------

_HEX = re.compile(r"^#[0-9a-fA-F]{6}$")
_RGBA = re.compile(r"^rgba?\(\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*(?:,\s*[\d.]+\s*)?\)$")
_NAMED = {"white": viz.WHITE, "black": viz.BLACK}
ALLOWED = {c.upper() for c in (*viz.OKABE_ITO, *viz.NEUTRALS)}


def as_hex(color: str) -> str | None:
    """``#RRGGBB`` (upper case) for a hex, rgb()/rgba() or named colour; ``None`` if unreadable."""
    color = color.strip()
    if _HEX.match(color):
        return color.upper()
    if color.lower() in _NAMED:
        return _NAMED[color.lower()].upper()
    m = _RGBA.match(color)
    if m:
        return "#" + "".join(f"{int(v):02X}" for v in m.groups())
    return None


def walk(node, path=()):
    """Every ``(path, key, value)`` in a figure's JSON, the template left out."""
    if isinstance(node, dict):
        for key, value in node.items():
            if path == ("layout",) and key == "template":
                continue
            yield path, key, value
            yield from walk(value, path + (key,))
    elif isinstance(node, (list, tuple)):
        for i, value in enumerate(node):
            yield from walk(value, path + (i,))


def colours(fig: go.Figure) -> list[tuple[tuple, str]]:
    out = []
    for path, key, value in walk(fig.to_plotly_json()):
        if not key.endswith("color") or value is None:
            continue
        values = value if isinstance(value, (list, tuple, np.ndarray)) else [value]
        out += [(path + (key,), v) for v in values if isinstance(v, str)]
    return out


def font_sizes(fig: go.Figure) -> list[tuple[tuple, float]]:
    out = []
    for path, key, value in walk(fig.to_plotly_json()):
        in_font = path and isinstance(path[-1], str) and path[-1].endswith("font")
        if (key == "size" and in_font) or key == "minsize":
            values = value if isinstance(value, (list, tuple, np.ndarray)) else [value]
            out += [(path + (key,), float(v)) for v in values if v is not None]
    return out


def single_colour(trace) -> str | None:
    """The one colour a trace is drawn in, or None (per-point colours, a colour scale, text)."""
    if trace.type == "scatter":
        mode = trace.mode or "lines+markers"
        color = trace.line.color if "lines" in mode else trace.marker.color
        if "lines" not in mode and "markers" not in mode:
            return None
    elif trace.type == "bar":
        color = trace.marker.color
    else:
        return None
    return as_hex(color) if isinstance(color, str) else None


def shape(trace) -> tuple:
    """What tells a trace apart without its colour."""
    if trace.type == "bar":
        pattern = trace.marker.pattern.shape if trace.marker.pattern else None
        return ("bar", pattern or "")
    mode = trace.mode or "lines+markers"
    dash = (trace.line.dash or "solid") if "lines" in mode else None
    symbol = (trace.marker.symbol or "circle") if "markers" in mode else None
    return ("scatter", dash, symbol)


def panel(trace) -> tuple:
    return (trace.xaxis or "x", trace.yaxis or "y")


# ---- the rules ----------------------------------------------------------------

def test_every_exported_figure_builder_is_checked():
    exported = {name for module in (viz, viz_privacy, viz_secure, viz_personal)
                for name in module.__all__
                if inspect.isfunction(getattr(module, name))
                and inspect.signature(getattr(module, name)).return_annotation in ("go.Figure", go.Figure)}
    assert exported == set(FIGURES)


@pytest.mark.parametrize("name", FIGURES)
def test_colours_come_from_the_palette(figures, name):
    fig = figures[name]
    drawn = colours(fig)
    if any(trace.type != "heatmap" for trace in fig.data):
        assert drawn, "no colour found: the figure would use plotly's default palette"
    off = [(".".join(map(str, path)), c) for path, c in drawn if as_hex(c) not in ALLOWED]
    assert not off, f"colours outside Okabe–Ito and the named greys: {off[:5]}"
    for trace in fig.data:
        if trace.type == "heatmap":   # images: on a grey scale, from black to (nearly) white
            steps = [as_hex(c) for _, c in trace.colorscale]
            rgb = [tuple(int(h[i:i + 2], 16) for i in (1, 3, 5)) for h in steps]
            assert all(max(c) - min(c) <= 2 for c in rgb), f"not a grey scale: {steps}"
            assert rgb[0][0] <= 5 and rgb[-1][0] >= 250 and rgb == sorted(rgb)


@pytest.mark.parametrize("name", FIGURES)
def test_traces_told_apart_by_colour_also_differ_in_shape(figures, name):
    fig = figures[name]
    by_panel: dict[tuple, list] = {}
    for trace in fig.data:
        colour = single_colour(trace)
        if colour is not None:
            by_panel.setdefault(panel(trace), []).append((trace.name, colour, shape(trace)))
    clashes = [(a[0], b[0], a[2]) for traces in by_panel.values()
               for i, a in enumerate(traces) for b in traces[i + 1:]
               if a[1] != b[1] and a[2] == b[2]]
    assert not clashes, f"traces that differ by colour alone: {clashes[:5]}"


@pytest.mark.parametrize("name", FIGURES)
def test_text_is_at_least_13_px(figures, name):
    fig = figures[name]
    assert fig.layout.font.size is not None and fig.layout.font.size >= viz.FONT_SIZE >= 13
    small = [(".".join(map(str, path)), size) for path, size in font_sizes(fig) if size < viz.FONT_SIZE]
    assert not small, f"text below {viz.FONT_SIZE} px: {small[:5]}"


# ---- the checks themselves can fail ------------------------------------------

def test_the_checks_catch_what_they_are_for():
    bad = go.Figure([go.Scatter(x=[0, 1], y=[0, 1], mode="lines", line=dict(color="#1f77b4")),
                     go.Scatter(x=[0, 1], y=[1, 0], mode="lines", line=dict(color="#ff7f0e"))])
    bad.update_layout(font=dict(size=12), legend=dict(font=dict(size=11)))
    assert {as_hex(c) for _, c in colours(bad)} - ALLOWED == {"#1F77B4", "#FF7F0E"}
    assert shape(bad.data[0]) == shape(bad.data[1])
    assert sorted(size for _, size in font_sizes(bad)) == [11, 12]
    assert as_hex(viz.rgba(viz.BLUE, 0.2)) == viz.BLUE and as_hex("white") == viz.WHITE


def test_rgba_refuses_what_is_not_a_hex_colour():
    with pytest.raises(ValueError, match="color = 'blue' is not allowed"):
        viz.rgba("blue", 0.5)
    with pytest.raises(ValueError, match="alpha = 2 is not allowed"):
        viz.rgba(viz.BLUE, 2)
