"""ipywidgets dashboards: the only layer of fedlab that imports ipywidgets.

>>> from fedlab_core.ui import Dashboard   # doctest: +SKIP
>>> Dashboard()                            # doctest: +SKIP
"""

from fedlab_core.ui.dashboard import Dashboard, static_plots_wanted

__all__ = ["Dashboard", "static_plots_wanted"]
