"""Helpers for the Flower tests: the ServerApp's ``Server`` joined to the ClientApp's
handlers in this process (Flower's records, no network), and a ``Deployment`` whose
server and nodes run that way in a thread, so that following a run is tested in
seconds (the real processes are tested in test_flower.py)."""

from __future__ import annotations

import json
import threading

from fedlab_core.config import ExperimentConfig
from fedlab_core.flower import client as node_side
from fedlab_core.flower.deployment import Deployment
from fedlab_core.flower.server import MetricsStream, Server


def server_and_send(config: ExperimentConfig, *, lose=()):
    """A ``Server`` and the ``send`` that delivers its messages to the hospitals'
    handlers directly; hospitals in ``lose`` never answer (a real network's silence)."""
    run_config = {"fedlab-config": json.dumps(config.to_dict())}
    nodes = [node_side.Node(run_config, {"partition-id": k}) for k in range(config.data.n_clients)]
    info = [node_side.describe(node, None)["info"] for node in nodes]
    server = Server(config, n_train=[int(i["n-train"]) for i in info],
                    n_test=[int(i["n-test"]) for i in info],
                    names=[str(i["name"]) for i in info], n_features=int(info[0]["n-features"]))

    def send(kind, content):
        return {k: node_side.HANDLERS[kind](nodes[k], rd) for k, rd in content.items() if k not in lose}

    return server, send


class InProcessDeployment(Deployment):
    """The deployment's metrics stream, written by a server thread instead of processes.
    With ``gated=True`` the server waits before each round for a ``release()``."""

    def __init__(self, *args, gated: bool = False, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.gate = threading.Semaphore(0) if gated else None
        self._thread = None

    def release(self, rounds: int = 1) -> None:
        for _ in range(rounds):
            self.gate.release()

    @property
    def started(self) -> bool:
        return self._thread is not None

    def start(self):
        server, send = server_and_send(self.config)
        stream = MetricsStream(str(self.folder / "server"))

        def serve():
            header = server.history.to_dict()
            header.pop("records")
            stream.write("start", header)
            while not server.done and not self._halt.is_set():
                if self.gate is not None:
                    self.gate.acquire()
                if self._halt.is_set():
                    break
                stream.write("round", server.train_round(send).to_dict())
            if server.done:
                stream.write("end", {"stop_reason": server.history.stop_reason})

        self._halt = threading.Event()
        self._thread = threading.Thread(target=serve, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._halt.set()
            if self.gate is not None:
                self.gate.release()
            self._thread.join(10)
