"""The experiment dashboard: settings, the data split, Run / Step / Stop / Reset, live curves.

``Dashboard(config)`` as the last expression of a cell (or ``display(dash)``)
shows it. Rounds run in a background thread that calls ``Simulation.step()``,
so the kernel stays free while a run goes on; Stop ends it after the current
round and the rounds done so far stay, and stay plotted.

Under the curves, panels that only some runs have: the ε meter (a private
run) and each hospital's own-test-set bars with its verdict (a personalised
run with baselines). Each is built when a run starts, refreshed with the
curves and re-synced with them.

Two ways to draw the learning curves (and the panels):

- a plotly ``FigureWidget`` updated in place (JupyterLab, Notebook 7, Voila);
- a static fallback, a plain ``go.Figure`` redrawn through a display handle
  at most once a second, for front ends where plotly's widget does not load
  (Colab, VS Code). ``FEDLAB_STATIC_PLOTS=1`` forces it, ``=0`` forbids it.

The widget code sticks to APIs shared by ipywidgets 7 (Colab) and 8.
"""

from __future__ import annotations

import contextvars
import html
import math
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable

import ipywidgets as widgets
import plotly.graph_objects as go
from IPython.display import display

from fedlab_core import viz, viz_personal, viz_privacy
from fedlab_core.aggregate import AGGREGATORS
from fedlab_core.config import (ALGORITHMS, DATASETS, MODELS, PARTITIONS, PERSONALISATION,
                                SERVER_OPTIMIZERS, ExperimentConfig)
from fedlab_core.environment import static_plots_chosen
from fedlab_core.history import History
from fedlab_core.ui.common import BackgroundRun, button, describe, error_html, resync, show

__all__ = ["Dashboard", "static_plots_wanted"]

WIDGET_MIN_INTERVAL_S = 0.1   # live FigureWidget: at most ~10 redraws a second
STATIC_MIN_INTERVAL_S = 1.0   # static fallback: at most one redraw a second
RESYNC_EVERY = 5              # rounds between full widget-state re-syncs

# which knob shows for which partition / dataset
_PARTITION_KNOBS = {"data.alpha": "dirichlet", "data.quantity_sigma": "quantity",
                    "data.labels_per_client": "pathological"}
_SYNTHETIC_KNOBS = ("data.covariate_shift", "data.label_shift", "data.size_skew",
                    "data.measurement_bias", "data.label_noise", "data.missing_rate")
# how each generated dataset's own hospitals differ (shown with partition = natural only:
# the other partitions pool the rows, and those differences with them)
_HOSPITAL_KNOBS = {"synthetic": _SYNTHETIC_KNOBS,
                   "scans": ("data.label_shift", "data.size_skew", "data.scanner_shift")}
_GENERATED = ("synthetic", "scans")   # datasets with a number of patients to choose
_IMAGE_SIZES = (8, 16, 24, 32, 48, 64)
_PERSONAL_LABELS = {"none": "none", "finetune": "fine-tune after FL", "fedper": "FedPer (own head)",
                    "fedbn": "FedBN (own batch norm)",
                    "ditto": "Ditto (own model, pulled to global)"}
# which personalisation knob shows for which method
_PERSONAL_KNOBS = {"personal.finetune_epochs": "finetune", "personal.ditto_lambda": "ditto"}
# settings whose control shows 0 for "off" (None in the config)
_OFF_WHEN_ZERO = ("stop.target_accuracy", "stop.patience", "stop.max_epsilon",
                  "privacy.target_epsilon")
_PRIVACY_KNOBS = ("privacy.noise_multiplier", "privacy.clip", "privacy.target_epsilon",
                  "stop.max_epsilon")
_STYLE = {"description_width": "150px"}


def _wide() -> widgets.Layout:
    return widgets.Layout(width="360px")  # one per widget: display is toggled per widget


def _in_colab() -> bool:
    return "google.colab" in sys.modules


def static_plots_wanted() -> bool:
    """Whether to draw static figures instead of a live ``FigureWidget``: see
    ``fedlab_core.environment.static_plots_chosen``, the one copy of the rule that the
    environment check (notebook 00) reports too."""
    return static_plots_chosen()


def _enable_colab_widgets() -> None:
    if not _in_colab():
        return
    try:  # third-party widgets need Colab's custom widget manager
        from google.colab import output  # type: ignore[import-not-found]

        output.enable_custom_widget_manager()
    except Exception:
        pass


def _meter_wanted(history: History) -> bool:
    return (history.privacy is not None
            or (history.config.get("privacy") or {}).get("mechanism", "none") != "none")


def _hospitals_wanted(history: History) -> bool:
    # the verdicts compare with the local-only models, which only baselines train
    return ((history.config.get("personal") or {}).get("method", "none") != "none"
            and bool(history.config.get("baselines", True)))


@dataclass(eq=False)
class _Panel:
    """A figure under the learning curves that only some runs have.

    ``wanted(history)`` says whether this run has it, ``build(history)`` draws
    it, ``update(fig, history)`` refreshes a live one in place. ``box`` holds
    the live widget; in static mode ``handles`` are its display handles.
    """

    css_class: str
    wanted: Callable[[History], bool]
    build: Callable[[History], go.Figure]
    update: Callable[[go.Figure, History], None]
    box: widgets.Box = field(init=False)
    handles: list[Any] = field(default_factory=list)
    figure: go.Figure | None = None

    def __post_init__(self) -> None:
        self.box = widgets.Box(layout=widgets.Layout(width="100%", overflow="auto"))
        self.box.add_class(self.css_class)


class Dashboard(BackgroundRun):
    """Settings, data split, controls and live learning curves for one experiment.

    Parameters
    ----------
    config : the starting settings (default ``ExperimentConfig()``). Settings
        without a control (e.g. stopping rules, ``baselines``) are kept from it.
    static : draw static figures instead of a ``FigureWidget``; ``None``
        decides from ``FEDLAB_STATIC_PLOTS`` and the front end.
    debounce_s : wait this long after the last data-setting change before
        redrawing the data split (``0``: redraw at once).
    round_delay : seconds to pause between rounds of a run, to watch it slowly.
    max_clients : upper end of the hospitals slider.

    Attributes
    ----------
    simulation : the current ``Simulation`` (``None`` before the first Run/Step
        and after Reset).
    figure : the learning-curve figure (a ``FigureWidget``, or a ``go.Figure``
        in static mode).
    partition_figure : the data-split figure.
    meter_figure : the ε meter of a private run, else ``None``.
    hospitals_figure : each hospital's local-only, global and personalised
        accuracy with its verdict (a run with ``personal.method`` set and
        baselines on), else ``None``.
    widget : the root ipywidgets box (what gets displayed).
    error : the last exception of a run, or ``None``.
    """

    def __init__(self, config: ExperimentConfig | None = None, *, static: bool | None = None,
                 debounce_s: float = 0.4, round_delay: float = 0.0, max_clients: int = 20) -> None:
        self._base = config or ExperimentConfig()
        self.static = static_plots_wanted() if static is None else bool(static)
        _enable_colab_widgets()
        self.debounce_s = float(debounce_s)
        self.round_delay = float(round_delay)
        self.simulation = None
        self.error: BaseException | None = None
        self.error_traceback: str | None = None
        self.metric = "accuracy"
        self.figure: go.Figure | None = None
        self.partition_figure: go.Figure = go.Figure()

        self._lock = threading.RLock()      # guards the figures and the simulation swap
        self._timer: threading.Timer | None = None
        self._handles: list[Any] = []       # static mode: display handles (curves)
        # figures under the curves, top to bottom, that only some runs have
        self._panels = {
            "meter": _Panel("fedlab-meter", _meter_wanted, viz_privacy.privacy_meter,
                            viz_privacy.update_privacy_meter),
            "hospitals": _Panel("fedlab-hospitals", _hospitals_wanted, viz_personal.hospital_gains,
                                viz_personal.update_hospital_gains),
        }
        self._partition_handles: list[Any] = []
        self._chart_key = None
        self._last_draw = 0.0
        self._dirty = False
        self._elapsed = 0.0
        self._preview = None                # a Simulation built for the data-split preview
        self._partition_key = None
        self._config_error: str | None = None

        self._build_controls(self._base, max_clients)
        self._build_layout()
        self._on_settings_change(None)
        # the data split and an empty chart are there from the start
        self.refresh_partition()
        self._reset_chart(self._empty_history())

    # ---- building -------------------------------------------------------
    def _build_controls(self, cfg: ExperimentConfig, max_clients: int) -> None:
        d, t, f = cfg.data, cfg.train, cfg.federation

        def slider(cls, value, lo, hi, step, desc, **kw):
            hi = max(hi, value)  # a config value beyond the usual range still fits
            return cls(value=value, min=lo, max=hi, step=step, description=desc,
                       continuous_update=False, style=_STYLE, layout=_wide(), **kw)

        c: dict[str, widgets.Widget] = {}
        c["data.dataset"] = widgets.Dropdown(options=list(DATASETS), value=d.dataset,
                                             description="dataset", style=_STYLE, layout=_wide())
        c["data.n_clients"] = slider(widgets.IntSlider, d.n_clients, 1, max_clients, 1, "hospitals")
        c["data.partition"] = widgets.Dropdown(options=list(PARTITIONS), value=d.partition,
                                               description="partition", style=_STYLE, layout=_wide())
        c["data.alpha"] = widgets.FloatLogSlider(
            value=d.alpha, base=10, min=-2, max=max(2, math.log10(d.alpha)), step=0.1,
            description="alpha (label skew)", continuous_update=False, style=_STYLE,
            layout=_wide(), readout_format=".3g")
        c["data.quantity_sigma"] = slider(widgets.FloatSlider, d.quantity_sigma, 0.0, 5.0, 0.1,
                                          "size spread (sigma)")
        c["data.labels_per_client"] = slider(widgets.IntSlider, d.labels_per_client, 1, 2, 1,
                                             "labels per hospital")
        c["data.n_samples"] = widgets.IntText(value=d.n_samples, description="patients",
                                              style=_STYLE, layout=_wide())
        c["data.image_size"] = widgets.Dropdown(
            options=sorted({*_IMAGE_SIZES, d.image_size}), value=d.image_size,
            description="image size (pixels)", style=_STYLE, layout=_wide())
        for knob, hi in (("covariate_shift", 1.0), ("label_shift", 1.0), ("size_skew", 1.0),
                         ("measurement_bias", 1.0), ("label_noise", 0.5), ("missing_rate", 0.9),
                         ("scanner_shift", 1.0)):
            c[f"data.{knob}"] = slider(widgets.FloatSlider, getattr(d, knob), 0.0, hi, 0.05,
                                       knob.replace("_", " "))
        c["model.name"] = widgets.Dropdown(options=list(MODELS), value=cfg.model.name,
                                           description="model", style=_STYLE, layout=_wide())
        c["train.local_epochs"] = slider(widgets.IntSlider, t.local_epochs, 1, 20, 1,
                                         "local epochs")
        c["train.lr"] = widgets.FloatText(value=t.lr, step=0.01, description="learning rate",
                                          style=_STYLE, layout=_wide())
        c["train.algorithm"] = widgets.Dropdown(options=list(ALGORITHMS), value=t.algorithm,
                                                description="client algorithm", style=_STYLE,
                                                layout=_wide())
        c["train.prox_mu"] = widgets.FloatText(value=t.prox_mu, step=0.01, description="FedProx mu",
                                               style=_STYLE, layout=_wide())
        c["train.batch_size"] = widgets.IntText(value=t.batch_size, description="batch (0 = all)",
                                                style=_STYLE, layout=_wide())
        pc = cfg.personal
        c["personal.method"] = widgets.Dropdown(
            options=[(_PERSONAL_LABELS.get(m, m), m) for m in PERSONALISATION], value=pc.method,
            description="personalisation", style=_STYLE, layout=_wide())
        c["personal.finetune_epochs"] = slider(widgets.IntSlider, pc.finetune_epochs, 1, 20, 1,
                                               "fine-tune epochs")
        # lambda spans decades: 0.001 (nearly local) to 100 (nearly the global model)
        lam = max(pc.ditto_lambda, 1e-3)   # a log slider has no 0 (purely local)
        c["personal.ditto_lambda"] = widgets.FloatLogSlider(
            value=lam, base=10, min=-3, max=max(2, math.log10(lam)), step=0.1,
            description="Ditto lambda (pull)", continuous_update=False, style=_STYLE,
            layout=_wide(), readout_format=".3g")
        # 0 switches a stopping rule off (the config says None)
        c["stop.target_accuracy"] = widgets.FloatText(
            value=cfg.stop.target_accuracy or 0.0, step=0.01, description="target acc. (0 = off)",
            style=_STYLE, layout=_wide())
        c["stop.patience"] = widgets.IntText(value=cfg.stop.patience or 0,
                                             description="patience (0 = off)",
                                             style=_STYLE, layout=_wide())
        c["federation.rounds"] = widgets.IntText(value=f.rounds, description="rounds",
                                                 style=_STYLE, layout=_wide())
        aggregators = list(AGGREGATORS)
        if f.aggregator not in aggregators:
            aggregators.append(f.aggregator)
        c["federation.aggregator"] = widgets.Dropdown(options=aggregators, value=f.aggregator,
                                                      description="aggregator", style=_STYLE,
                                                      layout=_wide())
        c["federation.server_optimizer"] = widgets.Dropdown(
            options=list(SERVER_OPTIMIZERS), value=f.server_optimizer, description="server optimiser",
            style=_STYLE, layout=_wide())
        c["federation.client_fraction"] = slider(widgets.FloatSlider, f.client_fraction, 0.05, 1.0,
                                                 0.05, "client fraction")
        p = cfg.privacy
        c["privacy.mechanism"] = widgets.Dropdown(
            options=[("none", "none"), ("DP-SGD (protects a patient)", "dpsgd"),
                     ("central DP-FedAvg (protects a hospital)", "central"),
                     ("local DP (protects a hospital)", "local")],
            value=p.mechanism, description="privacy", style=_STYLE, layout=_wide())
        c["privacy.noise_multiplier"] = slider(widgets.FloatSlider, p.noise_multiplier, 0.0, 10.0,
                                               0.05, "noise multiplier")
        c["privacy.clip"] = widgets.FloatText(value=p.clip, step=0.1, description="clip norm C",
                                              style=_STYLE, layout=_wide())
        c["privacy.target_epsilon"] = widgets.FloatText(
            value=p.target_epsilon or 0.0, step=0.5, description="target ε (0 = use noise)",
            style=_STYLE, layout=_wide())
        c["stop.max_epsilon"] = widgets.FloatText(
            value=cfg.stop.max_epsilon or 0.0, step=0.5, description="ε budget (0 = off)",
            style=_STYLE, layout=_wide())
        c["secure.protocol"] = widgets.Dropdown(
            options=[("none: the server sees each update", "none"),
                     ("masking (Bonawitz et al.)", "masking"), ("Paillier encryption", "paillier")],
            value=cfg.secure.protocol, description="secure aggregation", style=_STYLE, layout=_wide())
        c["secure.threshold"] = widgets.IntText(value=cfg.secure.threshold,
                                                description="threshold t (0 = ⅔)", style=_STYLE,
                                                layout=_wide())
        c["seed"] = widgets.IntText(value=cfg.seed, description="seed", style=_STYLE, layout=_wide())
        self.controls = c
        for key, w in c.items():
            w.add_class("fedlab-setting")
            w.add_class("fedlab-" + key.replace(".", "-").replace("_", "-"))
            w.observe(self._on_settings_change, names="value")

        self.run_button = button("Run", "play", "success", "fedlab-run",
                                 "run rounds until a stopping rule fires (the kernel stays free)")
        self.step_button = button("Step", "step-forward", "info", "fedlab-step", "run one round")
        self.stop_button = button("Stop", "stop", "danger", "fedlab-stop",
                                  "stop after the current round; the history stays")
        self.reset_button = button("Reset", "refresh", "warning", "fedlab-reset",
                                   "forget this run; the next Run starts from scratch")
        self.stop_button.disabled = True
        self.run_button.on_click(lambda _b: self._guard(self.run))
        self.step_button.on_click(lambda _b: self._guard(self.step))
        self.stop_button.on_click(lambda _b: self._guard(self.stop))
        self.reset_button.on_click(lambda _b: self._guard(self.reset))

        self.metric_dropdown = widgets.Dropdown(
            options=[(viz.METRIC_LABELS[m], m) for m in ("accuracy", "auc", "loss")],
            value="accuracy", description="metric", layout=widgets.Layout(width="220px"))
        self.metric_dropdown.add_class("fedlab-metric")
        self.metric_dropdown.observe(self._on_metric_change, names="value")

        self.progress = widgets.IntProgress(value=0, min=0, max=max(1, f.rounds),
                                            layout=widgets.Layout(width="360px"))
        self.progress.add_class("fedlab-progress")
        self.progress_text = widgets.Label(value=f"round 0 / {f.rounds}")
        self.progress_text.add_class("fedlab-progress-text")
        self.status = widgets.HTML(value="")
        self.status.add_class("fedlab-status")
        self.error_label = widgets.HTML(value="")
        self.error_label.add_class("fedlab-error")
        self.partition_error = widgets.HTML(value="")
        self.partition_error.add_class("fedlab-partition-error")

    def _build_layout(self) -> None:
        c = self.controls

        def section(title, keys):
            return widgets.VBox([widgets.HTML(f"<b>{html.escape(title)}</b>")] + [c[k] for k in keys])

        data_box = section("Data: patients and hospitals",
                           ["data.dataset", "data.n_clients", "data.partition", "data.alpha",
                            "data.quantity_sigma", "data.labels_per_client", "data.n_samples",
                            "data.image_size", *_SYNTHETIC_KNOBS, "data.scanner_shift", "seed"])
        train_box = section("Local training", ["model.name", "train.local_epochs", "train.lr",
                                               "train.batch_size", "train.algorithm",
                                               "train.prox_mu"])
        personal_box = section("Personalisation: what each hospital keeps",
                               ["personal.method", *_PERSONAL_KNOBS])
        server_box = section("Server", ["federation.rounds", "federation.aggregator",
                                        "federation.server_optimizer",
                                        "federation.client_fraction"])
        stop_box = section("Stop early", ["stop.target_accuracy", "stop.patience"])
        privacy_box = section("Privacy", ["privacy.mechanism", *_PRIVACY_KNOBS, "secure.protocol",
                                          "secure.threshold"])
        self._partition_box = widgets.Box(layout=widgets.Layout(width="100%", overflow="auto"))
        self._partition_box.add_class("fedlab-partition")
        self._chart_box = widgets.Box(layout=widgets.Layout(width="100%", overflow="auto"))
        self._chart_box.add_class("fedlab-chart")
        buttons = widgets.HBox([self.run_button, self.step_button, self.stop_button,
                                self.reset_button, self.metric_dropdown])
        progress = widgets.HBox([self.progress, self.progress_text])
        column = widgets.Layout(min_width="380px", margin="0 24px 0 0")
        data_box.layout = column
        parts = [
            # settings, top to bottom as a round reads: data, local training, server
            widgets.HBox([data_box, widgets.VBox([train_box, personal_box, server_box, stop_box,
                                                   privacy_box])],
                         layout=widgets.Layout(flex_flow="row wrap")),
            self.error_label,
            self._partition_box,
            self.partition_error,
            buttons,
            progress,
            self.status,
        ]
        if self.static:
            parts.remove(self._partition_box)  # drawn through a display handle instead
        if not self.static:
            parts += [self._chart_box, *(panel.box for panel in self._panels.values())]
        self.widget = widgets.VBox(parts)
        self.widget.add_class("fedlab-dashboard")

    # ---- display --------------------------------------------------------
    def _ipython_display_(self) -> None:
        # The kernel tags every output with the request it answers. Updates sent
        # later from a button click or the run thread would carry *that* request,
        # and JupyterLab drops display updates whose request is not a cell's. So
        # remember the displaying cell's context and send static updates from it.
        self._display_context = contextvars.copy_context()
        display(self.widget)
        if self.static:
            # plain figures through display handles: no plotly widget needed
            # (and no Output widget, which Colab does not render plotly in)
            # (a plotly figure displays itself through _ipython_display_, which
            # drops display_id: hand IPython its mime bundle instead)
            self._partition_handles.append(
                display(_figure_bundle(self.partition_figure), raw=True, display_id=True))
            self._handles.append(display(_figure_bundle(self.figure), raw=True, display_id=True))
            for panel in self._panels.values():
                panel.handles.append(display(_figure_bundle(panel.figure), raw=True,
                                             display_id=True))

    def _publish(self, handles, fig: go.Figure) -> None:
        """Update static display handles as if from the cell that displayed them."""
        context = getattr(self, "_display_context", None)
        if context is None:
            _update_handles(handles, fig)
        else:
            context.copy().run(_update_handles, handles, fig)

    # ---- settings -------------------------------------------------------
    def _overrides(self) -> dict[str, Any]:
        values = {key: w.value for key, w in self.controls.items()}
        for key in _OFF_WHEN_ZERO:
            if values[key] == 0:
                values[key] = None
        return values

    @property
    def config(self) -> ExperimentConfig:
        """The settings as shown (raises ``ValueError`` naming the field if one is bad)."""
        return self._base.with_overrides(self._overrides())

    def _try_config(self) -> ExperimentConfig | None:
        try:
            cfg = self.config
        except (ValueError, TypeError) as e:
            self._config_error = str(e)
            self._show_error(str(e))
            return None
        self._config_error = None
        return cfg

    def _on_settings_change(self, change) -> None:
        self._update_visibility()
        cfg = self._try_config()
        if cfg is None:
            return
        self._show_error("")
        sim = self.simulation
        if sim is not None and sim.config != cfg and not self.running:
            self._set_status("settings changed: the next Run or Step starts a new simulation")
        elif sim is None and not self.running:
            self._set_status(f"ready: {cfg.data.n_clients} hospitals, {cfg.federation.rounds} "
                             "rounds — press Run or Step")
        if change is not None and (change["owner"] is self.controls["seed"]
                                   or any(change["owner"] is self.controls[k]
                                          for k in self.controls if k.startswith("data."))):
            self._schedule_partition()

    def _update_visibility(self) -> None:
        c = self.controls
        partition, dataset = c["data.partition"].value, c["data.dataset"].value
        for key, wanted in _PARTITION_KNOBS.items():
            show(c[key], partition == wanted)
        hospital_knobs = _HOSPITAL_KNOBS.get(dataset, ()) if partition == "natural" else ()
        for key in {k for knobs in _HOSPITAL_KNOBS.values() for k in knobs}:
            show(c[key], key in hospital_knobs)
        show(c["data.n_samples"], dataset in _GENERATED)
        show(c["data.image_size"], dataset == "scans")
        for key, method in _PERSONAL_KNOBS.items():
            show(c[key], c["personal.method"].value == method)
        show(c["train.prox_mu"], c["train.algorithm"].value == "fedprox")
        for key in _PRIVACY_KNOBS:
            show(c[key], c["privacy.mechanism"].value != "none")
        show(c["secure.threshold"], c["secure.protocol"].value == "masking")

    def _set_settings_enabled(self, enabled: bool) -> None:
        for w in self.controls.values():
            w.disabled = not enabled

    # ---- data split preview ----------------------------------------------
    def _schedule_partition(self) -> None:
        if self.debounce_s <= 0:
            self.refresh_partition()
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer = threading.Timer(self.debounce_s, self._guarded_refresh)
        self._timer.daemon = True
        self._timer.start()

    def _guarded_refresh(self) -> None:
        try:
            self.refresh_partition()
        except Exception as e:  # never let a timer thread die silently
            self.partition_error.value = error_html(f"{type(e).__name__}: {e}")

    def refresh_partition(self, *, force: bool = False) -> None:
        """Rebuild the data split for the current settings and redraw its figure."""
        cfg = self._try_config()
        if cfg is None:
            return
        key = (cfg.data, cfg.seed)
        if key == self._partition_key and not force:
            return
        from fedlab_core.simulation import Simulation

        try:
            sim = Simulation(cfg)
        except Exception as e:
            # a data setting the loader rejects (e.g. too few patients for a
            # partition) reads as text, the last split stays on screen
            self.partition_error.value = error_html(describe(e))
            return
        with self._lock:
            self._preview = sim
        self._show_partition(sim.dataset, key)

    def _show_partition(self, dataset, key) -> None:
        try:
            summary = _summarize(dataset)
            fig = viz.partition_figure(summary)
        except Exception as e:
            self.partition_error.value = error_html(describe(e))
            return
        self.partition_error.value = ""
        self._partition_key = key
        with self._lock:
            self.partition_figure = fig
            if self.static:
                self._publish(self._partition_handles, fig)
            else:
                # a fresh widget carries its whole state: nothing to re-sync later
                fw = self._figure_widget(fig)
                if fw is None:
                    return
                self._show_in(self._partition_box, fw)
                self.partition_figure = fw

    # ---- the chart --------------------------------------------------------
    @staticmethod
    def _show_in(box: widgets.Box, widget) -> None:
        """Show ``widget`` (or nothing) in ``box``, closing the figure widgets it replaces.

        A replaced widget left open stays alive in the kernel, and every page that
        connects later (a reload, Voila) loads it again: anywidget gives each model
        about 2 s, and a page with many leftover plotly widgets missed that and showed
        "model not found" instead of the dashboard."""
        old = box.children
        box.children = () if widget is None else (widget,)
        for w in old:
            if w is not widget:
                w.close()

    def _figure_widget(self, fig: go.Figure):
        try:
            return go.FigureWidget(fig)
        except Exception as e:  # e.g. anywidget missing: fall back to static plots
            self._switch_to_static(e)
            return None

    def _switch_to_static(self, why: BaseException) -> None:
        if self.static:
            return
        self.static = True
        self._show_in(self._chart_box, None)
        self._show_in(self._partition_box, None)
        for panel in self._panels.values():
            self._show_in(panel.box, None)
        self._set_status(f"live plots unavailable ({type(why).__name__}); showing static plots")

    def _empty_history(self) -> History:
        sim = self._preview
        cfg = self._try_config() or self._base
        names = list(sim.history.client_names) if sim is not None else []
        return History(config=cfg.to_dict(), client_names=names)

    def _reset_chart(self, history: History) -> None:
        """Point the chart at ``history``: reuse the widget when the traces match, else rebuild."""
        baselines = bool(history.config.get("baselines", True))
        rounds = (history.config.get("federation") or {}).get("rounds")
        key = (tuple(history.client_names), baselines)
        with self._lock:
            if not self.static and key == self._chart_key and isinstance(self.figure, go.FigureWidget):
                fw = self.figure
                with fw.batch_update():
                    viz.update_learning_curves(fw, history, metric=self.metric, baselines=baselines)
                    viz.set_round_range(fw, rounds)
                self._resync()
            else:
                fig = viz.learning_curves(history, metric=self.metric, baselines=baselines)
                fw = None if self.static else self._figure_widget(fig)
                if fw is not None:
                    self.figure = fw
                    self._show_in(self._chart_box, fw)
                else:
                    self.figure = fig
                    self._publish(self._handles, fig)
                self._chart_key = key
            self._reset_panels(history)
            self._last_draw = time.monotonic()
            self._dirty = False

    # ---- panels under the curves (ε meter, hospitals) ----------------------
    @property
    def meter_figure(self) -> go.Figure | None:
        return self._panels["meter"].figure

    @property
    def hospitals_figure(self) -> go.Figure | None:
        return self._panels["hospitals"].figure

    @property
    def _meter_box(self) -> widgets.Box:
        return self._panels["meter"].box

    @property
    def _hospitals_box(self) -> widgets.Box:
        return self._panels["hospitals"].box

    def _reset_panels(self, history: History) -> None:
        """Fresh panels for a new history: each one this run has, none of the others."""
        for panel in self._panels.values():
            fig = panel.build(history) if panel.wanted(history) else None
            if self.static:
                panel.figure = fig
                self._publish(panel.handles, fig)
                continue
            fw = None if fig is None else self._figure_widget(fig)
            panel.figure = fw
            self._show_in(panel.box, fw)

    def _update_panels(self, history: History) -> None:
        for panel in self._panels.values():
            if panel.figure is None:
                continue
            if self.static:
                panel.figure = panel.build(history)
                self._publish(panel.handles, panel.figure)
            else:
                with panel.figure.batch_update():
                    panel.update(panel.figure, history)

    def _update_chart(self, *, force: bool = False) -> None:
        """Redraw the curves from the simulation's history, at most every so often."""
        sim = self.simulation
        if sim is None:
            return
        now = time.monotonic()
        interval = STATIC_MIN_INTERVAL_S if self.static else WIDGET_MIN_INTERVAL_S
        if not force and now - self._last_draw < interval:
            self._dirty = True
            return
        with self._lock:
            history, baselines = sim.history, sim.config.baselines
            if self.static:
                self.figure = viz.learning_curves(history, metric=self.metric, baselines=baselines)
                self._publish(self._handles, self.figure)
            else:
                with self.figure.batch_update():
                    viz.update_learning_curves(self.figure, history, metric=self.metric,
                                               baselines=baselines)
            self._update_panels(history)
            self._last_draw = time.monotonic()
            self._dirty = False

    def _resync(self) -> None:
        """Copy the live figure's whole state into the synced widget state.

        ``batch_update`` only streams deltas; a view that connects later (page
        reload, saved widget state, Voila) reads the synced state, which plotly
        refreshes on construction and on display only.
        """
        fig = self.figure
        if self.static or not isinstance(fig, go.FigureWidget):
            return
        with self._lock:
            resync(fig)
            for panel in self._panels.values():
                if isinstance(panel.figure, go.FigureWidget):
                    resync(panel.figure)

    def _on_metric_change(self, change) -> None:
        self.metric = change["new"]
        with self._lock:
            if self.static:
                if self.simulation is not None:
                    self._update_chart(force=True)
                else:
                    self._reset_chart(self._empty_history())
                return
            fw = self.figure
            history = self.simulation.history if self.simulation else self._empty_history()
            baselines = self.simulation.config.baselines if self.simulation else None
            with fw.batch_update():
                viz.set_metric_axes(fw, self.metric)
                viz.update_learning_curves(fw, history, metric=self.metric, baselines=baselines)
            self._resync()

    # ---- status ---------------------------------------------------------
    def _show_error(self, text: str) -> None:
        self.error_label.value = error_html(text) if text else ""

    def _set_progress(self, sim, elapsed: float) -> None:
        n = sim.config.federation.rounds
        self.progress.max = max(1, n)
        self.progress.value = min(sim.round, self.progress.max)
        self.progress_text.value = f"round {sim.round} / {n} · {elapsed:.1f} s"

    def _set_running(self, running: bool) -> None:
        self.run_button.disabled = running
        self.step_button.disabled = running
        self.stop_button.disabled = not running
        self._set_settings_enabled(not running)
        self.progress.bar_style = "info" if running else ""

    # ---- actions --------------------------------------------------------
    def _guard(self, action) -> None:
        """Button callbacks: an exception becomes text on the dashboard, not a traceback."""
        try:
            action()
        except Exception as e:
            self._record_error(e)

    def _record_error(self, e: BaseException) -> None:
        self.error = e
        self.error_traceback = traceback.format_exc()
        self._show_error(describe(e))

    def _prepare(self):
        """The simulation to advance: a new one when there is none, the settings
        changed, or the last run ended. Never mixes two configs in one history."""
        cfg = self._try_config()
        if cfg is None:
            self._set_status("fix the setting shown in red first")
            return None
        sim = self.simulation
        if sim is not None and sim.config == cfg and not sim.done:
            return sim
        from fedlab_core.simulation import Simulation

        with self._lock:
            preview = self._preview
        try:
            if preview is not None and preview.config == cfg and preview.round == 0:
                new = preview
            else:
                new = Simulation(cfg)
        except Exception as e:
            self._record_error(e)
            self._set_status("could not start: see the message in red")
            return None
        with self._lock:
            self._preview = None  # used up: the next preview builds its own
            self.simulation = new
            self._elapsed = 0.0
        self.error = None
        self._show_error("")
        if (cfg.data, cfg.seed) != self._partition_key:
            self._show_partition(new.dataset, (cfg.data, cfg.seed))
        self._reset_chart(new.history)
        self._set_progress(new, 0.0)
        return new

    def step(self):
        """Run one round now (in this thread) and redraw; returns its ``RoundRecord``."""
        if self.running:
            return None
        sim = self._prepare()
        if sim is None:
            return None
        t0 = time.perf_counter()
        try:
            rec = sim.step()
        except Exception as e:
            self._record_error(e)
            self._set_status(f"round {sim.round + 1} failed: see the message in red")
            return None
        self._elapsed += time.perf_counter() - t0
        self._set_progress(sim, self._elapsed)
        self._update_chart(force=True)
        self._resync()
        if sim.done:
            self._finish_status(sim)
        else:
            self._set_status(self._round_summary(sim))
        return rec

    def run(self, block: bool = False) -> None:
        """Run rounds in a background thread until a stopping rule fires or Stop.

        ``block=True`` waits for the run to end (for scripts and tests).
        """
        if self.running:
            return
        sim = self._prepare()
        if sim is None:
            return
        self._set_running(True)
        self._set_status(f"running… round {sim.round} / {sim.config.federation.rounds}")
        self._start(self._loop, sim, name="fedlab-run")
        if block:
            self.wait()

    def follow(self, deployment, *, block: bool = False) -> None:
        """Show a Flower deployment's rounds live, from its metrics stream.

        ``deployment`` is a ``fedlab_core.flower.Deployment`` (started or not):
        the dashboard starts it if needed, draws each round as the server
        records it, and stops its processes at the end or on Stop (the rounds
        received stay). ``block=True`` waits for the end (scripts, tests).
        """
        from fedlab_core.flower.deployment import FollowedRun

        if self.running:
            return
        self.error = None
        self._show_error("")
        self._set_running(True)
        n = deployment.config.data.n_clients
        self._set_status(f"starting Flower on this machine: a SuperLink and {n} SuperNodes…")
        run = FollowedRun(deployment)
        with self._lock:
            self.simulation = run   # so that Stop reaches it while Flower starts
            self._elapsed = 0.0
        self._start(self._follow_loop, run, name="fedlab-follow")
        if block:
            self.wait()

    def _follow_loop(self, run, stop_event: threading.Event) -> None:
        try:
            run.start()
        except Exception as e:
            self._record_error(e)
            self._set_status("the deployment did not start: see the message in red", kind="stopped")
            self._set_running(False)
            return
        self._reset_chart(run.history)
        self._set_progress(run, 0.0)
        self._loop(run, stop_event)

    def _loop(self, sim, stop_event: threading.Event) -> None:
        t0 = time.perf_counter()
        elapsed0 = self._elapsed
        n = sim.config.federation.rounds
        try:
            while not sim.done and not stop_event.is_set():
                sim.step()
                elapsed = elapsed0 + time.perf_counter() - t0
                self._set_progress(sim, elapsed)
                self._set_status(f"running… round {sim.round} / {n}")
                self._update_chart()
                if sim.round % RESYNC_EVERY == 0:
                    self._resync()
                if self.round_delay > 0 and not sim.done:
                    stop_event.wait(self.round_delay)
            if stop_event.is_set() and not sim.done:
                # the same words as Simulation.run() uses for request_stop()
                sim.history.stop_reason = f"stopped by user after round {sim.round}"
        except Exception as e:
            self._record_error(e)
            self._set_status(f"round {sim.round + 1} failed: see the message in red",
                             kind="stopped")
        finally:
            self._elapsed = elapsed0 + time.perf_counter() - t0
            try:
                self._set_progress(sim, self._elapsed)
                self._update_chart(force=True)
                self._resync()
                if self.error is None:
                    self._finish_status(sim)
            finally:
                self._set_running(False)

    def _round_summary(self, sim) -> str:
        rec = sim.history.last()
        acc = rec.global_pooled.get("accuracy", math.nan) if rec else math.nan
        privacy = ""
        if rec is not None and rec.epsilon is not None:
            privacy = f", ε spent {rec.epsilon:.3g} (per {sim.privacy.unit}, δ = {sim.privacy.delta:g})"
        return (f"round {sim.round} / {sim.config.federation.rounds}: "
                f"global model accuracy {acc:.3f} on the pooled test set{privacy}")

    def _finish_status(self, sim) -> None:
        reason = sim.history.stop_reason
        if reason is None:
            self._set_status(self._round_summary(sim))
            return
        by_user = reason.startswith("stopped by user")
        more = "press Run to go on, Reset to start over" if by_user else "press Run to start a new run"
        last = sim.history.last()
        if last is not None and last.epsilon is not None and not reason.startswith("privacy budget"):
            reason += f"; ε spent {last.epsilon:.3g} (per {sim.privacy.unit}, δ = {sim.privacy.delta:g})"
        self._set_status(f"{reason} — {more}", kind="stopped" if by_user else "done")
        if not by_user:
            self.progress.bar_style = "success"

    def _running_simulations(self):
        return [self.simulation] if self.simulation is not None else []

    def reset(self) -> None:
        """Stop any run and forget it; the next Run starts a new simulation."""
        if self.running:
            self.stop()
            self.wait(30)
        with self._lock:
            self.simulation = None
            self._elapsed = 0.0
        self.error = None
        self._show_error("")
        if self._preview is None:
            self.refresh_partition(force=True)
        self._reset_chart(self._empty_history())
        cfg = self._try_config()
        n = cfg.federation.rounds if cfg else self.progress.max
        self.progress.value = 0
        self.progress.max = max(1, n)
        self.progress.bar_style = ""
        self.progress_text.value = f"round 0 / {n}"
        if cfg is not None:
            self._set_status("reset: press Run or Step to start a new simulation")


def _figure_bundle(fig: go.Figure | None) -> dict[str, Any]:
    """The figure's mime bundle: plotly's JSON mimetype (JupyterLab, VS Code) plus
    whatever the current plotly renderer adds (e.g. HTML on Colab). No figure: an
    empty output (e.g. the ε meter of a run without privacy)."""
    if fig is None:
        return {"text/plain": ""}
    try:
        bundle = dict(fig._repr_mimebundle_() or {})
    except Exception:
        bundle = {}
    bundle.setdefault("application/vnd.plotly.v1+json", fig.to_plotly_json())
    bundle.setdefault("text/plain", f"<plotly figure: {len(fig.data)} traces>")
    return bundle


def _update_handles(handles, fig: go.Figure) -> None:
    if handles:
        bundle = _figure_bundle(fig)
        for h in handles:
            h.update(bundle, raw=True)


def _summarize(dataset):
    from fedlab_core.heterogeneity import summarize

    return summarize(dataset)
