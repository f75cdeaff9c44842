"""The dashboard's personalisation and scan controls, and its live per-hospital panel, headless."""

import html
import math

import plotly.graph_objects as go
import pytest

from fedlab_core import viz_personal
from fedlab_core.config import PERSONALISATION, ExperimentConfig
from fedlab_core.ui import Dashboard
from fedlab_core.ui.dashboard import _figure_bundle
from widgetkit import points

PLOTLY_MIME = "application/vnd.plotly.v1+json"

# small and quick: 3 hospitals, 400 patients, a few rounds
CFG = ExperimentConfig().with_overrides({"data.n_samples": 400, "data.n_clients": 3,
                                         "federation.rounds": 4})
# scans for the CNN: tiny images, few patients, narrow filters
SCANS = CFG.with_overrides({"data.dataset": "scans", "data.n_samples": 300, "data.image_size": 16,
                            "model.channels": 4, "federation.rounds": 2})


@pytest.fixture(autouse=True)
def _widget_mode(monkeypatch):
    monkeypatch.delenv("FEDLAB_STATIC_PLOTS", raising=False)
    monkeypatch.delenv("VSCODE_PID", raising=False)


def shown(dash, key):
    return dash.controls[key].layout.display != "none"


def error_text(dash):
    return html.unescape(dash.error_label.value)


def test_personal_controls_map_to_the_config_and_show_only_their_own_knob():
    dash = Dashboard(CFG, debounce_s=0)
    c = dash.controls
    method = c["personal.method"]
    assert [value for _, value in method.options] == list(PERSONALISATION)
    labels = dict((value, label) for label, value in method.options)
    assert labels["fedbn"] == "FedBN (own batch norm)"
    assert labels["finetune"] == "fine-tune after FL"
    assert "fedlab-personal-method" in method._dom_classes
    assert dash.config.personal == CFG.personal         # the controls start from the config
    assert not shown(dash, "personal.ditto_lambda") and not shown(dash, "personal.finetune_epochs")

    method.value = "ditto"
    assert shown(dash, "personal.ditto_lambda") and not shown(dash, "personal.finetune_epochs")
    c["personal.ditto_lambda"].value = 1.0
    assert dash.config.personal.method == "ditto" and dash.config.personal.ditto_lambda == 1.0

    method.value = "finetune"
    assert shown(dash, "personal.finetune_epochs") and not shown(dash, "personal.ditto_lambda")
    c["personal.finetune_epochs"].value = 3
    assert dash.config.personal.finetune_epochs == 3
    method.value = "none"
    assert not shown(dash, "personal.ditto_lambda") and not shown(dash, "personal.finetune_epochs")
    assert dash.error_label.value == ""


def test_scans_and_cnn_controls_and_their_knobs():
    dash = Dashboard(CFG, debounce_s=0)
    c = dash.controls
    assert "scans" in [v for v in c["data.dataset"].options]
    assert "cnn" in [v for v in c["model.name"].options]
    assert not shown(dash, "data.scanner_shift") and not shown(dash, "data.image_size")
    assert shown(dash, "data.covariate_shift")
    c["data.dataset"].value = "scans"
    assert shown(dash, "data.scanner_shift") and shown(dash, "data.image_size")
    assert shown(dash, "data.n_samples") and shown(dash, "data.label_shift")
    assert not shown(dash, "data.covariate_shift") and not shown(dash, "data.missing_rate")
    c["data.partition"].value = "iid"          # pooled and re-split: no scanners of their own
    assert not shown(dash, "data.scanner_shift") and shown(dash, "data.image_size")
    c["data.partition"].value = "natural"
    c["data.scanner_shift"].value = 0.8
    assert dash.config.data.scanner_shift == 0.8 and dash.config.data.dataset == "scans"
    c["data.dataset"].value = "synthetic"
    assert not shown(dash, "data.scanner_shift") and shown(dash, "data.covariate_shift")


def test_refused_combinations_show_the_configs_own_words():
    dash = Dashboard(CFG, debounce_s=0)
    c = dash.controls
    c["personal.method"].value = "fedbn"          # logistic regression has no batch norm
    assert "personal.method = 'fedbn' is not allowed" in error_text(dash)
    assert dash.step() is None and dash.simulation is None       # refused, nothing run
    c["personal.method"].value = "fedper"
    assert "personal.method = 'fedper'" in error_text(dash)
    c["personal.method"].value = "none"
    assert dash.error_label.value == ""
    c["model.name"].value = "cnn"                 # a CNN on a table of features
    assert "model.name = 'cnn'" in error_text(dash)
    c["model.name"].value = "logreg"
    assert dash.error_label.value == ""


def test_a_finetune_run_fills_the_hospitals_panel():
    dash = Dashboard(CFG.with_overrides({"personal.method": "finetune"}), debounce_s=0)
    dash.run(block=True)
    assert dash.error is None and dash.simulation.done
    history = dash.simulation.history
    fig = dash.hospitals_figure
    assert isinstance(fig, go.FigureWidget) and dash._hospitals_box.children == (fig,)
    assert "fedlab-hospitals" in dash._hospitals_box._dom_classes
    # under the curves; no ε meter in a run without privacy
    parts = list(dash.widget.children)
    chart, meter, hospitals = (parts.index(b) for b in (dash._chart_box, dash._meter_box,
                                                        dash._hospitals_box))
    assert chart < meter < hospitals
    assert dash.meter_figure is None
    # three bars for every hospital, and a verdict above each
    names = ["Hospital A", "Hospital B", "Hospital C"]
    assert [list(t.x) for t in fig.data] == [names] * 4
    for trace in fig.data[:3]:
        assert all(y is not None and 0 <= y <= 1 for y in trace.y)
    assert all(text for text in fig.data[3].text)
    last = history.records[-1]
    assert list(fig.data[2].y) == pytest.approx([m["accuracy"] for m in last.personal_clients])
    assert list(fig.data[0].y) == pytest.approx([m["accuracy"] for m in last.local_only_clients])
    # re-synced at the end: a page reload shows the bars
    assert list(fig._widget_data[2]["y"]) == pytest.approx(list(fig.data[2].y))
    assert list(fig._widget_data[3]["text"]) == list(fig.data[3].text)

    # step by step: the same widget, updated in place
    dash.controls["federation.rounds"].value = 5
    dash.step()
    fig2 = dash.hospitals_figure
    assert fig2 is not fig and all(y is not None for y in fig2.data[2].y)
    dash.step()
    assert dash.hospitals_figure is fig2
    last = dash.simulation.history.records[-1]
    assert list(fig2.data[2].y) == pytest.approx([m["accuracy"] for m in last.personal_clients])


def test_no_hospitals_panel_without_personalisation_or_baselines():
    dash = Dashboard(CFG, debounce_s=0)
    dash.step()
    assert dash.hospitals_figure is None and dash._hospitals_box.children == ()
    # without baselines there is no local-only model to compare with
    dash = Dashboard(CFG.with_overrides({"personal.method": "finetune", "baselines": False}),
                     debounce_s=0)
    dash.step()
    assert dash.simulation.history.records[-1].personal_clients is not None
    assert dash.hospitals_figure is None and dash._hospitals_box.children == ()


def test_hospitals_panel_goes_with_the_setting_and_with_reset():
    dash = Dashboard(CFG.with_overrides({"personal.method": "ditto"}), debounce_s=0)
    dash.step()
    assert dash.hospitals_figure is not None
    dash.controls["personal.method"].value = "none"
    dash.step()
    assert dash.hospitals_figure is None and dash._hospitals_box.children == ()
    dash.controls["personal.method"].value = "ditto"
    dash.step()
    assert dash.hospitals_figure is not None
    dash.reset()                     # an empty panel for the next run: bars without heights
    assert points(dash.hospitals_figure) == [3] * 4
    assert all(y is None for t in dash.hospitals_figure.data[:3] for y in t.y)


def test_static_mode_draws_the_hospitals_through_a_display_handle(monkeypatch):
    import fedlab_core.ui.dashboard as mod

    class Handle:
        def __init__(self):
            self.updates = []

        def update(self, obj, raw=False):
            assert raw
            self.updates.append(obj)

    handles = []

    def fake_display(obj, raw=False, display_id=False):
        if display_id:
            handles.append(Handle())
            return handles[-1]
        return None

    monkeypatch.setattr(mod, "display", fake_display)
    dash = Dashboard(CFG.with_overrides({"personal.method": "finetune"}), debounce_s=0, static=True)
    dash._ipython_display_()
    assert dash._hospitals_box not in dash.widget.children
    partition, curves, meter, hospitals = handles        # top to bottom
    dash.step()
    assert type(dash.hospitals_figure) is go.Figure
    drawn = go.Figure(hospitals.updates[-1][PLOTLY_MIME])
    assert drawn.layout.meta["fedlab"] == "hospital_gains"
    assert all(y is not None for y in drawn.data[2].y) and all(drawn.data[3].text)
    assert points(go.Figure(curves.updates[-1][PLOTLY_MIME]))[0] == 1
    # no privacy: the ε meter's handle shows an empty output, not a figure
    assert meter.updates and all(obj == {"text/plain": ""} for obj in meter.updates)
    assert PLOTLY_MIME in _figure_bundle(dash.hospitals_figure)


def test_scans_cnn_fedbn_from_the_dashboard():
    dash = Dashboard(SCANS, debounce_s=0)
    c = dash.controls
    assert shown(dash, "data.scanner_shift")
    c["model.name"].value = "cnn"
    c["personal.method"].value = "fedbn"
    assert dash.error_label.value == ""
    cfg = dash.config
    assert (cfg.data.dataset, cfg.model.name, cfg.personal.method) == ("scans", "cnn", "fedbn")
    rec = dash.step()
    assert rec is not None and dash.error is None
    assert rec.personal_clients is not None and len(rec.personal_clients) == 3
    assert all(not math.isnan(m["accuracy"]) for m in rec.personal_clients)
    fig = dash.hospitals_figure
    assert isinstance(fig, go.FigureWidget)
    assert all(y is not None for y in fig.data[2].y)
    # DP-SGD cannot train batch norm: refused with the config's words
    c["privacy.mechanism"].value = "dpsgd"
    assert "privacy.mechanism = 'dpsgd'" in error_text(dash)


def test_viz_update_matches_a_fresh_figure():
    """The panel's in-place update draws what a fresh figure would."""
    dash = Dashboard(CFG.with_overrides({"personal.method": "finetune", "federation.rounds": 2}),
                     debounce_s=0)
    dash.run(block=True)
    fresh = viz_personal.hospital_gains(dash.simulation.history)
    live = dash.hospitals_figure
    for a, b in zip(fresh.data, live.data):
        assert list(a.y) == pytest.approx(list(b.y))
    assert list(fresh.data[3].text) == list(live.data[3].text)
