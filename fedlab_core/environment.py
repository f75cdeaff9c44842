"""Can this computer run the course? An environment check in plain words.

:func:`check_environment` looks at what a learner's machine has and answers,
row by row, what works and what to do otherwise: Python, PyTorch, the core
libraries, plotly / ipywidgets / anywidget, whether live widgets will render
in this front end, the optional pieces (secure aggregation's cryptography,
Flower, the real UCI heart data), CPU threads, and a short speed probe that
runs notebook 01's experiment for about a second. Notebook ``00-start-here``
shows it; from a terminal::

    python -m fedlab_core.environment          # exits 1 if something required is missing

It never installs or downloads anything, and it looks at the plotting and
widget libraries through their installed metadata only (the core never
imports plotly or ipywidgets).

>>> report = check_environment(probe_seconds=0)
>>> report["Python"].status
'ok'
>>> live_widgets_expected(environ={"FEDLAB_STATIC_PLOTS": "1"}, modules=["ipykernel"])[0]
False
"""

from __future__ import annotations

import html
import importlib.metadata
import importlib.util
import os
import platform
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Collection, Iterator, Mapping

__all__ = ["MIN_PYTHON", "MIN_VERSIONS", "STATUSES", "Check", "EnvironmentReport",
           "installed_version", "front_end", "live_widgets_expected", "usable_cpus",
           "speed_probe", "check_environment", "main"]

MIN_PYTHON = (3, 10)   # pyproject's requires-python (a test keeps them in agreement)
# the least versions pyproject asks for (a test keeps them in agreement); ipywidgets 7.6 is
# enough for the widgets (Colab ships 7), though a local install gets 8
MIN_VERSIONS = {"torch": "2.2", "numpy": "1.24", "scipy": "1.10", "scikit-learn": "1.3",
                "pandas": "2.0", "plotly": "5.20", "ipywidgets": "7.6", "anywidget": "0.9"}
CORE_LIBRARIES = ("numpy", "scipy", "pandas", "scikit-learn", "dp-accounting")
SECURE_LIBRARIES = {"cryptography": "cryptography", "pycryptodome": "Crypto", "phe": "phe",
                    "gmpy2": "gmpy2"}

# status → (symbol, word): the word says it without colour or emoji (screen readers, no emoji font);
# "missing" is the only status that stops the course
STATUSES = {"ok": ("✅", "works"), "warn": ("⚠️", "limited"), "optional": ("➖", "optional"),
            "missing": ("❌", "missing"), "info": ("ℹ️", "note")}


@dataclass(frozen=True)
class Check:
    """One row of the report.

    Attributes
    ----------
    name : what was checked ("PyTorch", "Live widgets", ...).
    status : one of :data:`STATUSES`.
    found : what is there (a version, a count, a measurement).
    advice : what it means for the course, and what to do if it is not ok, in plain words.
    """

    name: str
    status: str
    found: str
    advice: str

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status = {self.status!r} is not allowed: use one of {sorted(STATUSES)}")

    @property
    def symbol(self) -> str:
        return STATUSES[self.status][0]

    @property
    def word(self) -> str:
        return STATUSES[self.status][1]


class EnvironmentReport:
    """The checks, in order; shows as a table in a notebook and as text in a terminal.

    ``report["PyTorch"]`` is one :class:`Check`; ``report.ok`` is whether
    nothing required is missing; ``report.verdict()`` says it in one sentence.
    """

    def __init__(self, checks: list[Check], *, measurements: Mapping[str, float] | None = None) -> None:
        self.checks = list(checks)
        self.measurements = dict(measurements or {})

    def __iter__(self) -> Iterator[Check]:
        return iter(self.checks)

    def __len__(self) -> int:
        return len(self.checks)

    def __getitem__(self, name: str) -> Check:
        for check in self.checks:
            if check.name == name:
                return check
        raise KeyError(f"no check named {name!r}; the checks are {[c.name for c in self.checks]}")

    @property
    def ok(self) -> bool:
        """Whether everything the course needs is here (optional pieces aside)."""
        return not any(c.status == "missing" for c in self.checks)

    def verdict(self) -> str:
        """One sentence for the learner."""
        missing = [c.name for c in self.checks if c.status == "missing"]
        if missing:
            return ("Something the course needs is missing here: " + ", ".join(missing)
                    + ". The rows marked ❌ say what to do.")
        limits = [c.name for c in self.checks if c.status in ("warn", "optional")]
        if limits:
            return ("Everything the course needs works here. Rows marked ⚠️ or ➖ ("
                    + ", ".join(limits) + ") only limit some notebooks: they say which.")
        return "Everything works here, optional pieces included. You are ready for notebook 01."

    def to_text(self) -> str:
        width = max(len(c.name) for c in self.checks) if self.checks else 0
        lines = [f"{c.symbol} {c.name:<{width}}  {c.found}\n{'':{width + 4}}{c.advice}"
                 for c in self.checks]
        return "\n".join(lines + ["", self.verdict()])

    def __str__(self) -> str:
        return self.to_text()

    def __repr__(self) -> str:
        return f"EnvironmentReport(ok={self.ok}, checks={[c.name for c in self.checks]})"

    def _repr_pretty_(self, printer, cycle: bool) -> None:
        """IPython in a terminal: the readable text, not the repr."""
        printer.text(self.to_text())

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><td style='white-space:nowrap'>{c.symbol} {c.word}</td><td><b>{html.escape(c.name)}</b></td>"
            f"<td>{html.escape(c.found)}</td><td style='text-align:left'>{html.escape(c.advice)}</td></tr>"
            for c in self.checks)
        return ("<table class='fedlab-environment' style='font-size:14px'>"
                "<thead><tr><th>status</th><th>what</th><th>found</th><th style='text-align:left'>"
                "what it means</th></tr></thead>"
                f"<tbody>{rows}</tbody></table><p style='font-size:14px'><b>"
                f"{html.escape(self.verdict())}</b></p>")


def installed_version(distribution: str) -> str | None:
    """The installed version of a distribution (a pip name), or ``None`` if it is not installed.

    Reads package metadata only: nothing is imported.

    >>> installed_version("a-package-that-is-not-there") is None
    True
    """
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def _at_least(version: str, minimum: str) -> bool:
    """Compare the leading numbers of two versions: ``"2.13.0+cpu"`` ≥ ``"2.2"``.

    >>> _at_least("2.13.0+cpu", "2.2"), _at_least("7.7.1", "8.0"), _at_least("1.24", "1.24")
    (True, False, True)
    """
    def numbers(v: str) -> tuple[int, ...]:
        match = re.match(r"\d+(\.\d+)*", v.strip())
        if not match:
            raise ValueError(f"version = {v!r} is not allowed: it must start with a number such as '2.2'")
        return tuple(int(p) for p in match.group(0).split("."))

    have, need = numbers(version), numbers(minimum)
    width = max(len(have), len(need))
    return have + (0,) * (width - len(have)) >= need + (0,) * (width - len(need))


def front_end(*, environ: Mapping[str, str] | None = None,
              modules: Collection[str] | None = None) -> str:
    """Where this Python runs: ``"colab"``, ``"vscode"``, ``"jupyter"`` or ``"terminal"``.

    Told from the inside of the kernel: Colab's module, VS Code's environment
    variable, or an IPython kernel (JupyterLab, Notebook, Voilà, Binder).

    >>> front_end(environ={}, modules=["google.colab", "ipykernel"])
    'colab'
    >>> front_end(environ={}, modules=[])
    'terminal'
    """
    environ = os.environ if environ is None else environ
    modules = sys.modules if modules is None else modules
    if "google.colab" in modules:
        return "colab"
    if "VSCODE_PID" in environ:
        return "vscode"
    if "ipykernel" in modules:
        return "jupyter"
    return "terminal"


def static_plots_chosen(*, environ: Mapping[str, str] | None = None,
                        modules: Collection[str] | None = None) -> bool:
    """The dashboard's rule: ``FEDLAB_STATIC_PLOTS=1`` (``true``, ``yes``, ``on``) forces
    static figures and ``=0`` live widgets; otherwise Colab and VS Code get static
    figures, where plotly's widget front end is known not to load.

    >>> static_plots_chosen(environ={"FEDLAB_STATIC_PLOTS": "0"}, modules=["google.colab"])
    False
    >>> static_plots_chosen(environ={"VSCODE_PID": "1"}, modules=[])
    True
    """
    flag = _static_plots_flag(os.environ if environ is None else environ)
    if flag is not None:
        return flag
    return front_end(environ=environ, modules=modules) in ("colab", "vscode")


def _static_plots_flag(environ: Mapping[str, str]) -> bool | None:
    """What ``FEDLAB_STATIC_PLOTS`` asks for: True (static), False (live), None (not set)."""
    flag = environ.get("FEDLAB_STATIC_PLOTS", "").strip().lower()
    if flag in ("1", "true", "yes", "on"):
        return True
    if flag in ("0", "false", "no", "off"):
        return False
    return None


def live_widgets_expected(*, environ: Mapping[str, str] | None = None,
                          modules: Collection[str] | None = None) -> tuple[bool, str]:
    """Whether the dashboard will draw live plotly widgets here, and why, in words.

    The same rule as the dashboard's choice: ``FEDLAB_STATIC_PLOTS=1`` forces
    static figures and ``=0`` live widgets; otherwise Colab and VS Code get
    static figures (plotly's widget front end does not load there). Outside a
    notebook kernel nothing is drawn at all.
    """
    environ = os.environ if environ is None else environ
    where = front_end(environ=environ, modules=modules)
    flag = _static_plots_flag(environ)
    if flag is True:
        return False, "FEDLAB_STATIC_PLOTS is set, so the dashboard draws static figures"
    if flag is False:
        return True, "FEDLAB_STATIC_PLOTS=0 asks for live widgets whatever the front end"
    if where == "colab":
        return False, "on Colab plotly's live widget does not render: the dashboard draws static figures"
    if where == "vscode":
        return False, "in VS Code plotly's live widget does not render: the dashboard draws static figures"
    if where == "terminal":
        return False, "this is not a notebook kernel: there is nothing to draw widgets in"
    return True, "a Jupyter kernel: the dashboard's charts update live"


def usable_cpus() -> tuple[int, int]:
    """``(cores this process may use, cores the machine has)``.

    A container (Binder, a cloud notebook) often sees every core of its host
    but may use only a share of them: the affinity mask and a cgroup CPU
    quota (``/sys/fs/cgroup/cpu.max``) say how many.
    """
    machine = os.cpu_count() or 1
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else machine
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            usable = min(usable, max(1, int(int(quota) / int(period))))
    except (OSError, ValueError):
        pass   # no cgroup v2 quota to honour (a laptop, macOS, Windows)
    return usable, machine


def speed_probe(seconds: float = 1.0) -> dict[str, float]:
    """Run notebook 01's experiment (5 hospitals, 3 000 patients, baselines on) for ``seconds``.

    Returns
    -------
    dict : ``setup_s`` (building the hospitals' data and models), ``rounds``
        (completed in the time), ``round_ms`` (mean milliseconds per round) and
        ``notebook01_s`` (what its 40 rounds would take: setup + 40 rounds).
    """
    if not (isinstance(seconds, (int, float)) and 0 < seconds <= 60):
        raise ValueError(f"seconds = {seconds!r} is not allowed: must be > 0 and ≤ 60")
    from fedlab_core.config import ExperimentConfig
    from fedlab_core.simulation import Simulation

    config = ExperimentConfig().with_overrides({
        "data.n_clients": 5, "data.n_samples": 3000, "data.size_skew": 0.9, "data.label_shift": 0.5,
        "data.covariate_shift": 0.5, "train.local_epochs": 2, "train.lr": 0.5,
        "federation.rounds": 100_000, "seed": 0})
    t0 = time.perf_counter()
    sim = Simulation(config)
    setup_s = time.perf_counter() - t0
    rounds, t1 = 0, time.perf_counter()
    while time.perf_counter() - t1 < seconds:
        sim.step()
        rounds += 1
    round_s = (time.perf_counter() - t1) / max(rounds, 1)
    return {"setup_s": setup_s, "rounds": float(rounds), "round_ms": 1000 * round_s,
            "notebook01_s": setup_s + 40 * round_s}


def _python_check() -> Check:
    found = f"{platform.python_version()} ({platform.system() or 'unknown system'})"
    if sys.version_info[:2] >= MIN_PYTHON:
        return Check("Python", "ok", found, "Recent enough.")
    need = ".".join(map(str, MIN_PYTHON))
    return Check("Python", "missing", found,
                 f"The kit needs Python {need} or newer: install a newer Python, or use Binder or Colab.")


def _torch_check() -> tuple[Check, object | None]:
    version = installed_version("torch")
    if version is None:
        return Check("PyTorch", "missing", "not installed",
                     "Install the CPU build: pip install torch --index-url "
                     "https://download.pytorch.org/whl/cpu (about 200 MB; no GPU is needed)."), None
    try:
        import torch
    except Exception as err:   # a broken install: say so instead of failing the whole report
        return Check("PyTorch", "missing", f"{version}, but it fails to load",
                     f"Reinstall PyTorch ({type(err).__name__}: {err})."), None
    build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "CPU build"
    if not _at_least(version, MIN_VERSIONS["torch"]):
        return Check("PyTorch", "missing", f"{version} ({build})",
                     f"The kit needs PyTorch {MIN_VERSIONS['torch']} or newer: pip install -U torch."), torch
    return Check("PyTorch", "ok", f"{version} ({build})",
                 "Trains every hospital's model at once; the course needs no GPU."), torch


def _core_check() -> Check:
    versions = {name: installed_version(name) for name in CORE_LIBRARIES}
    found = ", ".join(f"{name} {v or '—'}" for name, v in versions.items())
    missing = [name for name, v in versions.items() if v is None]
    old = [name for name, v in versions.items()
           if v is not None and name in MIN_VERSIONS and not _at_least(v, MIN_VERSIONS[name])]
    if missing or old:
        bad = missing + old
        return Check("Core libraries", "missing", found,
                     f"Install the kit with its dependencies (pip install -e . from the kit's folder); "
                     f"missing or too old: {', '.join(bad)}.")
    return Check("Core libraries", "ok", found, "Data, metrics and the privacy accountant.")


def _required_check(name: str, version: str | None, *, needed_for: str, too_old: str, ok: str) -> Check:
    """A library the notebooks cannot do without: missing, too old (``MIN_VERSIONS``), or ok."""
    if version is None:
        return Check(name, "missing", "not installed", f"{needed_for}: pip install {name}.")
    if not _at_least(version, MIN_VERSIONS[name]):
        return Check(name, "missing", version, f"{too_old}: pip install '{name}>={MIN_VERSIONS[name]}'.")
    return Check(name, "ok", version, ok)


def _plot_checks(live: bool, why: str) -> list[Check]:
    plotly, ipyw, anyw = (installed_version(n) for n in ("plotly", "ipywidgets", "anywidget"))
    checks = [
        _required_check("plotly", plotly, needed_for="Every figure of the course is a plotly figure",
                        too_old="Too old for the course's figures", ok="Draws every figure."),
        _required_check("ipywidgets", ipyw, needed_for="The dashboards' sliders and buttons need it",
                        too_old="Too old for the dashboards",
                        ok="Sliders, buttons and the dashboards (7 or 8 both work)."),
    ]
    # plotly 6 and later draw their live FigureWidget through anywidget; plotly 5 does not need it
    needs_anywidget = plotly is not None and _at_least(plotly, "6")
    if anyw is not None:
        checks.append(Check("anywidget", "ok", anyw, "Carries plotly's live charts."))
    elif needs_anywidget and live:
        checks.append(Check("anywidget", "missing", "not installed",
                            "plotly's live charts need it here: pip install anywidget."))
    else:
        checks.append(Check("anywidget", "optional", "not installed",
                            "Not needed here: the dashboard draws static figures."))
    where = front_end()
    names = {"colab": "Google Colab", "vscode": "VS Code", "jupyter": "a Jupyter kernel",
             "terminal": "a terminal (no notebook)"}
    if live:
        checks.append(Check("Live widgets", "ok", f"yes, in {names[where]}",
                            why[0].upper() + why[1:] + ". If a dashboard shows up as a line of text "
                            "(such as VBox(...)), set FEDLAB_STATIC_PLOTS=1 and restart the kernel."))
    elif where == "terminal":
        checks.append(Check("Live widgets", "info", f"none, in {names[where]}",
                            why[0].upper() + why[1:] + ". Open the notebooks in JupyterLab "
                            "(make lab), on Binder or on Colab."))
    else:
        checks.append(Check("Live widgets", "warn", f"static figures, in {names[where]}",
                            why[0].upper() + why[1:] + ". Every exercise still works; the dashboards "
                            "redraw their charts at most once a second."))
    return checks


def _secure_check() -> Check:
    versions = {name: installed_version(name) for name in SECURE_LIBRARIES}
    found = ", ".join(f"{name} {v or '—'}" for name, v in versions.items())
    missing = [name for name, v in versions.items() if v is None]
    if missing:
        return Check("Secure aggregation", "optional", found,
                     "Notebook 07 needs " + ", ".join(missing)
                     + ": pip install 'fedlab-core[secure]'. The other notebooks run without.")
    return Check("Secure aggregation", "ok", found, "Masking, Shamir shares and Paillier for notebook 07.")


def _flower_check() -> Check:
    version = installed_version("flwr")
    if version is None:
        return Check("Flower", "optional", "not installed",
                     "Only notebook 10 (real processes, real network) needs it: "
                     "pip install 'fedlab-core[flower]'.")
    return Check("Flower", "ok", version, "Notebook 10 can start a real federation on this machine.")


def _heart_check() -> Check:
    from fedlab_core.data.heart import ChecksumError, HeartDataNotFound, resolve_heart_dir

    try:   # look only: the download waits until a notebook first asks for the data
        folder = resolve_heart_dir(download_missing=False)
    except ChecksumError as err:
        return Check("UCI heart data", "warn", "files found, but altered",
                     f"Notebooks 02 and 08 will refuse them: {err}")
    except HeartDataNotFound as err:
        if os.environ.get("FEDLAB_HEART_DIR"):
            return Check("UCI heart data", "warn", "FEDLAB_HEART_DIR is set, but incomplete",
                         str(err).splitlines()[0])
        return Check("UCI heart data", "optional", "not on this computer yet",
                     "Notebooks 02 and 08 download the four small files (40 kB) on first use; "
                     "offline, put them in a folder and set FEDLAB_HEART_DIR to it.")
    return Check("UCI heart data", "ok", str(folder), "Four real hospitals for notebooks 02 and 08.")


def _threads_check(torch) -> Check:
    usable, machine = usable_cpus()
    threads = torch.get_num_threads() if torch is not None else None
    found = (f"{usable} usable of {machine} cores"
             + (f"; PyTorch uses {threads} threads" if threads is not None else ""))
    if threads is not None and threads > usable:
        return Check("CPU threads", "warn", found,
                     f"PyTorch would use more threads than this machine lets it run, which slows the "
                     f"CNN of notebook 09; run torch.set_num_threads({usable}) first.")
    return Check("CPU threads", "ok", found,
                 "Small federations train on one thread; notebook 09 sets one thread for its CNN too "
                 "(two are faster only on a quiet machine).")


def _speed_check(seconds: float) -> tuple[Check, dict[str, float]]:
    try:
        m = speed_probe(seconds)
    except Exception as err:   # the probe is a measurement, not a requirement: report, go on
        return Check("Speed", "warn", "the probe failed", f"{type(err).__name__}: {err}"), {}
    found = (f"{m['round_ms']:.1f} ms a round ({m['rounds']:.0f} rounds in {seconds:g} s), "
             f"{m['setup_s']:.2f} s to set up")
    if m["notebook01_s"] < 5:
        advice = (f"Fast enough: notebook 01's 40 rounds take about {m['notebook01_s']:.1f} s here.")
        return Check("Speed", "ok", found, advice), m
    advice = (f"A slow or busy machine: notebook 01's 40 rounds take about {m['notebook01_s']:.0f} s. "
              "Close other programs, or set FEDLAB_FAST=1 before starting Jupyter for shorter runs.")
    return Check("Speed", "warn", found, advice), m


def check_environment(*, probe_seconds: float = 1.0, heart: bool = True) -> EnvironmentReport:
    """Check this computer for the course; see the module docstring.

    Parameters
    ----------
    probe_seconds : how long the speed probe trains (``0``: skip it).
    heart : look for the UCI heart data (on disk only; nothing is downloaded).
    """
    if not (isinstance(probe_seconds, (int, float)) and 0 <= probe_seconds <= 60):
        raise ValueError(f"probe_seconds = {probe_seconds!r} is not allowed: must be between 0 and 60")
    checks = [_python_check()]
    torch_check, torch = _torch_check()
    core = _core_check()
    checks += [torch_check, core]
    live, why = live_widgets_expected()
    checks += _plot_checks(live, why)
    checks += [_secure_check(), _flower_check()]
    if heart:
        checks.append(_heart_check())
    checks.append(_threads_check(torch))
    measurements: dict[str, float] = {}
    if probe_seconds > 0 and torch is not None and core.status == "ok":
        speed, measurements = _speed_check(probe_seconds)
        checks.append(speed)
    return EnvironmentReport(checks, measurements=measurements)


def main(argv: list[str] | None = None) -> int:
    """``python -m fedlab_core.environment [--quick]``: print the report; exit 1 if something is missing."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m fedlab_core.environment",
                                     description="Check this computer for the fedlab course.")
    parser.add_argument("--quick", action="store_true", help="skip the one-second speed probe")
    args = parser.parse_args(argv)
    report = check_environment(probe_seconds=0 if args.quick else 1.0)
    print(report.to_text())
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
