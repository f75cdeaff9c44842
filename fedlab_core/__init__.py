"""fedlab_core: the engine of the fedlab federated-learning teaching kit.

The core (config, data, models, training, aggregation, simulation) needs only
torch, NumPy, SciPy, pandas and scikit-learn; figures (``fedlab_core.viz``,
plotly) and the dashboard (``fedlab_core.ui``, ipywidgets) are separate layers
imported on demand.
"""

__version__ = "0.1.0"

from fedlab_core.config import ExperimentConfig  # noqa: E402  (light: no torch)


def __getattr__(name):
    # Simulation pulls in torch; load it on first use so `import fedlab_core` stays quick
    if name in ("Simulation", "History"):
        from fedlab_core import simulation

        return getattr(simulation, name)
    raise AttributeError(f"module 'fedlab_core' has no attribute {name!r}")


__all__ = ["ExperimentConfig", "Simulation", "History", "__version__"]
