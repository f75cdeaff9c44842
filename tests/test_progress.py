"""fedlab_core.progress: the line a long notebook cell shows while it computes."""

import pytest

from fedlab_core import progress


class FakeHandle:
    """What IPython's display handle records: the first line, then every update."""

    def __init__(self, lines: list[str]):
        self.lines = lines

    def update(self, bundle, raw):
        assert raw is True
        self.lines.append(bundle["text/plain"])


@pytest.fixture
def shown(monkeypatch):
    lines: list[str] = []
    monkeypatch.setattr(progress, "_in_notebook", lambda: True)

    def display(line):
        lines.append(line)
        return FakeHandle(lines)

    monkeypatch.setattr(progress, "_display", display)
    return lines


def test_outside_a_notebook_it_yields_everything_and_shows_nothing(monkeypatch):
    monkeypatch.setattr(progress, "_display", lambda line: pytest.fail("displayed outside a notebook"))
    assert list(progress.track(iter("abc"), label="letters")) == ["a", "b", "c"]


def test_in_a_notebook_the_line_starts_at_zero_and_ends_with_every_item(shown, monkeypatch):
    monkeypatch.setattr(progress, "MIN_UPDATE_S", 0.0)   # every item redraws
    assert list(progress.track([10, 20, 30], label="runs")) == [10, 20, 30]
    assert shown[0].startswith("runs ░░░") and " 0 / 3 · " in shown[0]
    counts = [int(line.split(" / ")[0].split()[-1]) for line in shown]
    assert counts == [0, 1, 2, 3, 3]   # each item, then the final line
    assert shown[-1].startswith("runs " + "█" * progress.BAR_WIDTH + " 3 / 3 · ")
    assert "stopped" not in shown[-1]


def test_redraws_are_throttled_but_the_last_line_is_exact(shown, monkeypatch):
    monkeypatch.setattr(progress, "MIN_UPDATE_S", 3600.0)
    assert sum(progress.track(range(1000), label="steps")) == sum(range(1000))
    assert len(shown) == 2   # the first line and the final one, nothing between
    assert " 1000 / 1000 · " in shown[-1]


def test_a_loop_that_stops_early_says_how_far_it_got(shown):
    with pytest.raises(RuntimeError, match="hospital 2 failed"):
        for k in progress.track(range(5), label="hospitals"):
            if k == 2:
                raise RuntimeError("hospital 2 failed")
    assert " 2 / 5 · " in shown[-1] and shown[-1].endswith("· stopped")


def test_without_a_length_it_counts(shown):
    assert list(progress.track((k for k in range(3)), label="rounds")) == [0, 1, 2]
    assert shown[-1].startswith("rounds 3 done · ")


def test_the_bar_fills_in_proportion():
    half = progress.progress_line("x", 5, 10, 1.0)
    assert half.count("█") == progress.BAR_WIDTH // 2
    assert half.count("░") == progress.BAR_WIDTH - progress.BAR_WIDTH // 2


def test_a_line_called_with_counts_follows_them_and_closes_at_the_total(shown, monkeypatch):
    monkeypatch.setattr(progress, "MIN_UPDATE_S", 0.0)
    line = progress.ProgressLine("benchmark")
    line(1, 4, "seed 0: centralised")
    line(4, 4, "seed 0: FedAvg")   # done: the final line
    line.close()                   # a second close draws nothing more
    assert [s.split(" · ")[0].split()[-3:] for s in shown[1:]] == [["1", "/", "4"], ["4", "/", "4"]]


def test_a_simulation_run_counts_its_rounds_on_one_line(shown, monkeypatch):
    from fedlab_core.config import ExperimentConfig
    from fedlab_core.simulation import Simulation

    monkeypatch.setattr(progress, "MIN_UPDATE_S", 0.0)
    config = ExperimentConfig().with_overrides({"data.n_samples": 300, "federation.rounds": 3,
                                                "baselines": False})
    Simulation(config).run(progress="FedAvg")
    assert shown[0].startswith("FedAvg: rounds ") and " 0 / 3 · " in shown[0]
    assert " 3 / 3 · " in shown[-1] and "stopped" not in shown[-1]
    shown.clear()
    Simulation(config).run(max_rounds=2, progress="two of three")
    assert " 2 / 2 · " in shown[-1] and "stopped" not in shown[-1]


def test_a_run_a_stopping_rule_ends_early_says_why(shown):
    from fedlab_core.config import ExperimentConfig
    from fedlab_core.simulation import Simulation

    config = ExperimentConfig().with_overrides({"data.n_samples": 300, "federation.rounds": 10,
                                                "baselines": False, "stop.target_accuracy": 0.01})
    history = Simulation(config).run(progress="FedAvg")
    assert len(history) < 10
    assert f" {len(history)} / 10 · " in shown[-1] and shown[-1].endswith(f"· {history.stop_reason}")
