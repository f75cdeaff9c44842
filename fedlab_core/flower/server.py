"""fedlab's Flower ``ServerApp``: the server's half of ``Simulation``.

The server samples hospitals, sends them the global model, aggregates their
parameters with fedlab's rules (``fedlab_core.aggregate``), takes the
server-optimiser step, adds central DP noise and keeps its ledger, evaluates
the new model on every hospital's test set (through the hospitals), and
stops by the config's rules. It knows each hospital's counts, never its rows.

It draws from the same named random streams as ``Simulation``
(``seed_streams``), so with full participation a deployed run equals the
simulation number for number (tests/test_flower.py: within 1e-5 in float32).

Run config (``[tool.flwr.app.config]``, written by ``Deployment``):
``fedlab-config`` (the experiment as JSON), ``fedlab-hospitals`` (how many
nodes to wait for), ``fedlab-out`` (a folder on the server's machine for the
metrics stream ``history.jsonl`` and the models), ``fedlab-save-models``,
``fedlab-round-timeout`` and ``fedlab-node-timeout`` (seconds).
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import torch
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, RecordDict
from flwr.serverapp import Grid, ServerApp

from fedlab_core.aggregate import aggregator_kwargs, get_aggregator
from fedlab_core.compression import download_bytes
from fedlab_core.config import ExperimentConfig
from fedlab_core.hierarchy import assign_regions, hierarchical
from fedlab_core.history import History, RoundRecord, json_safe
from fedlab_core.models import make_model
from fedlab_core.participation import sample_fixed, sample_poisson
from fedlab_core.privacy.mechanisms import adaptive_clip, dp_fedavg
from fedlab_core.server_opt import make_server_optimizer
from fedlab_core.simulation import seed_streams, torch_generator
from fedlab_core.stopping import check_stop

server_app = ServerApp()

Tensor = torch.Tensor


class Server:
    """The server's half of ``Simulation``: sampling, aggregation, the server
    optimiser, central DP and its ledger, stopping. It knows each hospital's
    counts (from the query round), never its rows.

    ``train_round(send)`` and ``evaluate(send)`` take a function that delivers
    messages to hospitals by index and returns their replies by index (Flower's
    grid in ``main``; a direct call in the tests).
    """

    def __init__(self, config: ExperimentConfig, *, n_train: list[int], n_test: list[int],
                 names: list[str], n_features: int) -> None:
        self.config = config
        streams = seed_streams(config.seed)
        dtype = getattr(torch, config.dtype)
        self.n_train = torch.tensor(n_train)
        self.n_test = torch.tensor(n_test)
        self.K = len(n_train)
        self.model = make_model(config.model.name, n_features=n_features,
                                hidden=config.model.hidden, channels=config.model.channels)
        self.theta = self.model.init(torch_generator(streams["init"]), dtype)
        self.aggregator = get_aggregator(config.federation.aggregator)
        self.aggregator_kwargs = aggregator_kwargs(config.federation.aggregator, config.federation)
        self.server_opt = make_server_optimizer(config.federation)
        self.server_state = self.server_opt.init(self.theta)
        self.regions = (assign_regions(self.K, config.federation.n_regions)
                        if config.federation.n_regions else None)
        self._sample_rng = np.random.default_rng(streams["sample"])
        self._batch_gen = torch_generator(streams["batch"])
        self._privacy_gen = torch_generator(streams["privacy"])
        self.privacy = None
        if config.privacy.mechanism != "none":
            from fedlab_core.privacy.budget import plan_privacy

            self.privacy = plan_privacy(config, n_train=self.n_train)
        self.history = History(config=config.to_dict(), client_names=list(names),
                               privacy=None if self.privacy is None else self.privacy.summary(),
                               client_test_sizes=list(n_test))
        self.done = False

    def _sample(self) -> np.ndarray:
        fc = self.config.federation
        draw = sample_poisson if fc.sampling == "poisson" else sample_fixed
        return draw(self.K, fraction=fc.client_fraction, rng=self._sample_rng)

    def _shuffle_plan(self, m: int) -> tuple[bytes, int]:
        """The batch generator's state before this round, advanced past the keys that
        ``local_train`` draws for ``m`` clients (one ``(m, n_max)`` draw per epoch)."""
        tc, width = self.config.train, int(self.n_train.max())
        state = bytes(self._batch_gen.get_state().numpy())
        if 0 < tc.batch_size < width:
            for _ in range(tc.local_epochs):
                torch.rand((m, width), generator=self._batch_gen)
        return state, width

    def train_round(self, send) -> RoundRecord:
        """Sample, train remotely, aggregate, step; then evaluate and record."""
        start = time.perf_counter()
        K = self.K
        sampled = self._sample()
        record = RoundRecord(round=len(self.history) + 1, participants=[], global_pooled={},
                             global_clients=[], local_clients=[None] * K,
                             bytes_up=[0] * K, bytes_down=[0] * K)
        if len(sampled):
            state, width = self._shuffle_plan(len(sampled))
            content = {int(k): RecordDict({
                "theta": ArrayRecord([self.theta.numpy()]),
                "train": ConfigRecord({"round": record.round, "row": i, "rows": len(sampled),
                                       "width": width, "shuffle": state})})
                for i, k in enumerate(sampled.tolist())}
            replies = send("train", content)
            for k in sampled.tolist():
                record.bytes_down[k] = download_bytes(self.theta.numel())
            arrived = np.array(sorted(k for k in replies), dtype=np.int64)
            record.dropped = sorted(set(sampled.tolist()) - set(arrived.tolist()))
            record.participants = arrived.tolist()
            if record.dropped:
                record.note = (f"{len(record.dropped)} hospital(s) did not answer in time: "
                               "the server aggregated the others")
            if len(arrived):
                self._aggregate(arrived, replies, record)
        if self.privacy is not None:
            if not record.participants and self.privacy.mechanism == "central":
                self._central_dp(torch.zeros(0, self.theta.numel(), dtype=self.theta.dtype), record)
            self.privacy.ledger.spend(np.ones(1, dtype=np.int64))
            record.epsilon = float(self.privacy.ledger.epsilons().max())
        self.evaluate(send, record)
        record.seconds = time.perf_counter() - start
        self.history.append(record)
        self._check_stop(record)
        return record

    def _aggregate(self, arrived: np.ndarray, replies: dict, record: RoundRecord) -> None:
        tc = self.config.train
        dtype = self.theta.dtype
        local = torch.stack([torch.from_numpy(replies[k]["theta"].to_numpy_ndarrays()[0].copy())
                             for k in arrived.tolist()]).to(dtype)
        metrics = [replies[k]["train"] for k in arrived.tolist()]
        weights = torch.tensor([m["n-train"] for m in metrics], dtype=dtype)
        losses = torch.tensor([m["loss"] for m in metrics], dtype=dtype)
        record.train_loss = float((losses * weights).sum() / weights.sum())
        for k, m in zip(arrived.tolist(), metrics):
            record.local_clients[k] = {name: float(m[f"local-{name}"]) for name in ("accuracy", "auc", "loss")}
            record.bytes_up[k] = download_bytes(self.theta.numel())
        deltas = local - self.theta
        scale = 1.0
        if tc.algorithm == "fednova":   # as in Simulation: average Delta_k / tau_k, take tau_eff steps
            tau = torch.tensor([m["steps"] for m in metrics], dtype=dtype)
            p = weights / weights.sum()
            deltas, scale = deltas / tau.unsqueeze(1), float(p @ tau)
        if self.privacy is not None and self.privacy.mechanism == "central":
            self._central_dp(deltas, record)
            return
        try:
            if self.regions is None:
                aggregate = self.aggregator(deltas, weights, **self.aggregator_kwargs)
            else:
                aggregate = hierarchical(deltas, weights, self.regions[torch.as_tensor(arrived)],
                                         self.aggregator, **self.aggregator_kwargs)
        except ValueError as err:
            record.note = f"the server kept the model unchanged: {err}"
            return
        self.theta, self.server_state = self.server_opt.step(self.theta, scale * aggregate,
                                                             self.server_state)

    def _central_dp(self, deltas: Tensor, record: RoundRecord) -> None:
        """DP-FedAvg at the server, as ``Simulation._central_dp_step``."""
        plan, p = self.privacy, self.config.privacy
        record.clip = plan.clip
        aggregate = dp_fedavg(deltas, clip=plan.clip, noise_multiplier=plan.update_noise_multiplier,
                              expected_clients=plan.expected_clients, generator=self._privacy_gen)
        if p.adaptive_clip:
            plan.clip = adaptive_clip(plan.clip, norms=torch.linalg.vector_norm(deltas, dim=1),
                                      expected_clients=plan.expected_clients,
                                      target_quantile=p.target_quantile, lr=p.clip_lr,
                                      count_noise=plan.count_noise, generator=self._privacy_gen)
        self.theta, self.server_state = self.server_opt.step(self.theta, aggregate, self.server_state)

    def evaluate(self, send, record: RoundRecord) -> None:
        """The new global model on every hospital's test set. The pooled accuracy and
        loss are the test-size-weighted means; the pooled AUC would need every
        hospital's test labels at the server, so a deployment leaves it nan."""
        payload = RecordDict({"theta": ArrayRecord([self.theta.numpy()])})
        replies = send("evaluate", {k: payload for k in range(self.K)})
        nan = {"accuracy": math.nan, "auc": math.nan, "loss": math.nan}
        record.global_clients = [
            {m: float(replies[k]["metrics"][m]) for m in nan} if k in replies else dict(nan)
            for k in range(self.K)]
        seen = [k for k in range(self.K) if k in replies]
        n = np.array([self.n_test[k].item() for k in seen], dtype=float)
        record.global_pooled = dict(nan)
        if seen and n.sum() > 0:
            for m in ("accuracy", "loss"):
                record.global_pooled[m] = float(np.dot(n, [record.global_clients[k][m] for k in seen]) / n.sum())

    def _check_stop(self, record: RoundRecord) -> None:
        epsilon_next = (self.privacy.epsilon_next_round()
                        if self.privacy is not None and self.config.stop.max_epsilon is not None else None)
        reason = check_stop(self.history.series("global", "accuracy"),
                            self.history.series("global", "loss"), self.config.stop,
                            round=len(self.history), max_rounds=self.config.federation.rounds,
                            epsilon_next=epsilon_next, epsilon_now=record.epsilon)
        if reason:
            record.stop_reason = self.history.stop_reason = reason
            self.done = True


# ---- the ServerApp --------------------------------------------------------
class MetricsStream:
    """``history.jsonl`` in the server's output folder: a header line (the History
    without records), then one line per round, then an ``end`` line. Anyone who
    can read the folder can follow the run (``fedlab_core.flower.follow``)."""

    def __init__(self, folder: str | None) -> None:
        self.path = Path(folder) / "history.jsonl" if folder else None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text("")

    def write(self, kind: str, payload: dict) -> None:
        if self.path is None:
            return
        with self.path.open("a") as f:
            f.write(json.dumps({"kind": kind, **json_safe(payload)}) + "\n")


def exchange(grid: Grid, messages: list[Message], *, timeout: float, poll_s: float = 0.1) -> list[Message]:
    """Push ``messages`` and collect the replies that arrive within ``timeout`` seconds.

    What ``Grid.send_and_receive`` does, polling every ``poll_s`` seconds instead of
    its fixed 3 s: on loopback that sleep was most of a round's wall time.
    """
    waiting = set(grid.push_messages(messages))
    deadline = time.monotonic() + timeout
    replies: list[Message] = []
    while waiting and time.monotonic() < deadline:
        arrived = list(grid.pull_messages(waiting))
        replies.extend(arrived)
        waiting -= {reply.metadata.reply_to_message_id for reply in arrived}
        if waiting:
            time.sleep(poll_s)
    return replies


def _wait_for_nodes(grid: Grid, expected: int, timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    while True:
        nodes = sorted(grid.get_node_ids())
        if len(nodes) >= expected:
            return nodes
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {len(nodes)} of {expected} hospitals' SuperNodes connected "
                               f"within {timeout:g} s")
        time.sleep(0.2)


@server_app.main()
def main(grid: Grid, context: Context) -> None:
    """Run the experiment: query the hospitals, then train and evaluate round by round."""
    run_config = context.run_config
    config = ExperimentConfig.from_dict(json.loads(str(run_config["fedlab-config"])))
    out = str(run_config.get("fedlab-out", "")) or None
    round_timeout = float(run_config.get("fedlab-round-timeout", 600.0))
    stream = MetricsStream(out)
    try:
        hospitals = int(run_config.get("fedlab-hospitals", config.data.n_clients))
        node_timeout = float(run_config.get("fedlab-node-timeout", 120.0))
        nodes = _wait_for_nodes(grid, hospitals, node_timeout)
        # the query is part of start-up (a node's first ClientApp starts cold): it gets the
        # start-up timeout, so that a short round timeout cannot lose a hospital before round 1
        answers = exchange(grid, [Message(RecordDict(), dst_node_id=node, message_type="query")
                                  for node in nodes], timeout=node_timeout)
        info = {}
        for answer in answers:
            if answer.has_error():
                raise RuntimeError(f"a hospital's node failed to describe itself: {answer.error.reason}")
            rec = answer.content["info"]
            info[int(rec["partition-id"])] = (answer.metadata.src_node_id, rec)
        if sorted(info) != list(range(hospitals)):
            raise RuntimeError(f"the nodes report partitions {sorted(info)}; the run expects "
                               f"0..{hospitals - 1}, one per node")
        node_of = {k: info[k][0] for k in info}
        records = [info[k][1] for k in sorted(info)]
        server = Server(config, n_train=[int(r["n-train"]) for r in records],
                        n_test=[int(r["n-test"]) for r in records],
                        names=[str(r["name"]) for r in records],
                        n_features=int(records[0]["n-features"]))
        header = server.history.to_dict()
        header.pop("records")
        stream.write("start", header)

        def send(kind: str, content: dict) -> dict:
            messages = [Message(rd, dst_node_id=node_of[k], message_type=kind, group_id=str(len(server.history) + 1))
                        for k, rd in content.items()]
            index = {node: k for k, node in node_of.items()}
            replies = {}
            for reply in exchange(grid, messages, timeout=round_timeout):
                if reply.has_content():
                    replies[index[reply.metadata.src_node_id]] = reply.content
            return replies

        save_models = bool(run_config.get("fedlab-save-models", False)) and out
        while not server.done:
            record = server.train_round(send)
            stream.write("round", record.to_dict())
            if save_models:
                np.save(Path(out) / f"global_round_{record.round:04d}.npy", server.theta.numpy())
        if out:
            np.save(Path(out) / "global_model.npy", server.theta.numpy())
        stream.write("end", {"stop_reason": server.history.stop_reason})
    except Exception as err:
        stream.write("error", {"error": f"{type(err).__name__}: {err}"})
        raise
