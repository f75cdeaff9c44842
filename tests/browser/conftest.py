"""Fixtures for the browser test: a private JupyterLab server and headless Chromium.

Facts this follows (see the project's browser-testing notes):

- Debian's Chromium (``/usr/bin/chromium``) through Playwright's
  ``launch_persistent_context``; Playwright's own browser download is never used.
- JupyterLab runs on a free port with a token, on a temporary copy of
  ``notebooks/``, with fresh workspace, user-settings and app-settings folders
  (a stale workspace reopens stale notebooks). The app-settings folder holds
  ``overrides.json``: no windowing in notebooks (off-screen outputs would count
  as hidden), no news or update toasts (they cover the screenshot).
- The server is stopped by the PID this fixture started, also when the test fails.
- ``lab`` is one server per test; ``shared_lab`` one per test module (a server costs
  ~5 s to start and stop on 2 cores): its tests call :func:`forget_notebooks` after
  each notebook, so the next one opens alone with one kernel.
- Screenshots go to each lab's ``artifacts`` folder: under pytest's tmp dir, or
  ``$FEDLAB_BROWSER_ARTIFACTS/<test or module>`` when that is set (for CI to keep).

Nothing here imports Playwright at module level, so ``--doctest-modules``
collection works without it.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
# for developing against another copy of the notebooks; normally unset
NOTEBOOK_DIR = Path(os.environ.get("FEDLAB_BROWSER_NOTEBOOK_DIR", ROOT / "notebooks"))

LAB_START_TIMEOUT_S = 90   # first start in a fresh venv can take ~40 s on 2 cores
LAB_STOP_TIMEOUT_S = 15

LAB_OVERRIDES = {
    "@jupyterlab/notebook-extension:tracker": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension:notification": {
        "fetchNews": "false", "checkForUpdates": False, "doNotDisturbMode": True,
    },
    # no "save widget state" surprises: the kernel is the source of truth after reload
    "@jupyter-widgets/jupyterlab-manager:plugin": {"saveState": False},
}

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-dev-shm-usage",
                 "--hide-scrollbars", "--font-render-hinting=none"]


def _truthy(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Lab:
    """A running JupyterLab server started by the fixture."""

    proc: subprocess.Popen
    port: int
    token: str
    root_dir: Path
    log_path: Path
    artifacts: Path
    notes: list[str] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        sep = "&" if "?" in path else "?"
        return f"{self.base_url}/{path.lstrip('/')}{sep}token={self.token}"

    def api(self, path: str, method: str = "GET", timeout: float = 5.0):
        req = urllib.request.Request(f"{self.base_url}/{path.lstrip('/')}", method=method,
                                     headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(req, timeout=timeout) as r:
            body = r.read()
        return json.loads(body) if body else None

    def log_tail(self, n: int = 60) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return "(no lab log)"
        return "\n".join(lines[-n:])

    def note(self, msg: str) -> None:
        """A timestamped diagnostic line, printed with the failure report."""
        line = f"[{time.strftime('%H:%M:%S')}] {msg}"
        self.notes.append(line)
        print(line, file=sys.stderr)


@pytest.fixture(scope="session")
def chromium_path() -> Path:
    """Debian's Chromium; skipped when missing, except on CI (``CI=true``) where that fails."""
    if not (CHROMIUM.exists() and os.access(CHROMIUM, os.X_OK)):
        msg = (f"{CHROMIUM} not found: install Debian's chromium (`make browser-deps` or "
               "`apt-get install chromium`); never `playwright install`")
        if _truthy("CI"):
            pytest.fail(msg, pytrace=False)
        pytest.skip(msg)
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        msg = "the playwright Python package is missing (pip install -e '.[test]')"
        if _truthy("CI"):
            pytest.fail(msg, pytrace=False)
        pytest.skip(msg)
    return CHROMIUM


def _stop_process(proc: subprocess.Popen, lab: Lab | None = None) -> None:
    """Stop exactly this process: its kernels via the API first, then SIGTERM, then SIGKILL."""
    if proc.poll() is not None:
        return
    if lab is not None:
        try:
            for k in lab.api("api/kernels") or []:
                lab.api(f"api/kernels/{k['id']}", method="DELETE", timeout=10)
        except Exception as e:  # the server may be wedged; SIGTERM still shuts kernels down
            print(f"could not shut kernels down through the API: {e}", file=sys.stderr)
    proc.terminate()
    try:
        proc.wait(LAB_STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(LAB_STOP_TIMEOUT_S)


def artifacts_dir(default: Path, name: str) -> Path:
    """Where a test leaves its screenshots: ``default`` (under pytest's tmp dir), or
    ``$FEDLAB_BROWSER_ARTIFACTS/<name>`` when set (for CI to keep them)."""
    keep = os.environ.get("FEDLAB_BROWSER_ARTIFACTS", "").strip()
    path = Path(keep) / name if keep else default
    path.mkdir(parents=True, exist_ok=True)
    return path


def _safe_name(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name).strip("_")


@contextlib.contextmanager
def lab_server(tmp_path: Path, name: str):
    """Start JupyterLab on a temporary copy of the notebooks; yield a :class:`Lab`; stop it.

    ``name`` names the artefacts folder when ``FEDLAB_BROWSER_ARTIFACTS`` is set.
    """
    if not NOTEBOOK_DIR.is_dir():
        pytest.fail(f"no notebooks folder at {NOTEBOOK_DIR}", pytrace=False)
    root_dir = tmp_path / "notebooks"
    shutil.copytree(NOTEBOOK_DIR, root_dir,
                    ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
    dirs = {name: tmp_path / name for name in
            ("workspaces", "user-settings", "app-settings", "jupyter-config", "runtime")}
    for d in dirs.values():
        d.mkdir()
    (dirs["app-settings"] / "overrides.json").write_text(json.dumps(LAB_OVERRIDES, indent=2))

    env = kernel_env(dirs["jupyter-config"], dirs["runtime"])

    port, token = free_port(), secrets.token_hex(16)
    log_path = tmp_path / "lab.log"
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser",
           "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
           "--ServerApp.port_retries=0",
           f"--IdentityProvider.token={token}",
           f"--ServerApp.root_dir={root_dir}",
           f"--LabApp.workspaces_dir={dirs['workspaces']}",
           f"--LabApp.user_settings_dir={dirs['user-settings']}",
           f"--LabApp.app_settings_dir={dirs['app-settings']}",
           "--ServerApp.terminals_enabled=False",
           "--LabApp.extension_manager=readonly",   # no PyPI look-ups from the server
           # a safety net if this test process dies without its teardown
           "--ServerApp.shutdown_no_activity_timeout=900"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:   # CI containers often run as root
        cmd.append("--allow-root")
    log = open(log_path, "wb")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env,
                            cwd=str(root_dir), stdin=subprocess.DEVNULL)
    lab = Lab(proc=proc, port=port, token=token, root_dir=root_dir, log_path=log_path,
              artifacts=artifacts_dir(tmp_path / "artifacts", _safe_name(name)))
    lab.note(f"started JupyterLab pid {proc.pid} on port {port}, log {log_path}")
    try:
        wait_for_server(proc, lambda: lab.api("api/status", timeout=2), LAB_START_TIMEOUT_S,
                        "JupyterLab", lab.log_tail)
        # the overrides reach the front end as schema defaults: check they took effect
        schema = lab.api("lab/api/settings/@jupyterlab/notebook-extension:tracker")["schema"]
        schema = json.loads(schema) if isinstance(schema, str) else schema
        mode = schema["properties"]["windowingMode"].get("default")
        if mode != "none":
            pytest.fail(f"the lab settings overrides were not applied (windowingMode={mode!r}); "
                        f"LabApp.app_settings_dir={dirs['app-settings']}", pytrace=False)
        lab.note("JupyterLab is up")
        yield lab
    finally:
        _stop_process(proc, lab)
        log.close()
        lab.note(f"stopped JupyterLab pid {proc.pid} (exit code {proc.returncode})")


def kernel_env(config_dir: Path, runtime_dir: Path) -> dict[str, str]:
    """The environment of a server and its kernels: fast mode, live plots, no user config,
    the heart data from the shared offline copy (no internet in tests)."""
    env = dict(os.environ)
    env.update({
        "FEDLAB_FAST": "1",
        "JUPYTER_CONFIG_DIR": str(config_dir),  # no user config leaks in
        "JUPYTER_RUNTIME_DIR": str(runtime_dir),
        "PYTHONUNBUFFERED": "1",
    })
    for name in ("FEDLAB_STATIC_PLOTS", "VSCODE_PID", "JUPYTER_TOKEN"):
        env.pop(name, None)
    shared_heart = ROOT.parent / "shared" / "datasets" / "uci-heart-disease"
    if "FEDLAB_HEART_DIR" not in env and shared_heart.is_dir():
        env["FEDLAB_HEART_DIR"] = str(shared_heart)
    return env


def wait_for_server(proc: subprocess.Popen, probe, timeout: float, what: str, log_tail) -> None:
    """Poll ``probe()`` until it answers; fail with the log if ``proc`` exits or time runs out."""
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            pytest.fail(f"{what} exited with {proc.returncode} while starting:\n{log_tail()}",
                        pytrace=False)
        try:
            probe()
            return
        except (urllib.error.URLError, ConnectionError, OSError):
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not answer within {timeout:.0f} s:\n{log_tail()}",
                        pytrace=False)
        time.sleep(0.25)


@pytest.fixture
def lab(chromium_path, tmp_path: Path, request):
    """JupyterLab on a temporary copy of the notebooks; yields a :class:`Lab`."""
    with lab_server(tmp_path, request.node.name) as server:
        yield server


@pytest.fixture(scope="module")
def shared_lab(chromium_path, tmp_path_factory, request):
    """One JupyterLab for every test of a module (each test shuts its kernels down and
    forgets its workspace: see :func:`forget_notebooks`); yields a :class:`Lab`."""
    tmp = tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1])
    with lab_server(tmp, request.module.__name__.rsplit(".", 1)[-1]) as server:
        yield server


def forget_notebooks(lab: Lab, timeout: float = 30) -> None:
    """Shut every session's kernel down and delete the saved workspaces, so the next
    notebook opens alone, with one kernel (a workspace reopens the notebooks it lists)."""
    for s in lab.api("api/sessions") or []:
        lab.api(f"api/sessions/{s['id']}", method="DELETE", timeout=10)
    for k in lab.api("api/kernels") or []:
        lab.api(f"api/kernels/{k['id']}", method="DELETE", timeout=10)
    deadline = time.monotonic() + timeout
    while lab.api("api/kernels"):
        if time.monotonic() > deadline:
            pytest.fail(f"kernels still running {timeout:.0f} s after their shutdown",
                        pytrace=False)
        time.sleep(0.2)
    listing = lab.api("lab/api/workspaces") or {}
    for ws_id in listing.get("workspaces", {}).get("ids", []):
        lab.api(f"lab/api/workspaces/{ws_id}", method="DELETE", timeout=10)


@contextlib.contextmanager
def chromium_page(chromium_path: Path, profile: Path):
    """A Playwright page in headless Chromium with a fresh profile (1280×900); browser
    console errors and warnings are kept in ``page.fedlab_console``."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(profile), executable_path=str(chromium_path), headless=True,
            args=CHROMIUM_ARGS, viewport={"width": 1280, "height": 900},
            device_scale_factor=1, locale="en-US", timezone_id="UTC",
            color_scheme="light")
        try:
            context.set_default_timeout(30_000)
            page = context.pages[0] if context.pages else context.new_page()
            console: list[str] = []
            page.on("console", lambda m: console.append(f"{m.type}: {m.text}")
                    if m.type in ("error", "warning") else None)
            page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
            # unsaved-changes prompts must never block a reload
            page.on("dialog", lambda d: d.accept())
            page.fedlab_console = console  # type: ignore[attr-defined]
            yield page
        finally:
            context.close()


@pytest.fixture
def browser_page(chromium_path, lab: Lab, tmp_path: Path):
    """A Playwright page in headless Chromium with a fresh profile (1280×900)."""
    with chromium_page(chromium_path, tmp_path / "chromium-profile") as page:
        yield page


@pytest.fixture
def shared_lab_page(chromium_path, shared_lab: Lab, tmp_path: Path):
    """A fresh Chromium (1280×900) for one test on the module's ``shared_lab``; afterwards
    the test's kernels are shut down and the workspace forgotten (:func:`forget_notebooks`),
    so the next test's notebook opens alone."""
    with chromium_page(chromium_path, tmp_path / "chromium-profile") as page:
        yield page
    forget_notebooks(shared_lab)
