"""Imports point down only: the core never loads plotly or ipywidgets, nor Flower
until a deployment is made."""

import subprocess
import sys

import pytest

CORE = ["fedlab_core", "fedlab_core.simulation", "fedlab_core.cli", "fedlab_core.data",
        "fedlab_core.partition", "fedlab_core.heterogeneity", "fedlab_core.history",
        "fedlab_core.privacy.budget", "fedlab_core.privacy.frontier", "fedlab_core.privacy.membership",
        "fedlab_core.privacy.inversion", "fedlab_core.flower", "fedlab_core.flower.deployment"]


@pytest.mark.parametrize("module", CORE)
def test_core_imports_neither_plotly_nor_ipywidgets(module):
    code = (f"import sys, {module}\n"
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('plotly', 'ipywidgets'))\n"
            "print(','.join(bad))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"{module} loads {out.stdout.strip()}"


def test_import_fedlab_core_does_not_load_torch():
    code = "import sys, fedlab_core; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("module", ["fedlab_core.cli", "fedlab_core.flower", "fedlab_core.flower.deployment",
                                    "fedlab_core.simulation"])
def test_flower_is_imported_only_when_a_deployment_is_made(module):
    code = f"import sys, {module}; print('flwr' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
