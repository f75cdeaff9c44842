"""ipywidgets dashboards: the only layer of fedlab that imports ipywidgets.

>>> from fedlab_core.ui import Dashboard   # doctest: +SKIP
>>> Dashboard()                            # doctest: +SKIP
>>> from fedlab_core.ui import RobustnessRace  # doctest: +SKIP
>>> RobustnessRace()                           # doctest: +SKIP
"""

from fedlab_core.ui.dashboard import Dashboard, static_plots_wanted
from fedlab_core.ui.race import RobustnessRace

__all__ = ["Dashboard", "RobustnessRace", "static_plots_wanted"]
