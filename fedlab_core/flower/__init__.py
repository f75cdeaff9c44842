"""Run fedlab experiments on Flower, the standard distributed FL engine.

- ``fedlab_core.flower.client``: the ``ClientApp`` (Flower's message API) that
  runs fedlab's local training on each hospital's node, on its data only;
- ``fedlab_core.flower.server``: the ``ServerApp`` with fedlab's sampling,
  aggregation, server optimisers and central DP;
- ``fedlab_core.flower.deployment``: ``Deployment``, which starts Flower's
  Deployment Engine on this machine (one SuperLink, one SuperNode per
  hospital, real processes on loopback, optionally TLS), runs the app, streams
  each round into a ``History`` and shuts every process down.

Flower is an optional extra (``pip install 'fedlab-core[flower]'``); nothing
here imports it until it is used.
"""

from __future__ import annotations

FLOWER_VERSION = "1.42"


def require_flwr():
    """Import Flower, or fail with the command that installs it."""
    try:
        import flwr
    except ImportError:
        raise ImportError("Flower is not installed: pip install 'fedlab-core[flower]' "
                          f"(flwr {FLOWER_VERSION}.x)") from None
    return flwr


def __getattr__(name: str):
    # ``from fedlab_core.flower import Deployment`` without importing Flower at package import
    if name in ("Deployment", "check_deployable"):
        from fedlab_core.flower import deployment as module

        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
