"""Figure builders on a hand-made History: trace order, styles, empty runs."""

import math

import pandas as pd
import plotly.graph_objects as go
import pytest

from fedlab_core import viz
from fedlab_core.history import History, RoundRecord

NAMES = ["Lyon", "Porto", "Graz"]


def _m(acc, auc=None, loss=None):
    return {"accuracy": acc, "auc": acc if auc is None else auc,
            "loss": 1 - acc if loss is None else loss}


def fake_history(n_rounds=4, *, baselines=True, names=NAMES, skip=None):
    """Round r: global pooled accuracy 0.5 + r/100, client k adds k/1000."""
    h = History(config={"baselines": baselines, "federation": {"rounds": 10}},
                client_names=list(names))
    K = len(names)
    for r in range(1, n_rounds + 1):
        base = 0.5 + r / 100
        local = [_m(base + 0.2 + k / 1000) for k in range(K)]
        if skip is not None:
            local[skip] = None  # not sampled this round
        h.append(RoundRecord(
            round=r, participants=[k for k in range(K) if k != skip],
            global_pooled=_m(base),
            global_clients=[_m(base + k / 1000) for k in range(K)],
            local_clients=local,
            local_only_clients=[_m(base + 0.1 + k / 1000) for k in range(K)] if baselines else None,
            local_only_pooled=[_m(base - 0.1 + k / 1000) for k in range(K)] if baselines else None,
            central_pooled=_m(base + 0.05) if baselines else None,
        ))
    return h


@pytest.mark.parametrize("baselines", [True, False])
def test_trace_order_matches_curve_data(baselines):
    h = fake_history(baselines=baselines)
    fig = viz.learning_curves(h)
    data = viz.curve_data(h)
    specs = viz.trace_specs(NAMES, baselines=baselines)
    K = len(NAMES)
    assert len(fig.data) == len(data) == len(specs) == (2 + 4 * K if baselines else 1 + 2 * K)
    for trace, (x, y), spec in zip(fig.data, data, specs):
        assert list(trace.x) == x == [1, 2, 3, 4]
        assert list(trace.y) == pytest.approx(y)
        assert trace.name == spec.name
        assert trace.meta["model"] == spec.model and trace.meta["client"] == spec.client
        # panel 1 is the left subplot (xaxis "x"), panel 2 the right one ("x2")
        assert trace.xaxis == ("x" if spec.panel == 1 else "x2")


def test_values_land_in_the_right_traces():
    h = fake_history(baselines=True)
    data = dict(zip([(s.panel, s.model, s.client) for s in viz.trace_specs(NAMES)],
                    viz.curve_data(h)))
    assert data[(1, "global", None)][1] == pytest.approx([0.51, 0.52, 0.53, 0.54])
    assert data[(1, "central", None)][1] == pytest.approx([0.56, 0.57, 0.58, 0.59])
    assert data[(1, "local_only", 2)][1][0] == pytest.approx(0.51 - 0.1 + 0.002)
    assert data[(2, "global", 1)][1][0] == pytest.approx(0.511)
    assert data[(2, "local", 2)][1][0] == pytest.approx(0.51 + 0.2 + 0.002)
    assert data[(2, "local_only", 0)][1][0] == pytest.approx(0.61)
    loss = dict(zip([(s.panel, s.model, s.client) for s in viz.trace_specs(NAMES)],
                    viz.curve_data(h, "loss")))
    assert loss[(1, "global", None)][1][0] == pytest.approx(0.49)


def test_unsampled_client_is_a_gap():
    h = fake_history(skip=1)
    specs = viz.trace_specs(NAMES)
    i = [(s.panel, s.model, s.client) for s in specs].index((2, "local", 1))
    assert all(math.isnan(v) for v in viz.curve_data(h)[i][1])


def test_empty_history_has_every_trace():
    h = History(config={"baselines": True, "federation": {"rounds": 20}}, client_names=NAMES)
    fig = viz.learning_curves(h)
    assert len(fig.data) == len(viz.trace_specs(NAMES, baselines=True))
    assert all(len(t.x) == 0 for t in fig.data)
    assert list(fig.layout.xaxis.range) == [0, 20.5]
    assert fig.layout.xaxis.title.text == "round"
    assert fig.layout.yaxis.title.text == "accuracy"
    assert fig.to_dict()  # serialises
    no_base = History(config={"baselines": False}, client_names=NAMES)
    assert len(viz.learning_curves(no_base).data) == 1 + 2 * len(NAMES)


def test_hospitals_differ_by_symbol_and_models_by_dash():
    fig = viz.learning_curves(fake_history())
    by_client = {}
    for t in fig.data:
        c = t.meta["client"]
        if c is not None:
            by_client.setdefault(c, set()).add((t.marker.symbol, t.line.color))
    # one symbol (and colour) per hospital, distinct across hospitals
    assert all(len(s) == 1 for s in by_client.values())
    symbols = [next(iter(s))[0] for s in by_client.values()]
    assert len(set(symbols)) == len(NAMES)
    dashes = {t.meta["model"]: t.line.dash for t in fig.data}
    assert len(set(dashes.values())) == len(dashes) == 4
    # the pooled global model is the thickest line
    assert fig.data[0].line.width == max(t.line.width for t in fig.data)
    # legend grouped per hospital
    for t in fig.data:
        if t.meta["client"] is not None:
            assert t.legendgroup == f"h{t.meta['client']}"
            assert t.legendgrouptitle.text == NAMES[t.meta["client"]]


def test_many_hospitals_keep_distinct_symbols():
    names = [f"H{k}" for k in range(12)]
    fig = viz.learning_curves(fake_history(names=names))
    symbols = {t.meta["client"]: t.marker.symbol for t in fig.data if t.meta["client"] is not None}
    assert len(set(symbols.values())) == 12


def test_palette_is_okabe_ito():
    assert set(viz.OKABE_ITO) == {"#000000", "#E69F00", "#56B4E9", "#009E73",
                                  "#F0E442", "#0072B2", "#D55E00", "#CC79A7"}
    assert set(viz.HOSPITAL_COLORS) <= set(viz.OKABE_ITO)
    fig = viz.learning_curves(fake_history(names=[f"H{k}" for k in range(9)]))
    assert {t.line.color for t in fig.data} <= set(viz.OKABE_ITO)
    assert {t.marker.color for t in fig.data} <= set(viz.OKABE_ITO)


@pytest.mark.parametrize("metric", ["accuracy", "auc", "loss"])
def test_metrics_and_menu(metric):
    h = fake_history()
    fig = viz.learning_curves(h, metric=metric, metric_menu=True)
    assert fig.layout.yaxis.title.text == viz.METRIC_LABELS[metric]
    buttons = fig.layout.updatemenus[0].buttons
    assert [b.label for b in buttons] == [viz.METRIC_LABELS[m] for m in ("accuracy", "auc", "loss")]
    assert len(buttons[0].args[0]["y"]) == len(fig.data)
    clip = fig.layout.yaxis.autorangeoptions
    assert fig.layout.yaxis.autorange is True and clip.clipmin == 0
    assert clip.clipmax == (None if metric == "loss" else 1)


def test_bad_metric_names_the_choices():
    with pytest.raises(ValueError, match="metric = 'f1'.*accuracy, auc, loss"):
        viz.curve_data(fake_history(), "f1")


def test_update_in_place_on_a_figure_widget():
    h = History(config={"baselines": True}, client_names=NAMES)
    fw = go.FigureWidget(viz.learning_curves(h))
    h2 = fake_history(3)
    with fw.batch_update():
        viz.update_learning_curves(fw, h2)
    assert [len(t.x) for t in fw.data] == [3] * len(fw.data)
    with pytest.raises(ValueError, match="rebuild"):
        viz.update_learning_curves(fw, fake_history(names=["A"]))


def summary_frame():
    return pd.DataFrame({"name": ["Lyon", "Porto", "Graz"], "n_train": [300, 120, 40],
                         "n_test": [100, 40, 14], "positive_rate": [0.45, 0.5, 0.9],
                         "js_distance": [0.03, 0.01, 0.42]})


def test_partition_figure():
    fig = viz.partition_figure(summary_frame())
    assert [t.name for t in fig.data] == ["train", "test", "positive (disease)", "negative",
                                         "JS distance"]
    assert list(fig.data[0].y) == ["Lyon", "Porto", "Graz"]
    assert list(fig.data[0].x) == [300, 120, 40]
    assert list(fig.data[2].x) == pytest.approx([0.45, 0.5, 0.9])
    assert list(fig.data[3].x) == pytest.approx([0.55, 0.5, 0.1])
    # the odd hospital (largest JS distance) is highlighted
    colors = list(fig.data[4].marker.color)
    assert colors[2] != colors[0] and colors[0] == colors[1]
    assert fig.layout.barmode == "stack"


def test_partition_figure_accepts_aliases_and_names_missing_columns():
    df = summary_frame().rename(columns={"name": "client", "js_distance": "jsd"})
    assert len(viz.partition_figure(df).data) == 5
    with pytest.raises(ValueError, match="positive_rate"):
        viz.partition_figure(summary_frame().drop(columns=["positive_rate"]))


# ---- figures that compare runs, on small real histories -----------------------

from fedlab_core.config import ExperimentConfig  # noqa: E402
from fedlab_core.simulation import Simulation  # noqa: E402

_SMALL = {"data.n_samples": 400, "data.n_clients": 3, "federation.rounds": 3, "baselines": False}


@pytest.fixture(scope="module")
def real_runs():
    """Three 3-round runs: FedAvg, FedAdam, and FedAvg with top-k compression."""
    base = ExperimentConfig().with_overrides(_SMALL)
    overrides = {"FedAvg": {}, "FedAdam": {"federation.server_optimizer": "adam"},
                 "top-k 10 %": {"federation.compression": "topk", "federation.topk_fraction": 0.1}}
    return {name: Simulation(base.with_overrides(o)).run() for name, o in overrides.items()}


def _styles(traces):
    return [(t.line.color, t.marker.symbol, t.line.dash) for t in traces]


def test_compare_runs_pooled_and_worst_hospital(real_runs):
    fig = viz.compare_runs(real_runs)
    names = list(real_runs)
    assert [t.name for t in fig.data] == [n for n in names for _ in (1, 2)]
    for i, (name, h) in enumerate(real_runs.items()):
        pooled, worst = fig.data[2 * i], fig.data[2 * i + 1]
        assert list(pooled.x) == list(worst.x) == [1, 2, 3]
        assert list(pooled.y) == pytest.approx(h.series("global", "accuracy"))
        assert list(worst.y) == pytest.approx(list(h.fairness("accuracy")["worst"]))
        assert pooled.xaxis == "x" and worst.xaxis == "x2"
        # the worst hospital is no better than the mean of the hospitals
        assert all(w <= m + 1e-12 for w, m in zip(worst.y, h.fairness("accuracy")["mean"]))
        # a run keeps its style across panels; the legend shows it once
        assert _styles([pooled]) == _styles([worst])
        assert pooled.showlegend is not False and worst.showlegend is False
    # every run differs from every other by marker and dash, not colour alone
    styles = _styles(fig.data[::2])
    assert len({s[1] for s in styles}) == len({s[2] for s in styles}) == len(names)
    assert {t.line.color for t in fig.data} <= set(viz.OKABE_ITO)
    assert fig.layout.yaxis.title.text == "accuracy"
    assert fig.to_dict()


def test_compare_runs_loss_worst_is_highest(real_runs):
    h = real_runs["FedAvg"]
    fig = viz.compare_runs({"FedAvg": h}, metric="loss")
    assert list(fig.data[1].y) == pytest.approx(list(h.fairness("loss")["best"]))
    assert fig.layout.yaxis.title.text == viz.METRIC_LABELS["loss"]


def test_compare_runs_rejects_bad_input(real_runs):
    with pytest.raises(ValueError, match="metric = 'f1'"):
        viz.compare_runs(real_runs, metric="f1")
    with pytest.raises(ValueError, match="at least one"):
        viz.compare_runs({})


def test_fairness_figure_band_from_worst_to_best(real_runs):
    h = real_runs["FedAvg"]
    fig = viz.fairness_figure(h)
    table = h.fairness("accuracy")
    best, worst, mean = fig.data
    assert [t.meta["series"] for t in fig.data] == ["best", "worst", "mean"]
    assert list(best.y) == pytest.approx(list(table["best"]))
    assert list(worst.y) == pytest.approx(list(table["worst"]))
    assert list(mean.y) == pytest.approx(list(table["mean"]))
    assert worst.fill == "tonexty" and best.fill is None   # the band: worst up to best
    assert all(w <= m <= b for w, m, b in zip(worst.y, mean.y, best.y))
    assert len({t.marker.symbol for t in fig.data}) == 3
    assert len({t.line.dash for t in fig.data}) == 3
    assert {t.line.color for t in fig.data} <= set(viz.OKABE_ITO)


def test_fairness_figure_empty_history():
    fig = viz.fairness_figure(History(config={}, client_names=NAMES))
    assert [len(t.x) for t in fig.data] == [0, 0, 0]


def test_communication_figure_counts_bytes(real_runs):
    from fedlab_core.compression import download_bytes, upload_bytes

    fig = viz.communication_figure(real_runs)
    names = list(real_runs)
    n = len(names)
    assert [t.name for t in fig.data] == [f"{m} · {d}" for m in names for d in ("up", "down")] + names
    K = 3
    for i, (name, h) in enumerate(real_runs.items()):
        up, down, point = fig.data[2 * i], fig.data[2 * i + 1], fig.data[2 * n + i]
        P = Simulation(ExperimentConfig().with_overrides(_SMALL)).theta.numel()
        fc = h.experiment_config().federation
        per_round = K * upload_bytes(fc.compression, P, topk_fraction=fc.topk_fraction)
        assert list(up.y) == [per_round * r for r in (1, 2, 3)]   # cumulative
        assert list(down.y) == [K * download_bytes(P) * r for r in (1, 2, 3)]
        assert list(point.x) == [up.y[-1]]
        assert list(point.y) == pytest.approx([h.last().global_pooled["accuracy"]])
        assert up.xaxis == "x" and point.xaxis == "x2"
        assert point.marker.symbol == up.marker.symbol   # same run, same marker
    # top-k sends fewer bytes up than dense
    totals = {t.meta["run"]: t.meta["total_bytes_up"] for t in fig.data[2 * n:]}
    assert totals["top-k 10 %"] < totals["FedAvg"]
    assert fig.layout.xaxis2.type == "log"
    assert fig.to_dict()


def test_communication_figure_empty_history():
    fig = viz.communication_figure({"dense": History(config={}, client_names=NAMES)})
    assert [len(t.x) for t in fig.data[:2]] == [0, 0]
    assert fig.to_dict()
