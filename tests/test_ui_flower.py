"""The dashboard following a Flower deployment, headless: live curves from the
deployment's metrics stream, the end of the run, and Stop keeping the rounds."""

import pytest

pytest.importorskip("flwr")

from fedlab_core.config import ExperimentConfig  # noqa: E402
from fedlab_core.ui import Dashboard  # noqa: E402
from flowerkit import InProcessDeployment  # noqa: E402
from widgetkit import points, wait_for  # noqa: E402

CFG = ExperimentConfig().with_overrides({"data.n_samples": 400, "data.n_clients": 3,
                                         "federation.rounds": 3})


@pytest.fixture(autouse=True)
def _widget_mode(monkeypatch):
    monkeypatch.delenv("FEDLAB_STATIC_PLOTS", raising=False)
    monkeypatch.delenv("VSCODE_PID", raising=False)


def test_dashboard_draws_every_round_of_a_followed_deployment(tmp_path):
    dash = Dashboard(CFG, debounce_s=0)
    dep = InProcessDeployment(CFG, folder=tmp_path)
    dash.follow(dep, block=True)
    assert dash.error is None, dash.error_traceback
    run = dash.simulation
    assert run.done and len(run.history) == 3
    # the global model's curve (and each hospital's) has a point per round; no baselines
    names = [t.name for t in dash.figure.data]
    assert max(points(dash.figure)) == 3, names
    assert not any("central" in (n or "").lower() for n in names)
    assert "round limit 3 reached" in dash.status.value
    assert dash.progress.value == 3 and not dash.running


def test_stop_ends_the_deployment_and_keeps_its_rounds(tmp_path):
    dash = Dashboard(CFG.with_overrides({"federation.rounds": 10}), debounce_s=0)
    dep = InProcessDeployment(dash.config, folder=tmp_path, gated=True)
    dash.follow(dep)
    dep.release(2)
    assert wait_for(lambda: dash.simulation.round == 2, 60)
    dash.stop()   # the server is waiting for its third round: Stop must not wait for it
    assert dash.wait(30)
    history = dash.simulation.history
    assert len(history) == 2 and max(points(dash.figure)) == 2
    assert history.stop_reason == "stopped by user after round 2"
    assert not dep._thread.is_alive()           # the deployment was stopped


def test_a_deployment_that_cannot_start_is_reported_on_the_dashboard(tmp_path):
    dash = Dashboard(CFG, debounce_s=0)
    bad = CFG.with_overrides({"attack.name": "sign_flip", "attack.n_malicious": 1})
    from fedlab_core.flower.deployment import Deployment

    with pytest.raises(ValueError, match="attack.name"):
        Deployment(bad, folder=tmp_path)

    class Broken(InProcessDeployment):
        def start(self):
            raise RuntimeError("SuperLink exited with code 1")

    dash.follow(Broken(CFG, folder=tmp_path), block=True)
    assert "SuperLink exited" in dash.error_label.value and not dash.running
