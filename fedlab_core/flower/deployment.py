"""A fedlab experiment on Flower's Deployment Engine, as real processes on this machine.

``Deployment(config).run()`` does what a federation's operators do, on loopback:

1. writes each hospital's partition to its own folder (``hospital-K/data.npz``):
   the only data its node will ever read;
2. writes the Flower app (``app/pyproject.toml`` and a two-line module that
   points at ``fedlab_core.flower.app``) and, with ``tls=True``, a certificate
   authority and a server certificate for this run;
3. starts one ``flower-superlink`` and one ``flower-supernode`` per hospital,
   each a separate process (group) with its own log in ``logs/``;
4. submits the app with ``flwr run`` and follows the server's metrics stream
   (``server/history.jsonl``) into a ``History``, round by round;
5. stops every process it started, and only those: SIGTERM to each process
   group, SIGKILL after a grace period, all within ``stop_timeout`` seconds.

On separate machines the same pieces run by hand (README, "Deploying on real
machines"): the SuperLink on the server, one SuperNode per hospital started
with ``--node-config 'partition-id=K data-path="..."'``, and ``flwr run``.

>>> check_deployable(ExperimentConfig().with_overrides({"attack.name": "sign_flip",
...                                                    "attack.n_malicious": 1}))
Traceback (most recent call last):
...
ValueError: attack.name = 'sign_flip' is not allowed in a Flower deployment: use 'none' (attacks are simulated in-process only)
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import types
from pathlib import Path
from typing import Callable

from fedlab_core.config import ExperimentConfig
from fedlab_core.history import History, RoundRecord

# (field, the value it must have, why) for what runs only in the in-process simulation
_SIMULATION_ONLY = (
    ("secure.protocol", "none", "secure aggregation is simulated in one process; Flower's "
                                "SecAgg+ workflow is not wired to fedlab yet"),
    ("attack.name", "none", "attacks are simulated in-process only"),
    ("federation.compression", "none", "update compression runs in the simulation only"),
    ("personal.method", "none", "personalised models live in the simulation only"),
    ("federation.dropout_rate", 0.0, "in a deployment drop-outs are real: a hospital that "
                                     "misses round_timeout is dropped"),
    ("federation.straggler_rate", 0.0, "in a deployment stragglers are real processes"),
)


def check_deployable(config: ExperimentConfig) -> ExperimentConfig:
    """The config as it runs on Flower, or a ``ValueError`` naming what cannot.

    Baselines are switched off: the centralised model would need every
    hospital's rows in one place, which is what a deployment rules out.
    """
    for field, allowed, why in _SIMULATION_ONLY:
        section, name = field.split(".")
        value = getattr(getattr(config, section), name)
        if value != allowed:
            raise ValueError(f"{field} = {value!r} is not allowed in a Flower deployment: "
                             f"use {allowed!r} ({why})")
    if config.privacy.mechanism not in ("none", "central"):
        raise ValueError(f"privacy.mechanism = {config.privacy.mechanism!r} is not allowed in a Flower "
                         "deployment: use 'central' or 'none' (local DP and DP-SGD noise is drawn "
                         "on the nodes, which fedlab's Flower app does not do yet)")
    if config.train.algorithm == "scaffold":
        raise ValueError("train.algorithm = 'scaffold' is not allowed in a Flower deployment: use "
                         "fedavg, fedprox or fednova (SCAFFOLD's client state is not kept on the nodes yet)")
    return dataclasses.replace(config, baselines=False)


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_ports(count: int) -> list[int]:
    """Ports the operating system says are free now (bound once, then released)."""
    sockets, ports = [], []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
            ports.append(s.getsockname()[1])
    finally:
        for s in sockets:
            s.close()
    return ports


def _listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def make_certificates(folder: Path, *, hosts: tuple[str, ...] = ("localhost",),
                      ips: tuple[str, ...] = ("127.0.0.1",)) -> dict[str, Path]:
    """A certificate authority and a server certificate signed by it, for one run.

    The SuperLink presents the server certificate; SuperNodes and ``flwr run``
    trust the authority (``ca.crt``). Keys are EC P-256, valid for a week.
    """
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)

    def name(common: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(name("fedlab run CA")).issuer_name(name("fedlab run CA"))
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(days=7))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    alt = [x509.DNSName(h) for h in hosts] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    cert = (x509.CertificateBuilder().subject_name(name(hosts[0])).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=7))
            .add_extension(x509.SubjectAlternativeName(alt), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(ca_key, hashes.SHA256()))
    paths = {"ca": folder / "ca.crt", "cert": folder / "server.pem", "key": folder / "server.key"}
    paths["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths["cert"].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths["key"].write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                               serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
    paths["key"].chmod(0o600)
    return paths


_APP_TOML = """\
# The Flower app of one fedlab run (written by fedlab_core.flower.deployment).
# Every node needs fedlab-core installed: the app is only this pointer to it.
[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
name = "fedlab-app"
version = "1.0.0"
description = "A fedlab experiment on Flower"
license = "Apache-2.0"
dependencies = []

[tool.flwr.app]
publisher = "fedlab"

[tool.flwr.app.components]
serverapp = "fedlab_server:server_app"
clientapp = "fedlab_client:client_app"

[tool.flwr.app.config]
{config}
"""

# fedlab's ServerApp and ClientApp live in the installed engine; the app's two modules
# only point there (plain assignments: Flower checks the names statically), and each
# side imports only its own half
_APP_MODULES = {
    "fedlab_server.py": "from fedlab_core.flower import server\n\nserver_app = server.server_app\n",
    "fedlab_client.py": "from fedlab_core.flower import client\n\nclient_app = client.client_app\n",
}


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return json.dumps(str(value))   # a TOML basic string is a JSON string


class Deployment:
    """Flower's SuperLink and one SuperNode per hospital, started, run and stopped.

    Parameters
    ----------
    config : the experiment (``check_deployable`` decides what may run).
    hospitals : sets ``data.n_clients`` (default: the config's).
    folder : where the run lives (partitions, app, certificates, logs, the
        server's metrics); default ``runs/deploy-<time>``.
    port : the SuperLink's port; SuperNodes take ``port + 1 + k``. Default:
        free ports the operating system picks.
    tls : encrypt SuperNode/CLI-SuperLink traffic with certificates made for this run.
    round_timeout : seconds the server waits for a round's replies; a hospital
        that misses it is dropped from that round.
    startup_timeout : seconds for each process to listen, for every SuperNode to connect,
        and for every hospital to answer the server's first query.
    save_models : also write the global model after every round (``server/global_round_NNNN.npy``).
    own_shuffle : nodes shuffle minibatches with their own randomness (equal to
        the simulation in distribution, not number for number).
    """

    def __init__(self, config: ExperimentConfig | None = None, *, hospitals: int | None = None,
                 folder: str | Path | None = None, port: int | None = None, tls: bool = False,
                 round_timeout: float = 120.0, save_models: bool = False, own_shuffle: bool = False,
                 startup_timeout: float = 60.0, stop_timeout: float = 15.0) -> None:
        from fedlab_core.flower import require_flwr

        require_flwr()
        config = config or ExperimentConfig()
        if hospitals is not None:
            if int(hospitals) < 1:
                raise ValueError(f"hospitals = {hospitals!r} is not allowed: use 1 or more")
            config = config.with_overrides({"data.n_clients": int(hospitals)})
        self.config = check_deployable(config)
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        self.folder = Path(folder if folder is not None else Path("runs") / f"deploy-{stamp}").resolve()
        self.port, self.tls = port, tls
        self.round_timeout, self.save_models, self.own_shuffle = round_timeout, save_models, own_shuffle
        self.startup_timeout, self.stop_timeout = startup_timeout, stop_timeout
        self.history: History | None = None
        self.error: str | None = None
        self.finished = False
        self.processes: dict[str, subprocess.Popen] = {}
        self._read = 0   # bytes of the metrics stream already read
        self._lock = threading.Lock()

    @property
    def started(self) -> bool:
        return bool(self.processes)

    # ---- paths -----------------------------------------------------------
    @property
    def stream_path(self) -> Path:
        return self.folder / "server" / "history.jsonl"

    def log(self, name: str) -> Path:
        """The log file of one process (``superlink``, ``hospital-K``, ``flwr-run``)."""
        return self.folder / "logs" / f"{name}.log"

    # ---- start -----------------------------------------------------------
    def _write_partitions(self) -> list[Path]:
        from fedlab_core.data import load_dataset
        from fedlab_core.flower.client import save_partition
        from fedlab_core.simulation import seed_streams

        seed = int(seed_streams(self.config.seed)["data"].generate_state(1)[0])
        dataset = load_dataset(self.config.data, seed=seed)
        self.n_hospitals = dataset.n_clients
        return [save_partition(client, self.folder / f"hospital-{k}" / "data.npz")
                for k, client in enumerate(dataset.clients)]

    def _write_app(self) -> Path:
        app = self.folder / "app"
        app.mkdir(parents=True, exist_ok=True)
        run_config = {"fedlab-config": json.dumps(self.config.to_dict()),
                      "fedlab-out": str(self.folder / "server"),
                      "fedlab-hospitals": self.n_hospitals,
                      "fedlab-round-timeout": float(self.round_timeout),
                      "fedlab-node-timeout": float(self.startup_timeout),
                      "fedlab-save-models": bool(self.save_models),
                      "fedlab-own-shuffle": bool(self.own_shuffle)}
        lines = "\n".join(f"{key} = {_toml_value(v)}" for key, v in run_config.items())
        (app / "pyproject.toml").write_text(_APP_TOML.format(config=lines))
        for name, text in _APP_MODULES.items():
            (app / name).write_text(text)
        return app

    def _ports(self) -> list[int]:
        n = 1 + self.n_hospitals
        if self.port is None:
            return _free_ports(n)
        ports = [self.port + i for i in range(n)]
        for i, p in enumerate(ports):
            if not 1024 <= p <= 65535:
                raise ValueError(f"port = {self.port} is not allowed: the SuperLink and "
                                 f"{self.n_hospitals} SuperNodes need ports {ports[0]}..{ports[-1]}, "
                                 "all within 1024..65535")
            if not _port_free(p):
                role = "the SuperLink" if i == 0 else f"hospital {i - 1}'s SuperNode"
                raise ValueError(f"port = {p} ({role}) is not allowed: it is already in use on "
                                 "127.0.0.1; stop what uses it, or pass another port "
                                 "(or none, to let the system pick free ones)")
        return ports

    def _spawn(self, name: str, argv: list[str], env: dict) -> subprocess.Popen:
        log = self.log(name)
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("wb") as out:
            # a session of its own: stopping it stops the app processes it spawned too
            proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env,
                                    cwd=self.folder, start_new_session=True)
        self.processes[name] = proc
        return proc

    def _wait_listening(self, name: str, port: int) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while not _listening(port):
            proc = self.processes[name]
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with code {proc.returncode} before it listened on "
                                   f"port {port}; its log ({self.log(name)}) ends:\n{_tail(self.log(name))}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not listen on port {port} within "
                                   f"{self.startup_timeout:g} s; see {self.log(name)}")
            time.sleep(0.1)

    def _environment(self) -> dict[str, str]:
        """The environment of every process this run starts."""
        bindir = Path(sys.executable).parent
        # Flower reports usage events to its developers unless told not to; a kit about
        # keeping data at home does not phone home (set FLWR_TELEMETRY_ENABLED=1 to allow it)
        return {"FLWR_TELEMETRY_ENABLED": "0", **os.environ,
                "FLWR_HOME": str(self.folder / "flwr-home"),
                "PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}",
                "PYTHONUNBUFFERED": "1"}

    def _write_flwr_home(self, connection: str) -> None:
        """``$FLWR_HOME/config.toml``: where ``flwr run`` finds the SuperLink, and how to connect."""
        home = self.folder / "flwr-home"
        home.mkdir(parents=True, exist_ok=True)
        (home / "config.toml").write_text(
            f'[superlink]\ndefault = "fedlab"\n\n[superlink.fedlab]\n'
            f'address = "127.0.0.1:{self.link_port}"\n{connection}\n')

    def start(self) -> "Deployment":
        """Write the run's files, start SuperLink and SuperNodes, submit the app."""
        if self.started:
            raise RuntimeError("this deployment has already started")
        self.folder.mkdir(parents=True, exist_ok=True)
        partitions = self._write_partitions()
        app = self._write_app()
        ports = self._ports()
        self.link_port, self.node_ports = ports[0], ports[1:]
        bindir = Path(sys.executable).parent
        env = {**self._environment(),
               # each node's SuperExec looks for new work every second by default; a
               # message waits on it twice per exchange (Flower's documented knob)
               # (more often costs CPU: at 100 hospitals, 500 requests a second)
               "FLWR_SUPEREXEC_TASK_POLL_INTERVAL": "0.2" if self.n_hospitals <= 20 else "1.0"}
        exe = {name: str(bindir / name) if (bindir / name).exists() else (shutil.which(name) or name)
               for name in ("flower-superlink", "flower-supernode", "flwr")}
        if self.tls:
            certs = make_certificates(self.folder / "certificates")
            link_security = ["--ssl-ca-certfile", str(certs["ca"]), "--ssl-certfile", str(certs["cert"]),
                             "--ssl-keyfile", str(certs["key"])]
            node_security = ["--root-certificates", str(certs["ca"])]
            connection = f'root-certificates = "{certs["ca"]}"'
        else:
            link_security = node_security = ["--insecure"]
            connection = "insecure = true"
        self._write_flwr_home(connection)
        try:
            self._spawn("superlink", [exe["flower-superlink"], *link_security, "--host", "127.0.0.1",
                                      "--port", str(self.link_port),
                                      "--disable-runtime-dependency-installation"], env)
            self._wait_listening("superlink", self.link_port)
            for k, (path, port) in enumerate(zip(partitions, self.node_ports)):
                node_config = f'partition-id={k} num-partitions={self.n_hospitals} data-path="{path}"'
                self._spawn(f"hospital-{k}", [
                    exe["flower-supernode"], *node_security, "--superlink", f"127.0.0.1:{self.link_port}",
                    "--port", str(port), "--node-config", node_config], env)
            # submitted while the SuperNodes start (each costs seconds of imports): the
            # ServerApp waits until every hospital has registered before its first message
            self._spawn("flwr-run", [exe["flwr"], "run", str(app), "fedlab", "--stream"], env)
            for k, port in enumerate(self.node_ports):
                self._wait_listening(f"hospital-{k}", port)
        except BaseException:
            self.stop()
            raise
        return self

    # ---- follow ----------------------------------------------------------
    def poll(self) -> list[RoundRecord]:
        """Read what the server has written since the last call; return the new rounds."""
        with self._lock:
            if not self.stream_path.exists():
                return []
            with self.stream_path.open("rb") as f:
                f.seek(self._read)
                chunk = f.read()
            # only whole lines: the server may be writing the next one
            end = chunk.rfind(b"\n") + 1
            self._read += end
            new = []
            for line in chunk[:end].decode().splitlines():
                event = json.loads(line)
                kind = event.pop("kind")
                if kind == "start":
                    self.history = History.from_dict({**event, "records": []})
                elif kind == "round":
                    record = RoundRecord.from_dict(event)
                    self.history.append(record)
                    new.append(record)
                elif kind == "end":
                    self.history.stop_reason = event["stop_reason"]
                    self.finished = True
                elif kind == "error":
                    self.error = event["error"]
                    self.finished = True
            return new

    def raise_if_failed(self) -> None:
        """Raise if the ServerApp reported an error or ``flwr run`` exited with one."""
        if self.error is not None:
            raise RuntimeError(f"the ServerApp failed: {self.error}; see {self.log('flwr-run')}")
        runner = self.processes.get("flwr-run")
        if runner is not None and runner.poll() not in (None, 0):
            raise RuntimeError(f"flwr run exited with code {runner.returncode}; its log "
                               f"({self.log('flwr-run')}) ends:\n{_tail(self.log('flwr-run'))}")

    def wait_for_server(self, *, timeout: float | None = None,
                        stop: threading.Event | None = None, poll_s: float = 0.05) -> History:
        """Wait for the server's first words, which it writes once every hospital has
        answered its query: ``history`` then holds their names and round 1 begins.
        Raises if the server fails first, ``stop`` is set, or ``timeout`` seconds pass."""
        timeout = self.startup_timeout + 60 if timeout is None else timeout
        deadline = time.monotonic() + timeout
        while self.history is None:
            self.poll()
            self.raise_if_failed()
            if stop is not None and stop.is_set():
                raise RuntimeError("stopped by user before the deployment's server started")
            if time.monotonic() > deadline:
                raise TimeoutError(f"the deployment's server did not hear from every hospital within "
                                   f"{timeout:g} s; see the logs in {self.folder / 'logs'}")
            time.sleep(poll_s)
        return self.history

    def wait(self, *, timeout: float | None = None,
             on_round: Callable[[RoundRecord], None] | None = None) -> History:
        """Follow the run until the server ends it (or fails, or ``timeout`` seconds pass)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            for record in self.poll():
                if on_round is not None:
                    on_round(record)
            self.raise_if_failed()
            if self.finished:
                return self.history
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"the deployed run did not finish within {timeout:g} s "
                                   f"({0 if self.history is None else len(self.history)} rounds done); "
                                   f"see the logs in {self.folder / 'logs'}")
            time.sleep(0.05)

    def run(self, *, timeout: float | None = None,
            on_round: Callable[[RoundRecord], None] | None = None) -> History:
        """Start, follow to the end, and stop every process, whatever happens.
        A run that is interrupted keeps the rounds it received in ``history``."""
        try:
            self.start()
            return self.wait(timeout=timeout, on_round=on_round)
        except KeyboardInterrupt:
            if self.history is not None:
                self.history.stop_reason = f"interrupted after round {len(self.history)}"
            return self.history
        finally:
            self.stop()

    # ---- stop ------------------------------------------------------------
    def stop(self) -> None:
        """Stop every process this deployment started, and the app processes they
        spawned: SIGTERM, then SIGKILL for what is left after half of
        ``stop_timeout``. Safe to call twice."""
        roots = [p.pid for p in self.processes.values()]
        # the whole tree now, before parents die and orphans move to init
        targets = set(roots) | _descendants(roots)
        for pgid in roots:
            _signal_group(pgid, signal.SIGTERM)
        for pid in targets:
            _signal(pid, signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout / 2
        while time.monotonic() < deadline:
            for p in self.processes.values():
                p.poll()   # reap our own children so they do not linger as zombies
            if not any(_alive(pid) for pid in targets):
                break
            time.sleep(0.05)
        for pid in targets:
            if _alive(pid):
                _signal(pid, signal.SIGKILL)
        for p in self.processes.values():
            try:
                p.wait(timeout=self.stop_timeout / 2)
            except subprocess.TimeoutExpired:
                pass
        self._stopped = targets

    def leftover_processes(self) -> list[int]:
        """Processes this deployment started (or they spawned) that are still alive."""
        started = set(p.pid for p in self.processes.values()) | getattr(self, "_stopped", set())
        return sorted(pid for pid in started | _descendants(started) if _alive(pid))

    def __enter__(self) -> "Deployment":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class FollowedRun:
    """A deployed run seen through ``Simulation``'s round-by-round interface.

    ``step()`` waits for the deployment's next round and returns its record;
    ``done``, ``round``, ``history``, ``config`` and ``request_stop()`` mean
    what they mean for a ``Simulation``. So the dashboard follows a deployment
    with the loop it runs simulations with (``Dashboard.follow``). When the run
    ends, or is stopped, every process of the deployment is stopped; the
    rounds received stay in ``history``.
    """

    def __init__(self, deployment: Deployment, *, poll_s: float = 0.1,
                 startup_timeout: float | None = None) -> None:
        self.deployment = deployment
        self.config = deployment.config
        self.poll_s = poll_s
        self.startup_timeout = startup_timeout or deployment.startup_timeout + 60
        self.round = 0
        self.done = False
        self._stop = threading.Event()

    def start(self) -> "FollowedRun":
        """Start the deployment (if it has not started) and wait for the server's first
        words: the hospitals' names and the privacy plan, which the figures need."""
        dep = self.deployment
        if not dep.started:
            dep.start()
        try:
            dep.wait_for_server(timeout=self.startup_timeout, stop=self._stop, poll_s=self.poll_s)
        except BaseException:
            dep.stop()
            raise
        return self

    @property
    def history(self) -> History:
        return self.deployment.history

    @property
    def privacy(self):
        # what the dashboard's status line reads of a privacy plan: its unit and δ
        summary = self.history.privacy if self.history is not None else None
        return None if summary is None else types.SimpleNamespace(**summary)

    def _check(self, dep: Deployment) -> None:
        try:
            dep.raise_if_failed()
        except RuntimeError:
            dep.stop()
            raise

    def step(self) -> RoundRecord | None:
        """The next round's record, waiting for it; ``None`` if the run ended (or was stopped)."""
        dep = self.deployment
        while not self._stop.is_set():
            dep.poll()
            if len(dep.history) > self.round:
                self.round += 1
                return dep.history.records[self.round - 1]
            if dep.finished:
                self._check(dep)
                break
            self._check(dep)
            time.sleep(self.poll_s)
        self.done = True
        dep.stop()
        return None

    def request_stop(self) -> None:
        """Stop following and stop the deployment's processes; the rounds so far stay."""
        self._stop.set()
        if self.history is not None and not self.deployment.finished:
            self.history.stop_reason = f"stopped by user after round {len(self.history)}"


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _stat(pid: int) -> list[str] | None:
    """``/proc/PID/stat``'s fields after the command name (which may hold spaces):
    state, ppid, pgrp, ...; None when there is no such process (or no /proc)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _alive(pid: int) -> bool:
    """Whether ``pid`` is a living process (zombies, already dead, count as gone)."""
    if not os.path.isdir("/proc"):   # not Linux: ask the kernel
        try:
            os.kill(pid, 0)
        except (ProcessLookupError, PermissionError):
            return False
        return True
    fields = _stat(pid)
    return fields is not None and fields[0] != "Z"


def _descendants(roots) -> set[int]:
    """Every process whose chain of parents reaches one of ``roots`` (Linux /proc)."""
    if not os.path.isdir("/proc"):
        return set()
    parent = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if fields is not None:
                parent[int(entry.name)] = int(fields[1])
    found, frontier = set(), set(roots)
    while frontier:
        frontier = {pid for pid, ppid in parent.items() if ppid in frontier} - found
        found |= frontier
    return found


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
