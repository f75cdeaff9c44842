"""The dashboard's privacy controls and its live ε meter, headless."""

import math

import plotly.graph_objects as go
import pytest

from fedlab_core.config import ExperimentConfig
from fedlab_core.ui import Dashboard
from fedlab_core.ui.dashboard import _figure_bundle

CFG = ExperimentConfig().with_overrides({"data.n_samples": 600, "data.n_clients": 3,
                                         "federation.rounds": 8, "train.batch_size": 32})


@pytest.fixture(autouse=True)
def _widget_mode(monkeypatch):
    monkeypatch.delenv("FEDLAB_STATIC_PLOTS", raising=False)
    monkeypatch.delenv("VSCODE_PID", raising=False)


def test_no_meter_and_no_privacy_knobs_without_a_mechanism():
    dash = Dashboard(CFG, debounce_s=0)
    assert dash.meter_figure is None and dash._meter_box.children == ()
    assert dash.controls["privacy.noise_multiplier"].layout.display == "none"


def test_the_meter_follows_a_dpsgd_run_round_by_round():
    dash = Dashboard(CFG, debounce_s=0)
    dash.controls["privacy.mechanism"].value = "dpsgd"
    dash.controls["privacy.noise_multiplier"].value = 1.5
    dash.controls["stop.max_epsilon"].value = 0.0      # 0 = off
    assert dash.controls["privacy.noise_multiplier"].layout.display != "none"
    assert dash.config.privacy.noise_multiplier == 1.5 and dash.config.stop.max_epsilon is None
    dash.step()
    meter = dash.meter_figure
    assert isinstance(meter, go.FigureWidget) and dash._meter_box.children == (meter,)
    dash.step()
    assert dash.meter_figure is meter                   # updated in place
    history = dash.simulation.history
    assert list(meter.data[1].y) == pytest.approx([r.epsilon for r in history.records])
    assert meter.data[0].value == pytest.approx(history.records[-1].epsilon)
    # one line per hospital, each with its own ε
    assert [list(t.y) for t in meter.data[2:]] == [
        pytest.approx([r.epsilon_clients[k] for r in history.records]) for k in range(3)]
    assert "ε spent" in dash.status.value and "patient record" in dash.status.value
    # the synced state carries the points, for a page reload
    assert len(meter._widget_data[1]["y"]) == 2


def test_the_budget_stops_the_run_and_the_meter_shows_it():
    dash = Dashboard(CFG.with_overrides({"privacy.mechanism": "local", "privacy.noise_multiplier": 3.0,
                                         "stop.max_epsilon": 2.0, "federation.rounds": 50}),
                     debounce_s=0)
    dash.run(block=True)
    history = dash.simulation.history
    assert history.stop_reason.startswith("privacy budget")
    assert history.records[-1].epsilon <= 2.0
    assert dash.meter_figure.layout.meta["budget"] == 2.0
    assert "privacy budget" in dash.status.value


def test_static_mode_draws_the_meter_through_a_display_handle():
    dash = Dashboard(CFG.with_overrides({"privacy.mechanism": "central", "privacy.noise_multiplier": 0.0}),
                     debounce_s=0, static=True)
    dash.step()
    assert isinstance(dash.meter_figure, go.Figure)
    assert dash.simulation.history.records[-1].epsilon == math.inf
    assert "application/vnd.plotly.v1+json" in _figure_bundle(dash.meter_figure)
    assert _figure_bundle(None) == {"text/plain": ""}


def test_secure_aggregation_from_the_dashboard_and_a_refused_combination():
    dash = Dashboard(CFG, debounce_s=0)
    dash.controls["secure.protocol"].value = "masking"
    rec = dash.step()
    assert rec is not None and rec.secure_seconds > 0 and dash.error is None
    dash.controls["federation.aggregator"].value = "krum"
    assert "compare individual updates" in dash.error_label.value
    assert dash.step() is None                      # refused, nothing run
