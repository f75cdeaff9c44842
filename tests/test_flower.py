"""fedlab on Flower: the adapter's two halves, then real processes on loopback.

The fast tests join ``fedlab_core.flower.server.Server`` to the ClientApp's
handlers directly (Flower's ``RecordDict``s, no network) and check each round
against ``Simulation``. The slow ones start Flower's Deployment Engine for
real: a SuperLink and SuperNodes as processes, TLS, and a clean shutdown.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

flwr = pytest.importorskip("flwr")

from fedlab_core.client import SharedShuffle, epoch_order  # noqa: E402
from fedlab_core.config import ExperimentConfig  # noqa: E402
from fedlab_core.flower import client as node_side  # noqa: E402
from fedlab_core.flower.deployment import Deployment, check_deployable, make_certificates  # noqa: E402
from fedlab_core.flower.server import MetricsStream  # noqa: E402
from fedlab_core.history import History, RoundRecord, json_safe  # noqa: E402
from fedlab_core.simulation import Simulation  # noqa: E402
from flowerkit import server_and_send  # noqa: E402

SMALL = {"data.n_samples": 600, "data.n_clients": 3, "federation.rounds": 3, "baselines": False}


def test_shared_shuffle_is_the_clients_row_of_the_joint_shuffle():
    mask = torch.arange(7).unsqueeze(0) < torch.tensor([7, 4, 6]).unsqueeze(1)
    joint = epoch_order(mask, generator=torch.Generator().manual_seed(3))
    for k, n in enumerate([7, 4, 6]):
        alone = epoch_order(torch.ones(1, n, dtype=torch.bool),
                            generator=SharedShuffle(torch.Generator().manual_seed(3), k, (3, 7)))
        assert alone[0].tolist() == joint[k, :n].tolist()


@pytest.mark.parametrize("overrides", [
    {},
    {"train.batch_size": 16, "train.local_epochs": 2},
    {"train.algorithm": "fedprox", "train.prox_mu": 0.1, "train.batch_size": 32},
    {"train.algorithm": "fednova", "train.batch_size": 8, "data.size_skew": 1.0},
    {"federation.aggregator": "fedmedian", "federation.server_optimizer": "adam",
     "federation.server_lr": 0.1},
    {"federation.client_fraction": 0.5, "data.n_clients": 4, "train.batch_size": 16},
    {"federation.n_regions": 2, "data.n_clients": 4},
    {"privacy.mechanism": "central", "privacy.noise_multiplier": 1.0, "privacy.adaptive_clip": True,
     "privacy.count_noise": 1.0, "train.batch_size": 16},
    {"model.name": "mlp", "model.hidden": 8, "train.batch_size": 16},
], ids=["fedavg-full-batch", "minibatch", "fedprox", "fednova", "median-adam", "sampled",
        "regions", "central-dp", "mlp"])
def test_server_and_nodes_equal_the_simulation_round_by_round(overrides):
    config = check_deployable(ExperimentConfig().with_overrides({**SMALL, **overrides}))
    server, send = server_and_send(config)
    sim = Simulation(config)
    for _ in range(config.federation.rounds):
        got, want = server.train_round(send), sim.step()
        assert got.participants == want.participants
        torch.testing.assert_close(server.theta, sim.theta, rtol=0, atol=1e-5)
        for m in ("accuracy", "loss"):
            assert got.global_pooled[m] == pytest.approx(want.global_pooled[m], abs=1e-5)
        for g, w in zip(got.global_clients, want.global_clients):
            assert g == pytest.approx(w, abs=1e-5, nan_ok=True)
        assert got.train_loss == pytest.approx(want.train_loss, abs=1e-5)
        assert got.epsilon == pytest.approx(want.epsilon)
        assert got.bytes_down == want.bytes_down and got.bytes_up == want.bytes_up
    assert server.done and server.history.stop_reason == sim.history.stop_reason


def test_the_server_never_sees_a_patient_row():
    config = check_deployable(ExperimentConfig().with_overrides(SMALL))
    server, send = server_and_send(config)
    seen = []

    def spy(kind, content):
        replies = send(kind, content)
        seen.extend(replies.values())
        return replies

    server.train_round(spy)
    assert seen
    for reply in seen:
        for record in reply.values():
            if isinstance(record, flwr.app.ArrayRecord):
                # parameters only: one vector the size of the model
                assert [a.size for a in record.to_numpy_ndarrays()] == [server.theta.numel()]
            else:
                assert all(np.ndim(v) == 0 for v in record.values())   # numbers, no arrays


def test_a_hospital_that_does_not_answer_is_dropped_and_the_round_goes_on():
    config = check_deployable(ExperimentConfig().with_overrides(SMALL))
    server, send = server_and_send(config, lose={1})
    record = server.train_round(send)
    assert record.participants == [0, 2] and record.dropped == [1]
    assert "did not answer" in record.note
    assert np.isnan(record.global_clients[1]["accuracy"])   # nor did it evaluate
    assert not np.isnan(record.global_pooled["accuracy"])


def test_pooled_auc_is_left_nan_because_the_server_has_no_test_labels():
    config = check_deployable(ExperimentConfig().with_overrides(SMALL))
    server, send = server_and_send(config)
    assert np.isnan(server.train_round(send).global_pooled["auc"])


@pytest.mark.parametrize("field,value", [
    ("secure.protocol", "masking"), ("attack.name", "sign_flip"),
    ("federation.compression", "topk"), ("personal.method", "finetune"),
    ("federation.dropout_rate", 0.2), ("federation.straggler_rate", 0.2),
    ("privacy.mechanism", "dpsgd"), ("privacy.mechanism", "local"), ("train.algorithm", "scaffold"),
])
def test_what_only_runs_in_process_is_refused_by_name(field, value):
    extra = {"attack.n_malicious": 1} if field == "attack.name" else {}
    config = ExperimentConfig().with_overrides({field: value, **extra})
    with pytest.raises(ValueError, match=rf"{field} = {value!r} is not allowed in a Flower deployment"):
        check_deployable(config)


def test_deployable_config_has_no_baselines():
    assert check_deployable(ExperimentConfig()).baselines is False


def test_missing_flwr_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "flwr", None)   # as if not installed
    with pytest.raises(ImportError, match=r"pip install 'fedlab-core\[flower\]'"):
        Deployment(ExperimentConfig())


def test_cli_deploy_without_flwr_says_what_to_install(monkeypatch, capsys):
    from fedlab_core.cli import main

    monkeypatch.setitem(sys.modules, "flwr", None)
    assert main(["deploy", "--hospitals", "2"]) == 2
    assert "fedlab-core[flower]" in capsys.readouterr().err


def test_a_port_in_use_is_named_and_nothing_is_started(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        dep = Deployment(ExperimentConfig().with_overrides(SMALL), folder=tmp_path, port=port)
        with pytest.raises(ValueError, match=rf"port = {port} \(the SuperLink\) is not allowed: it is already in use"):
            dep.start()
    assert dep.processes == {} and dep.leftover_processes() == []


def test_a_nodes_missing_data_file_is_named(tmp_path):
    with pytest.raises(ValueError, match="data-path = .* there is no such file on this node"):
        node_side.load_partition(tmp_path / "nope.npz")


def test_partition_round_trip(tmp_path):
    from fedlab_core.data import load_dataset

    client = load_dataset(ExperimentConfig().with_overrides(SMALL).data, seed=0).clients[1]
    back = node_side.load_partition(node_side.save_partition(client, tmp_path / "h1" / "data.npz"))
    assert back.name == client.name
    for field in ("X_train", "y_train", "X_test", "y_test"):
        np.testing.assert_array_equal(getattr(back, field), getattr(client, field))


def test_certificates_chain_to_the_runs_authority(tmp_path):
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec

    paths = make_certificates(tmp_path)
    ca = x509.load_pem_x509_certificate(paths["ca"].read_bytes())
    cert = x509.load_pem_x509_certificate(paths["cert"].read_bytes())
    ca.public_key().verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(cert.signature_hash_algorithm))
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert ipaddress.ip_address("127.0.0.1") in names.get_values_for_type(x509.IPAddress)
    assert oct(paths["key"].stat().st_mode & 0o777) == "0o600"


def test_the_metrics_stream_is_read_in_whole_lines(tmp_path):
    config = ExperimentConfig().with_overrides(SMALL)
    dep = Deployment(config, folder=tmp_path)
    stream = MetricsStream(str(tmp_path / "server"))
    server, send = server_and_send(check_deployable(config))
    header = server.history.to_dict()
    header.pop("records")
    stream.write("start", header)
    record = server.train_round(send)
    line = json.dumps({"kind": "round", **json_safe(record.to_dict())})
    with stream.path.open("a") as f:
        f.write(line[:40])                       # the server is half-way through a line
    assert dep.poll() == [] and len(dep.history) == 0
    with stream.path.open("a") as f:
        f.write(line[40:] + "\n")
    (got,) = dep.poll()
    assert isinstance(got, RoundRecord) and got.round == 1
    assert got.global_clients == record.global_clients
    stream.write("end", {"stop_reason": "done"})
    dep.poll()
    assert dep.finished and dep.history.stop_reason == "done"


def test_waiting_for_the_server_ends_when_it_fails_or_times_out(tmp_path):
    # a server that fails before round 1 never writes its "start" line: waiting for it
    # must end with the server's own words, not run into the timeout
    dep = Deployment(ExperimentConfig().with_overrides(SMALL), folder=tmp_path)
    with pytest.raises(TimeoutError, match="did not hear from every hospital within 0.3 s"):
        dep.wait_for_server(timeout=0.3)
    MetricsStream(str(tmp_path / "server")).write(
        "error", {"error": "RuntimeError: the nodes report partitions [1]"})
    t0 = time.monotonic()
    with pytest.raises(RuntimeError, match=r"ServerApp failed: RuntimeError: the nodes report partitions \[1\]"):
        dep.wait_for_server(timeout=60)
    assert time.monotonic() - t0 < 5
    with pytest.raises(RuntimeError, match="ServerApp failed"):
        dep.wait(timeout=60)


# ---- real processes on loopback ----------------------------------------------------
def _no_flower_processes_of(dep: Deployment) -> None:
    assert dep.leftover_processes() == []
    for name, proc in dep.processes.items():
        assert proc.poll() is not None, f"{name} is still running"


@pytest.mark.slow
def test_deployment_over_tls_equals_the_simulation_and_leaves_nothing_running(tmp_path):
    config = ExperimentConfig().with_overrides({**SMALL, "train.batch_size": 16,
                                                "train.algorithm": "fedprox"})
    dep = Deployment(config, folder=tmp_path, tls=True, save_models=True, round_timeout=60)
    rounds = []
    history = dep.run(timeout=240, on_round=rounds.append)
    _no_flower_processes_of(dep)
    assert [r.round for r in rounds] == [1, 2, 3] and history.stop_reason == "round limit 3 reached"

    sim = Simulation(dep.config)
    for r in range(1, 4):
        want = sim.step()
        theta = torch.from_numpy(np.load(tmp_path / "server" / f"global_round_{r:04d}.npy"))
        assert float((theta - sim.theta).abs().max()) <= 1e-5
        assert history.records[r - 1].global_pooled["accuracy"] == pytest.approx(
            want.global_pooled["accuracy"], abs=1e-6)

    # each hospital's rows are in its own folder only; the server's folder holds none
    for k in range(3):
        assert (tmp_path / f"hospital-{k}" / "data.npz").is_file()
    assert not list((tmp_path / "server").glob("*.npz"))
    # the nodes really spoke TLS to the SuperLink, with the run's certificate authority
    node_args = dep.processes["hospital-0"].args
    assert "--root-certificates" in node_args and "--insecure" not in node_args


@pytest.mark.slow
def test_cli_deploy_runs_and_stops_everything(tmp_path):
    out = tmp_path / "run"
    done = subprocess.run([sys.executable, "-m", "fedlab_core.cli", "deploy", "--hospitals", "2",
                           "--set", "federation.rounds=2", "--set", "data.n_samples=300",
                           "--out", str(out), "--timeout", "180"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "none left running" in done.stdout
    assert "round limit 2 reached" in done.stdout
    history = History.load(out / "history.json")
    assert len(history) == 2 and history.config["baselines"] is False
