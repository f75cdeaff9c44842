"""Helpers for the headless widget tests (test_ui.py, test_race.py)."""

from __future__ import annotations

import time


def points(fig) -> list[int]:
    """Points per trace of a plotly figure."""
    return [len(t.x) for t in fig.data]


def wait_for(cond, timeout: float = 20.0) -> bool:
    """Poll ``cond()`` until true or ``timeout`` seconds pass."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.01)
    return False
