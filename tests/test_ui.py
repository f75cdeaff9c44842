"""The dashboard, headless: ipywidgets and plotly's FigureWidget work without a front end."""

import plotly.graph_objects as go
import pytest

from fedlab_core import viz
from fedlab_core.config import ExperimentConfig
from fedlab_core.ui import Dashboard, static_plots_wanted
from widgetkit import points, wait_for

PLOTLY_MIME = "application/vnd.plotly.v1+json"

# small and quick: 3 hospitals, 400 patients
CFG = ExperimentConfig().with_overrides({"data.n_samples": 400, "data.n_clients": 3,
                                         "federation.rounds": 20})


@pytest.fixture(autouse=True)
def _widget_mode(monkeypatch):
    monkeypatch.delenv("FEDLAB_STATIC_PLOTS", raising=False)
    monkeypatch.delenv("VSCODE_PID", raising=False)


def make(**kw):
    kw.setdefault("debounce_s", 0)
    return Dashboard(CFG, **kw)


def test_builds_with_every_trace_before_a_run():
    dash = make()
    assert isinstance(dash.figure, go.FigureWidget)
    assert dash.simulation is None
    assert len(dash.figure.data) == len(viz.trace_specs(["a", "b", "c"], baselines=True))
    assert points(dash.figure) == [0] * len(dash.figure.data)
    assert dash._chart_box.children == (dash.figure,)
    # the data split is drawn from the start
    assert isinstance(dash.partition_figure, go.FigureWidget)
    assert list(dash.partition_figure.data[0].y) == ["Hospital A", "Hospital B", "Hospital C"]
    for w, cls in [(dash.run_button, "fedlab-run"), (dash.step_button, "fedlab-step"),
                   (dash.stop_button, "fedlab-stop"), (dash.status, "fedlab-status"),
                   (dash.progress, "fedlab-progress"), (dash._chart_box, "fedlab-chart")]:
        assert cls in w._dom_classes
    assert "ready" in dash.status.value


def test_three_steps_give_three_points():
    dash = make()
    fig = dash.figure
    for _ in range(3):
        rec = dash.step()
        assert rec is not None
    assert dash.simulation.round == 3
    assert dash.figure is fig  # updated in place, not rebuilt
    assert points(fig) == [3] * len(fig.data)
    assert list(fig.data[0].x) == [1, 2, 3]
    assert list(fig.data[0].y) == pytest.approx(dash.simulation.history.series("global", "accuracy"))
    assert dash.progress.value == 3 and dash.progress_text.value.startswith("round 3 / 20")
    # the synced widget state follows (a page reload would show the points)
    assert len(fig._widget_data[0]["x"]) == 3


def test_run_then_stop_keeps_the_history():
    dash = make(round_delay=0.05)
    dash.run(block=False)
    assert dash.running
    assert wait_for(lambda: dash.simulation is not None and dash.simulation.round >= 1)
    dash.stop()
    assert dash.wait(20)
    sim = dash.simulation
    assert 1 <= sim.round < 20 and not sim.done
    assert sim.history.stop_reason.startswith("stopped by user")
    assert "stopped by user" in dash.status.value
    assert points(dash.figure) == [sim.round] * len(dash.figure.data)
    assert len(dash.figure._widget_data[0]["x"]) == sim.round  # re-synced at the end
    assert not dash.run_button.disabled and dash.stop_button.disabled
    # Run again goes on with the same simulation
    n = sim.round
    dash.run(block=True)
    assert dash.simulation is sim and sim.round == 20 and sim.done
    assert "round limit 20 reached" in dash.status.value
    assert points(dash.figure)[0] == 20 > n


def test_stopping_rule_reason_is_shown():
    cfg = CFG.with_overrides({"stop.target_accuracy": 0.5})
    dash = Dashboard(cfg, debounce_s=0)
    dash.run(block=True)
    assert dash.simulation.done
    assert "target accuracy 0.5 reached at round" in dash.status.value


def test_bad_value_shows_the_error_and_does_not_raise():
    dash = make()
    dash.controls["train.lr"].value = -1.0
    assert "train.lr = -1.0 is not allowed" in dash.error_label.value
    dash.run_button.click()  # no exception, no run
    dash.step_button.click()
    assert dash.simulation is None and not dash.running
    dash.controls["federation.rounds"].value = 0
    assert "federation.rounds = 0" in dash.error_label.value or "train.lr" in dash.error_label.value
    dash.controls["train.lr"].value = 0.3
    assert "federation.rounds = 0 is not allowed" in dash.error_label.value
    dash.controls["federation.rounds"].value = 5
    assert dash.error_label.value == ""
    assert dash.step() is not None


def test_data_knobs_show_only_when_relevant_and_refresh_the_split():
    dash = make()
    c = dash.controls
    shown = lambda key: c[key].layout.display != "none"  # noqa: E731
    assert shown("data.covariate_shift") and not shown("data.alpha")
    c["data.partition"].value = "dirichlet"
    assert shown("data.alpha") and not shown("data.covariate_shift")
    assert not shown("data.quantity_sigma") and not shown("data.labels_per_client")
    c["data.partition"].value = "quantity"
    assert shown("data.quantity_sigma") and not shown("data.alpha")
    c["data.n_clients"].value = 5
    assert len(dash.partition_figure.data[0].y) == 5
    # a data setting the loader rejects reads as text; the old split stays
    c["data.dataset"].value = "heart"
    c["data.partition"].value = "natural"
    assert "data.n_clients = 5" in dash.error_label.value


def test_changed_settings_start_a_new_simulation():
    dash = make()
    dash.step()
    first = dash.simulation
    dash.controls["data.n_clients"].value = 4
    assert "new simulation" in dash.status.value
    assert dash.simulation is first  # nothing changes until the next Run/Step
    dash.step()
    assert dash.simulation is not first and dash.simulation.config.data.n_clients == 4
    assert dash.simulation.round == 1
    assert len(dash.figure.data) == len(viz.trace_specs(["a"] * 4, baselines=True))
    assert points(dash.figure) == [1] * len(dash.figure.data)
    # only a training knob changed: same trace layout, the widget is reused and cleared
    fig = dash.figure
    dash.controls["train.lr"].value = 0.2
    dash.step()
    assert dash.figure is fig and dash.simulation.config.train.lr == 0.2
    assert points(fig) == [1] * len(fig.data)


def test_reset_forgets_the_run():
    dash = make()
    dash.step()
    dash.step()
    dash.reset()
    assert dash.simulation is None
    assert points(dash.figure) == [0] * len(dash.figure.data)
    assert dash.progress.value == 0
    dash.step()
    assert dash.simulation.round == 1


def test_metric_dropdown_switches_the_curves():
    dash = make()
    dash.step()
    dash.metric_dropdown.value = "loss"
    assert dash.figure.layout.yaxis.title.text == viz.METRIC_LABELS["loss"]
    assert list(dash.figure.data[0].y) == pytest.approx(dash.simulation.history.series("global", "loss"))


def test_static_fallback_via_env(monkeypatch):
    monkeypatch.setenv("FEDLAB_STATIC_PLOTS", "1")
    assert static_plots_wanted()
    dash = make()
    assert dash.static and type(dash.figure) is go.Figure
    assert dash._chart_box not in dash.widget.children

    class Handle:
        def __init__(self):
            self.figures = []

        def update(self, bundle, raw=False):
            assert raw
            self.figures.append(go.Figure(bundle[PLOTLY_MIME]))

    h = Handle()
    dash._handles.append(h)
    for _ in range(3):
        dash.step()
    assert points(dash.figure) == [3] * len(dash.figure.data)
    assert len(h.figures) == 4 and points(h.figures[-1])[0] == 3  # the new, empty run + 3 rounds
    # a background run redraws at most once a second, plus once at the end
    h.figures.clear()
    dash.run(block=True)
    assert dash.simulation.round == 20
    assert 1 <= len(h.figures) <= 3 and points(h.figures[-1])[0] == 20
    monkeypatch.setenv("FEDLAB_STATIC_PLOTS", "0")
    monkeypatch.setitem(__import__("sys").modules, "google.colab", object())
    assert not static_plots_wanted()
    monkeypatch.delenv("FEDLAB_STATIC_PLOTS")
    assert static_plots_wanted()  # Colab picks static plots by itself


def test_static_display_uses_display_handles(monkeypatch):
    """A plotly figure given to display() drops display_id (it has _ipython_display_):
    the dashboard must hand over a raw mime bundle."""
    shown = []

    class Handle:
        def update(self, obj, raw=False):
            shown.append(("update", obj, raw))

    def fake_display(obj, raw=False, display_id=False):
        shown.append(("display", obj, raw))
        return Handle() if display_id else None

    import fedlab_core.ui.dashboard as mod
    monkeypatch.setattr(mod, "display", fake_display)
    dash = make(static=True)
    dash._ipython_display_()
    assert shown[0] == ("display", dash.widget, False)
    assert [(kind, raw) for kind, _, raw in shown[1:3]] == [("display", True)] * 2
    assert PLOTLY_MIME in shown[1][1] and PLOTLY_MIME in shown[2][1]
    dash.step()
    kind, bundle, raw = shown[-1]
    assert kind == "update" and raw
    assert points(go.Figure(bundle[PLOTLY_MIME]))[0] == 1


def test_stop_early_controls_fire_and_show_the_rule():
    from fedlab_core.config import ExperimentConfig
    from fedlab_core.ui import Dashboard

    dash = Dashboard(ExperimentConfig().with_overrides({"data.n_samples": 400, "federation.rounds": 30}),
                     static=False, debounce_s=0)
    assert dash.config.stop.target_accuracy is None and dash.config.stop.patience is None
    dash.controls["stop.target_accuracy"].value = 0.01
    assert dash.config.stop.target_accuracy == 0.01
    dash.run(block=True)
    assert len(dash.simulation.history) == 1
    assert "target accuracy 0.01 reached at round 1" in dash.status.value


def _open_figure_widgets() -> int:
    from ipywidgets.widgets.widget import _instances

    return sum(isinstance(w, go.FigureWidget) for w in list(_instances.values()))


def test_replaced_figure_widgets_are_closed():
    # every open widget is sent again to a page that connects later (a reload, Voila):
    # leftovers made a reloaded notebook 05 show "model not found" instead of the dashboard
    before = _open_figure_widgets()
    dash = make()
    opened = _open_figure_widgets() - before
    assert opened >= 2   # the learning curves and the data split
    for n in (4, 5, 3):   # each redraws the split; the next step rebuilds the chart
        dash.controls["data.n_clients"].value = n
        dash.step()
    dash.reset()
    dash.step()
    assert _open_figure_widgets() - before == opened
    assert dash.figure.comm is not None and dash.partition_figure.comm is not None
