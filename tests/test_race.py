"""The robustness race, headless: ipywidgets and plotly's FigureWidget work without a front end."""

import plotly.graph_objects as go
import pytest

from fedlab_core.config import ExperimentConfig
from fedlab_core.ui import RobustnessRace
from fedlab_core.ui.race import DEFAULT_RACE, race_config
from widgetkit import points, wait_for

# the acceptance setting: 10 IID hospitals, 2 of them sign-flipping x10
ACCEPT = ExperimentConfig().with_overrides({
    "data.n_clients": 10, "data.partition": "iid", "data.n_samples": 4000,
    "attack.name": "sign_flip", "attack.n_malicious": 2, "attack.scale": 10.0,
    "federation.rounds": 15})
SMALL = ACCEPT.with_overrides({"data.n_samples": 1000, "federation.rounds": 5})


def test_builds_with_the_default_rules_and_css_classes():
    race = RobustnessRace(round_delay=0)
    assert race.rules == [n for n in ("fedavg", "fedmedian", "trimmed_mean", "krum",
                                      "geometric_median")]
    assert set(race.rules) == set(DEFAULT_RACE)
    assert isinstance(race.figure, go.FigureWidget)
    assert len(race.figure.data) == 2 * len(DEFAULT_RACE)   # pooled + worst hospital per rule
    assert points(race.figure) == [0] * len(race.figure.data)
    assert race.simulations == {}
    for w, cls in [(race.widget, "fedlab-race"), (race.run_button, "fedlab-race-run"),
                   (race.stop_button, "fedlab-race-stop"), (race._chart_box, "fedlab-race-chart"),
                   (race.status, "fedlab-race-status")]:
        assert cls in w._dom_classes
    assert race._chart_box.children == (race.figure,)
    assert "ready" in race.status.value
    # identity is not carried by colour alone: every rule has its own marker symbol
    pooled = race.figure.data[::2]
    assert len({t.marker.symbol for t in pooled}) == len(pooled)
    assert len({t.line.color for t in pooled}) == len(pooled)


def test_three_rules_five_rounds_give_five_points_each():
    race = RobustnessRace(SMALL, aggregators=["fedavg", "fedmedian", "krum"], round_delay=0)
    race.run(block=True)
    assert not race.running
    assert set(race.simulations) == {"fedavg", "fedmedian", "krum"}
    assert points(race.figure) == [5] * 6
    assert all(s.round == 5 for s in race.simulations.values())
    # the synced widget state follows (a page reload would show the points)
    assert [len(d["x"]) for d in race.figure._widget_data] == [5] * 6
    # the left panel is the pooled metric, the right one the worst hospital
    sim = race.simulations["fedavg"]
    assert list(race.figure.data[0].y) == pytest.approx(sim.history.series("global", "accuracy"))
    worst = sim.history.fairness("accuracy")["worst"].tolist()
    assert list(race.figure.data[1].y) == pytest.approx(worst)
    assert "done" in race.status.value
    assert "<table" in race.table.value and "Krum" in race.table.value
    assert "bytes up" in race.table.value
    # the metric dropdown redraws the same points with AUC
    race.metric_dropdown.value = "auc"
    assert list(race.figure.data[0].y) == pytest.approx(sim.history.series("global", "auc"))
    assert points(race.figure) == [5] * 6


def test_same_hospitals_attackers_and_batches_for_every_rule():
    race = RobustnessRace(SMALL, aggregators=["fedavg", "fedmedian"], round_delay=0)
    race.run(block=True)
    a, b = race.simulations["fedavg"], race.simulations["fedmedian"]
    assert a.history.malicious == b.history.malicious and len(a.history.malicious) == 2
    assert a.config.seed == b.config.seed
    assert (a.federation.X_train == b.federation.X_train).all()
    assert a.config.federation.aggregator == "fedavg"
    assert b.config.federation.aggregator == "fedmedian"
    # the configs differ only in the aggregator and its knobs
    da, db = a.config.to_dict(), b.config.to_dict()
    for section in da:
        if section != "federation":
            assert da[section] == db[section]
    knobs = {"aggregator", "n_byzantine", "trim_beta"}
    assert {k for k in da["federation"] if da["federation"][k] != db["federation"][k]} <= knobs


def test_sign_flip_destroys_fedavg_but_not_the_median():
    race = RobustnessRace(ACCEPT, aggregators=["fedavg", "fedmedian", "trimmed_mean"],
                          round_delay=0)
    race.run(block=True)
    table = race.summary().set_index("rule")
    assert table.loc["fedavg", "accuracy"] < table.loc["fedmedian", "accuracy"] - 0.4
    assert table.loc["fedavg", "auc"] < 0.5 < table.loc["fedmedian", "auc"]
    assert table.loc["trimmed_mean", "accuracy"] > 0.8
    assert (table["rounds"] == 15).all()


def test_an_impossible_rule_shows_its_message_and_the_others_race():
    # Bulyan needs K >= 4f + 3 = 11 clients for f = 2; K = 10 here
    race = RobustnessRace(SMALL, aggregators=["fedavg", "bulyan", "fedmedian"], round_delay=0)
    race.run(block=True)
    assert "bulyan" in race.errors and "bulyan" not in race.simulations
    assert "federation.n_byzantine" in race.errors["bulyan"]
    assert "Bulyan" in race.messages.value and "4f + 3" in race.messages.value
    # traces follow the registry's order: fedavg, fedmedian, bulyan
    assert points(race.figure) == [5, 5, 5, 5, 0, 0]
    assert "cannot run" in race.figure.data[4].name
    assert "4f + 3" in race.table.value
    # Krum with 4 attackers out of 10: K > 2f + 2 fails too; the mean still runs
    race.rules_select.value = ("fedavg", "krum")
    race.malicious_slider.value = 4
    race.run(block=True)
    assert set(race.errors) == {"krum"} and set(race.simulations) == {"fedavg"}
    assert "2f + 2" in race.messages.value
    assert points(race.figure) == [5, 5, 0, 0]


def test_a_bad_setting_is_a_message_not_a_crash():
    race = RobustnessRace(SMALL, aggregators=["fedavg"], round_delay=0)
    race.malicious_slider.value = 0           # sign_flip needs at least one attacker
    assert "attack.n_malicious" in race.messages.value
    race.run(block=True)
    assert race.simulations == {}
    race.attack_dropdown.value = "none"       # no attack: fine with 0
    assert race.messages.value == ""
    race.run(block=True)
    assert points(race.figure) == [5, 5]


def test_stop_keeps_the_histories_and_run_goes_on():
    race = RobustnessRace(ACCEPT.with_overrides({"federation.rounds": 200}),
                          aggregators=["fedavg", "fedmedian"], round_delay=0.05)
    race.run(block=False)
    assert race.running
    assert wait_for(lambda: race.simulations and all(
        s.round >= 2 for s in race.simulations.values()))
    race.stop()
    assert race.wait(30)
    rounds = {n: s.round for n, s in race.simulations.items()}
    assert 2 <= min(rounds.values()) < 200
    # round-robin: no rule is more than a round ahead of another
    assert max(rounds.values()) - min(rounds.values()) <= 1
    assert all(len(s.history) == s.round for s in race.simulations.values())
    assert points(race.figure)[0] == rounds["fedavg"]
    assert [len(d["x"]) for d in race.figure._widget_data][0] == rounds["fedavg"]
    assert "stopped by user" in race.status.value
    assert "stopped by user" in race.simulations["fedavg"].history.stop_reason
    assert race.stop_button.disabled and not race.run_button.disabled
    # Run again goes on with the same simulations
    sims = dict(race.simulations)
    race.round_delay = 0
    race.rounds_box.value = 200
    race.run(block=False)
    assert wait_for(lambda: race.simulations["fedavg"].round > rounds["fedavg"])
    race.stop()
    race.wait(30)
    assert race.simulations["fedavg"] is sims["fedavg"]
    race.reset()
    assert race.simulations == {} and points(race.figure) == [0, 0, 0, 0]


def test_race_config_sets_the_knobs_for_the_true_attackers():
    cfg = ACCEPT.with_overrides({"attack.n_malicious": 3})
    c = race_config(cfg, "trimmed_mean")
    assert c.federation.n_byzantine == 3
    assert int(c.federation.trim_beta * 10) >= 3          # drops at least f per side
    none = race_config(cfg.with_overrides({"attack.name": "none"}), "krum")
    assert none.federation.n_byzantine == 0 and none.federation.trim_beta == cfg.federation.trim_beta


def test_unknown_rule_is_refused():
    with pytest.raises(ValueError, match="aggregators"):
        RobustnessRace(SMALL, aggregators=["fedavg", "nope"])
