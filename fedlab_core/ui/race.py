"""The robustness race: several aggregation rules, the same hospitals, the same attackers, live.

``RobustnessRace(config)`` as the last expression of a cell shows it. One
``Simulation`` per rule is built from the same config, seed included, so the
rules see the same patients, the same malicious hospitals and the same
batches; the configs differ only in ``federation.aggregator`` and the robust
rules' knobs. A background thread steps them round-robin (round 1 of every
rule, then round 2, ...), so the lines grow side by side and the kernel stays
free. Stop ends the race after the current round; the histories stay.

A rule that cannot run with the chosen settings (Krum needs K > 2f + 2,
Bulyan K ≥ 4f + 3) is refused when its simulation is built; the race shows
the reason for that rule and the others race on.

The server is told the true number of malicious hospitals: ``n_byzantine = f``
(Krum, Multi-Krum, Bulyan) and a trimmed mean that drops at least f values per
side, ``trim_beta = max(config's trim_beta, (f + 0.5) / K)`` (capped below
0.5): the robust rules' best case. ``cc_tau`` and the other knobs come from
the config.

The widget code sticks to APIs shared by ipywidgets 7 (Colab) and 8.
"""

from __future__ import annotations

import html
import math
import threading
import time
import traceback
from typing import Any, Iterable

import ipywidgets as widgets
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from fedlab_core import viz
from fedlab_core.aggregate import AGGREGATORS
from fedlab_core.config import ATTACKS, ExperimentConfig
from fedlab_core.ui.common import BackgroundRun, button, describe, resync, show

__all__ = ["RobustnessRace", "DEFAULT_RACE", "race_config"]

DEFAULT_RACE = ("fedavg", "fedmedian", "trimmed_mean", "krum", "geometric_median")
RACE_METRICS = ("accuracy", "auc")
WIDGET_MIN_INTERVAL_S = 0.1   # at most ~10 chart redraws a second
RESYNC_EVERY = 5              # rounds between full widget-state re-syncs (page reloads)

# one colour AND one marker symbol per rule (never colour alone); yellow last, weak on white
_COLORS = (viz.BLACK, viz.ORANGE, viz.BLUE, viz.BLUISH_GREEN, viz.VERMILLION, viz.REDDISH_PURPLE,
           viz.SKY_BLUE, viz.YELLOW)
_SYMBOLS = ("circle", "square", "diamond", "triangle-up", "x", "star", "cross", "pentagon",
            "hexagon")
_DASHES = ("solid", "dash", "dot", "dashdot", "longdash", "solid", "dash", "dot", "dashdot")
_STYLE = {"description_width": "150px"}
# the attack knobs each attack reads (others are hidden)
_SCALED = ("sign_flip", "scale")

_RULE_LABELS = {
    "fedavg": "FedAvg", "unweighted_mean": "unweighted mean",
    "fedmedian": "coordinate median", "trimmed_mean": "trimmed mean", "krum": "Krum",
    "multi_krum": "Multi-Krum", "bulyan": "Bulyan", "geometric_median": "geometric median",
    "centered_clipping": "centred clipping",
}


def rule_style(i: int) -> dict[str, str]:
    """Colour, marker symbol and dash of the ``i``-th rule in a race (cycled)."""
    return {"color": _COLORS[i % len(_COLORS)], "symbol": _SYMBOLS[i % len(_SYMBOLS)],
            "dash": _DASHES[i % len(_DASHES)]}


def race_config(base: ExperimentConfig, aggregator: str) -> ExperimentConfig:
    """``base`` with ``aggregator`` and the knobs set for the true number of attackers.

    ``n_byzantine = f`` (the attack's ``n_malicious`` when there is an attack,
    else 0) and ``trim_beta = max(base, (f + 0.5) / K)``, capped at 0.49, so the
    trimmed mean drops at least f values per side whenever it can.

    >>> cfg = ExperimentConfig().with_overrides({"data.n_clients": 10, "attack.name": "sign_flip",
    ...                                          "attack.n_malicious": 2})
    >>> c = race_config(cfg, "krum")
    >>> c.federation.aggregator, c.federation.n_byzantine, c.federation.trim_beta
    ('krum', 2, 0.25)
    """
    K = base.data.n_clients
    f = base.attack.n_malicious if base.attack.name != "none" else 0
    beta = base.federation.trim_beta
    if f > 0:
        beta = min(0.49, max(beta, (f + 0.5) / K))
    return base.with_overrides({"federation.aggregator": aggregator,
                                "federation.n_byzantine": f, "federation.trim_beta": beta})


def _label(name: str) -> str:
    return _RULE_LABELS.get(name, name)


def _nan_min(values: Iterable[float]) -> float:
    vals = [v for v in values if isinstance(v, (int, float)) and not math.isnan(v)]
    return min(vals) if vals else math.nan


def _fmt(x: float, spec: str = ".3f") -> str:
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, spec)


def _bytes(n: float) -> str:
    if n is None or (isinstance(n, float) and math.isnan(n)):
        return "—"
    for unit in ("B", "kB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


class RobustnessRace(BackgroundRun):
    """Aggregation rules side by side under attack, on the same hospitals, live.

    Parameters
    ----------
    config : the shared experiment (default: 10 IID synthetic hospitals, 4 000
        patients, 2 of them sign-flipping ×10, 20 rounds). Its attack and rounds
        are the starting values of the controls; baselines are switched off
        (the race only plots the global model).
    aggregators : the rules checked at the start (default ``DEFAULT_RACE``).
    round_delay : seconds to pause between rounds, to watch the race.
    metric : ``"accuracy"`` or ``"auc"`` (a dropdown switches it).

    Attributes
    ----------
    simulations : ``{rule: Simulation}`` of the current race (rules that could run).
    errors : ``{rule: message}`` for rules that could not run or failed mid-race.
    figure : the ``FigureWidget``: left, the global model on the pooled test set;
        right, the global model at its worst hospital; one line per rule.
    widget : the root ipywidgets box (what gets displayed).
    """

    def __init__(self, config: ExperimentConfig | None = None, *,
                 aggregators: Iterable[str] | None = None, round_delay: float = 0.05,
                 metric: str = "accuracy") -> None:
        if config is None:
            config = ExperimentConfig().with_overrides({
                "data.n_clients": 10, "data.partition": "iid", "data.n_samples": 4000,
                "attack.name": "sign_flip", "attack.n_malicious": 2, "attack.scale": 10.0,
                "federation.rounds": 20})
        self._base = config.with_overrides({"baselines": False})
        if metric not in RACE_METRICS:
            raise ValueError(f"metric = {metric!r} is not allowed: choose one of "
                             f"{', '.join(RACE_METRICS)}")
        chosen = list(DEFAULT_RACE if aggregators is None else aggregators)
        for name in chosen:
            if name not in AGGREGATORS:
                raise ValueError(f"aggregators: {name!r} is not allowed: choose from "
                                 f"{', '.join(AGGREGATORS)}")
        self.round_delay = float(round_delay)
        self.metric = metric
        self.simulations: dict[str, Any] = {}
        self.errors: dict[str, str] = {}
        self.error_traceback: str | None = None
        self._order: list[str] = []          # the rules of the current race, in trace order
        self._race_key = None
        self._lock = threading.RLock()
        self._last_draw = 0.0
        self._elapsed = 0.0
        self._who = ""

        self._build_controls(chosen)
        self._build_figure(chosen)
        self._build_layout()
        self._on_settings_change(None)

    # ---- building -------------------------------------------------------
    def _build_controls(self, chosen: list[str]) -> None:
        cfg = self._base
        K = cfg.data.n_clients
        a = cfg.attack
        self.attack_dropdown = widgets.Dropdown(options=list(ATTACKS), value=a.name,
                                                description="attack", style=_STYLE,
                                                layout=widgets.Layout(width="360px"))
        n_bad = a.n_malicious if a.name != "none" else 0
        self.malicious_slider = widgets.IntSlider(
            value=min(n_bad, max(0, K - 1)), min=0, max=max(0, K - 1), step=1,
            description="malicious hospitals", continuous_update=False, style=_STYLE,
            layout=widgets.Layout(width="360px"))
        self.scale_box = widgets.FloatText(value=a.scale, step=1.0, description="attack scale",
                                           style=_STYLE, layout=widgets.Layout(width="360px"))
        self.noise_box = widgets.FloatText(value=a.noise_std, step=0.5, description="noise sd",
                                           style=_STYLE, layout=widgets.Layout(width="360px"))
        self.rounds_box = widgets.IntText(value=cfg.federation.rounds, description="rounds",
                                          style=_STYLE, layout=widgets.Layout(width="360px"))
        options = [(f"{_label(n)}  ·  {n}" if _label(n) != n else n, n) for n in AGGREGATORS]
        self.rules_select = widgets.SelectMultiple(
            options=options, value=tuple(chosen), rows=len(options), description="",
            layout=widgets.Layout(width="360px"))
        self.metric_dropdown = widgets.Dropdown(
            options=[(viz.METRIC_LABELS[m], m) for m in RACE_METRICS], value=self.metric,
            description="metric", layout=widgets.Layout(width="220px"))
        for w, cls in ((self.attack_dropdown, "fedlab-race-attack"),
                       (self.malicious_slider, "fedlab-race-malicious"),
                       (self.scale_box, "fedlab-race-scale"),
                       (self.noise_box, "fedlab-race-noise"),
                       (self.rounds_box, "fedlab-race-rounds"),
                       (self.rules_select, "fedlab-race-rules"),
                       (self.metric_dropdown, "fedlab-race-metric")):
            w.add_class(cls)
        for w in (self.attack_dropdown, self.malicious_slider, self.scale_box, self.noise_box,
                  self.rounds_box, self.rules_select):
            w.observe(self._on_settings_change, names="value")
        self.metric_dropdown.observe(self._on_metric_change, names="value")

        self.run_button = button("Run", "play", "success", "fedlab-race-run",
                                 "race the chosen rules (the kernel stays free)")
        self.stop_button = button("Stop", "stop", "danger", "fedlab-race-stop",
                                  "stop after the current round; the curves stay")
        self.reset_button = button("Reset", "refresh", "warning", "fedlab-race-reset",
                                   "forget this race; the next Run starts from scratch")
        self.stop_button.disabled = True
        self.run_button.on_click(lambda _b: self._guard(self.run))
        self.stop_button.on_click(lambda _b: self._guard(self.stop))
        self.reset_button.on_click(lambda _b: self._guard(self.reset))

        self.status = widgets.HTML(value="")
        self.status.add_class("fedlab-race-status")
        self.messages = widgets.HTML(value="")
        self.messages.add_class("fedlab-race-messages")
        self.table = widgets.HTML(value="")
        self.table.add_class("fedlab-race-table")

    def _build_figure(self, rules: list[str]) -> None:
        fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.09,
                            subplot_titles=self._panel_titles())
        self.figure = go.FigureWidget(fig)
        self.figure.update_layout(
            template="simple_white", font=viz.FONT, height=420, width=960,
            margin=dict(l=60, r=20, t=50, b=50), hovermode="closest", uirevision="fedlab-race",
            legend=dict(itemwidth=40),
            meta={"fedlab": "robustness_race", "metric": self.metric})
        self.figure.update_xaxes(title_text="round", showgrid=True, gridcolor=viz.GRID_GREY,
                                 zeroline=False)
        self.figure.update_yaxes(showgrid=True, gridcolor=viz.GRID_GREY, zeroline=False,
                                 range=[0, 1.02], autorange=False)
        self._set_traces(rules)

    def _panel_titles(self) -> tuple[str, str]:
        label = viz.METRIC_LABELS[self.metric]
        return (f"global model, pooled test set: {label}",
                f"global model at its worst hospital: {label}")

    def _set_traces(self, rules: list[str], messages: dict[str, str] | None = None) -> None:
        """One line per rule in each panel (same colour, symbol and dash in both)."""
        messages = messages or {}
        traces = []
        for i, name in enumerate(rules):
            st = rule_style(i)
            label = _label(name) + (" (cannot run)" if name in messages else "")
            for panel in (1, 2):
                where = "pooled test set" if panel == 1 else "worst hospital"
                traces.append(go.Scatter(
                    x=[], y=[], name=label, mode="lines+markers", legendgroup=name,
                    showlegend=panel == 1, xaxis="x" if panel == 1 else "x2",
                    yaxis="y" if panel == 1 else "y2",
                    line=dict(color=st["color"], width=3 if panel == 1 else 2, dash=st["dash"]),
                    marker=dict(symbol=st["symbol"], size=8, color=st["color"],
                                line=dict(width=0.5, color="white"), maxdisplayed=25),
                    hovertemplate=f"<b>{html.escape(label)}</b><br>{where}<br>"
                                  "round %{x}: %{y:.3f}<extra></extra>",
                    meta={"rule": name, "panel": panel}))
        with self._lock:
            self.figure.data = ()
            self.figure.add_traces(traces)
            with self.figure.batch_update():
                self._set_round_range()
                self._set_titles()
        self._resync()

    def _set_round_range(self) -> None:
        try:
            n = int(self.rounds_box.value)
        except Exception:
            n = 0
        n = max(n, max((s.round for s in self.simulations.values()), default=0))
        for axis in ("xaxis", "xaxis2"):
            self.figure.layout[axis].update(range=[0, max(1, n) + 0.5], autorange=False)

    def _set_titles(self) -> None:
        titles = self._panel_titles()
        annotations = self.figure.layout.annotations
        for ann, text in zip(annotations, titles):
            ann.text = text
        self.figure.layout.yaxis.title.text = viz.METRIC_LABELS[self.metric]
        self.figure.layout.meta = {"fedlab": "robustness_race", "metric": self.metric}

    def _build_layout(self) -> None:
        settings = widgets.VBox([
            widgets.HTML("<b>The attack</b>"), self.attack_dropdown, self.malicious_slider,
            self.scale_box, self.noise_box, self.rounds_box],
            layout=widgets.Layout(min_width="380px", margin="0 24px 0 0"))
        rules = widgets.VBox([
            widgets.HTML("<b>The rules</b> <span style='color:#555'>(Ctrl- or Shift-click to "
                         "pick several)</span>"), self.rules_select])
        self._chart_box = widgets.Box([self.figure],
                                      layout=widgets.Layout(width="100%", overflow="auto"))
        self._chart_box.add_class("fedlab-race-chart")
        buttons = widgets.HBox([self.run_button, self.stop_button, self.reset_button,
                                self.metric_dropdown])
        self.widget = widgets.VBox([
            widgets.HBox([settings, rules], layout=widgets.Layout(flex_flow="row wrap")),
            buttons, self.status, self.messages, self._chart_box, self.table])
        self.widget.add_class("fedlab-race")

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)

    # ---- settings -------------------------------------------------------
    @property
    def rules(self) -> list[str]:
        """The rules ticked in the list, in the registry's order."""
        return [n for n in AGGREGATORS if n in self.rules_select.value]

    @property
    def config(self) -> ExperimentConfig:
        """The shared settings as shown (raises ``ValueError`` naming the field if one is bad)."""
        attack = self.attack_dropdown.value
        n_bad = int(self.malicious_slider.value)
        return self._base.with_overrides({
            "attack.name": attack, "attack.n_malicious": n_bad,
            "attack.scale": self.scale_box.value, "attack.noise_std": self.noise_box.value,
            "federation.rounds": self.rounds_box.value})

    def configs(self) -> dict[str, ExperimentConfig]:
        """``{rule: its config}`` for the ticked rules (see :func:`race_config`)."""
        cfg = self.config
        return {name: race_config(cfg, name) for name in self.rules}

    def _try_config(self) -> ExperimentConfig | None:
        try:
            cfg = self.config
        except (ValueError, TypeError) as e:
            self._show_messages({"settings": str(e)})
            return None
        return cfg

    def _on_settings_change(self, change) -> None:
        attack = self.attack_dropdown.value
        show(self.scale_box, attack in _SCALED)
        show(self.noise_box, attack == "gaussian")
        show(self.malicious_slider, attack != "none")
        cfg = self._try_config()
        if cfg is None:
            if not self.running:
                self._set_status("fix the setting shown in red first")
            return
        if not self.running:
            if not self.simulations:
                self._show_messages({})
                self._set_status(self._ready_text(cfg))
                if change is not None and change["owner"] in (self.rules_select, self.rounds_box):
                    self._set_traces(self.rules)
            elif change is not None:
                self._set_status("settings changed: the next Run starts a new race")

    def _ready_text(self, cfg: ExperimentConfig) -> str:
        what = ("no attack" if cfg.attack.name == "none"
                else f"{cfg.attack.n_malicious} of {cfg.data.n_clients} hospitals attack "
                     f"({cfg.attack.name})")
        return (f"ready: {len(self.rules)} rules, {cfg.federation.rounds} rounds, {what} — "
                "press Run")

    def _on_metric_change(self, change) -> None:
        self.metric = change["new"]
        with self._lock:
            self._set_titles()
        self._update_chart(force=True)
        self._resync()

    # ---- the race -------------------------------------------------------
    def _guard(self, action) -> None:
        try:
            action()
        except Exception as e:
            self.error_traceback = traceback.format_exc()
            self._show_messages({"error": describe(e)})

    def _prepare(self) -> bool:
        """Build a simulation per rule when there is no race, the settings changed or it ended."""
        cfg = self._try_config()
        if cfg is None:
            return False
        rules = self.rules
        if not rules:
            self._set_status("tick at least one rule to race")
            return False
        key = (cfg, tuple(rules))
        live = [s for s in self.simulations.values() if not s.done]
        if key == self._race_key and live:
            return True   # go on after Stop
        from fedlab_core.simulation import Simulation

        sims, errors = {}, {}
        for name in rules:
            try:
                sims[name] = Simulation(race_config(cfg, name))
            except Exception as e:   # e.g. Krum with too many attackers for K
                errors[name] = describe(e)
        with self._lock:
            self.simulations = sims
            self.errors = errors
            self._who = self._malicious_text(sims)
            self._order = rules
            self._race_key = key
            self._elapsed = 0.0
        self.table.value = ""
        self._set_traces(rules, errors)
        self._show_messages(errors)
        return True

    def run(self, block: bool = False) -> None:
        """Race the ticked rules in a background thread until every one is done or Stop.

        ``block=True`` waits for the race to end (for scripts and tests).
        """
        if self.running:
            return
        if not self._prepare():
            return
        if not self.simulations:
            self._set_status("no rule can run with these settings: see the messages")
            return
        self._set_running(True)
        self._set_status(f"racing…{self._who}")
        self._start(self._loop, name="fedlab-race")
        if block:
            self.wait()

    def _loop(self, stop_event: threading.Event) -> None:
        t0, elapsed0 = time.perf_counter(), self._elapsed
        sims = dict(self.simulations)
        try:
            while not stop_event.is_set():
                live = [(n, s) for n, s in sims.items() if not s.done and n not in self.errors]
                if not live:
                    break
                for name, sim in live:   # round-robin: every rule does this round
                    try:
                        sim.step()
                    except Exception as e:
                        self.errors[name] = f"round {sim.round + 1} failed: {describe(e)}"
                        self.error_traceback = traceback.format_exc()
                        self._show_messages(self.errors)
                rounds = max(s.round for s in sims.values())
                self._set_status(f"racing… round {rounds} / {self.config_rounds()}{self._who}")
                self._update_chart()
                if rounds % RESYNC_EVERY == 0:
                    self._resync()
                if self.round_delay > 0:
                    stop_event.wait(self.round_delay)
            if stop_event.is_set():
                for sim in sims.values():
                    if not sim.done:
                        sim.history.stop_reason = f"stopped by user after round {sim.round}"
        except Exception as e:
            self.error_traceback = traceback.format_exc()
            self._show_messages({**self.errors, "error": describe(e)})
        finally:
            self._elapsed = elapsed0 + time.perf_counter() - t0
            try:
                self._update_chart(force=True)
                self._resync()
                self.table.value = self.summary_html()
                self._finish_status(stop_event.is_set())
            finally:
                self._set_running(False)

    @staticmethod
    def _malicious_text(sims) -> str:
        sim = next(iter(sims.values()), None)
        if sim is None or not sim.history.malicious:
            return ""
        names = [sim.history.client_names[k] for k in sim.history.malicious]
        return f" · malicious: {', '.join(names)} ({sim.config.attack.name})"

    def config_rounds(self) -> int:
        sims = list(self.simulations.values())
        return sims[0].config.federation.rounds if sims else int(self.rounds_box.value)

    def _finish_status(self, stopped: bool) -> None:
        sims = self.simulations
        rounds = max((s.round for s in sims.values()), default=0)
        if stopped and any(not s.done for s in sims.values()):
            self._set_status(f"stopped by user after round {rounds}{self._who} — press Run to "
                             "go on, Reset to start over", kind="stopped")
        else:
            self._set_status(f"done: {rounds} rounds in {self._elapsed:.1f} s{self._who} — change "
                             "a setting and press Run for a new race", kind="done")

    def _running_simulations(self):
        return list(self.simulations.values())

    def reset(self) -> None:
        """Stop any race and forget it; the next Run starts from scratch."""
        if self.running:
            self.stop()
            self.wait(30)
        with self._lock:
            self.simulations = {}
            self.errors = {}
            self._who = ""
            self._race_key = None
            self._elapsed = 0.0
        self.table.value = ""
        self._show_messages({})
        self._set_traces(self.rules)
        cfg = self._try_config()
        if cfg is not None:
            self._set_status("reset: " + self._ready_text(cfg))

    def _set_running(self, running: bool) -> None:
        self.run_button.disabled = running
        self.stop_button.disabled = not running
        for w in (self.attack_dropdown, self.malicious_slider, self.scale_box, self.noise_box,
                  self.rounds_box, self.rules_select):
            w.disabled = running

    # ---- the chart --------------------------------------------------------
    def curves(self, name: str, metric: str | None = None) -> tuple[list[int], list[float],
                                                                        list[float]]:
        """Rounds, the pooled-test-set metric and the worst hospital's metric of one rule."""
        metric = metric or self.metric
        sim = self.simulations.get(name)
        if sim is None:
            return [], [], []
        records = list(sim.history.records)
        x = [r.round for r in records]
        pooled = [r.global_pooled.get(metric, math.nan) for r in records]
        worst = [_nan_min(m.get(metric, math.nan) for m in r.global_clients) for r in records]
        return x, pooled, worst

    def _update_chart(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_draw < WIDGET_MIN_INTERVAL_S:
            return
        with self._lock:
            fig = self.figure
            order = self._order or self.rules
            with fig.batch_update():
                for i, name in enumerate(order):
                    if 2 * i + 1 >= len(fig.data):
                        break
                    x, pooled, worst = self.curves(name)
                    fig.data[2 * i].update(x=x, y=pooled)
                    fig.data[2 * i + 1].update(x=x, y=worst)
                self._set_round_range()
            self._last_draw = time.monotonic()

    def _resync(self) -> None:
        """Copy the live figure's whole state into the synced widget state.

        ``batch_update`` streams deltas only; a view that connects later (page
        reload, saved widget state) reads the synced state, which plotly
        refreshes on construction and on display only.
        """
        with self._lock:
            resync(self.figure)

    # ---- text -------------------------------------------------------------
    def _show_messages(self, messages: dict[str, str]) -> None:
        lines = []
        for name, text in messages.items():
            who = "" if name in ("settings", "error") else f"<b>{html.escape(_label(name))}</b> "
            verb = "" if name in ("settings", "error") else (
                "cannot run: " if "failed" not in text else "")
            lines.append(f'<div style="color:#D55E00"><b>⚠</b> {who}{verb}{html.escape(text)}</div>')
        self.messages.value = "".join(lines)

    def summary(self):
        """One row per rule: final accuracy, AUC, worst hospital, bytes up per round, rounds."""
        import pandas as pd

        rows = []
        for name in self._order or self.rules:
            sim = self.simulations.get(name)
            last = sim.history.last() if sim is not None else None
            if last is None:
                rows.append({"rule": name, "accuracy": math.nan, "auc": math.nan,
                             "worst hospital accuracy": math.nan,
                             "bytes up per round": math.nan, "rounds": 0,
                             "note": self.errors.get(name, "")})
                continue
            comm = sim.history.communication()
            rows.append({
                "rule": name, "accuracy": last.global_pooled.get("accuracy", math.nan),
                "auc": last.global_pooled.get("auc", math.nan),
                "worst hospital accuracy": _nan_min(m.get("accuracy", math.nan)
                                                    for m in last.global_clients),
                "bytes up per round": float(comm["bytes_up"].mean()),
                "rounds": sim.round, "note": self.errors.get(name, "")})
        return pd.DataFrame(rows, columns=["rule", "accuracy", "auc", "worst hospital accuracy",
                                           "bytes up per round", "rounds", "note"])

    def summary_html(self) -> str:
        """The summary as a small HTML table (what the widget shows under the chart)."""
        df = self.summary()
        th = 'style="border-bottom:1px solid #999;padding:4px 10px"'
        head = "<tr>" + "".join(
            f"<th {th}>{h}</th>" for h in ("rule", "accuracy", "AUC", "worst hospital",
                                           "bytes up / round", "rounds")) + "</tr>"
        body = []
        for i, r in enumerate(df.itertuples(index=False)):
            st = rule_style(i)
            swatch = (f'<span style="color:{st["color"]};font-weight:bold">'
                      f'{_SYMBOL_GLYPHS.get(st["symbol"], "●")}</span> ')
            if r.note and r.rounds == 0:
                cells = (f'<td colspan="5" style="color:#D55E00;text-align:left">'
                         f'{html.escape(r.note)}</td>')
            else:
                td = '<td style="text-align:right;padding:2px 10px">'
                cells = (f"{td}{_fmt(r.accuracy)}</td>{td}{_fmt(r.auc)}</td>"
                         f"{td}{_fmt(r[3])}</td>{td}{_bytes(r[4])}</td>{td}{r.rounds}</td>")
            body.append(f'<tr><td style="text-align:left;padding:2px 10px">{swatch}'
                        f"{html.escape(_label(r.rule))}</td>{cells}</tr>")
        style = ("border-collapse:collapse;font-size:13px;margin:4px 0 8px 60px;"
                 "font-family:Arial, Helvetica, sans-serif")
        return (f'<table style="{style}">'
                f'<caption style="text-align:left;font-weight:bold;padding-bottom:4px">'
                f"after the last round (global model, pooled test set; worst hospital: "
                f"accuracy)</caption>"
                f"<thead>{head}</thead><tbody>{''.join(body)}</tbody></table>")


_SYMBOL_GLYPHS = {"circle": "●", "square": "■", "diamond": "◆", "triangle-up": "▲", "x": "✖",
                  "star": "★", "cross": "✚", "pentagon": "⬟", "hexagon": "⬢"}


