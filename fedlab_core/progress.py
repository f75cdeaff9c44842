"""Progress for a notebook cell that computes for seconds: one line, updated in place.

    runs ████████░░░░░░░░░░░░ 7 / 18 · 5.1 s

A learner who presses Shift+Enter on a cell that trains eighteen models should see that
something happens, how far it got and how long it has taken. ``track`` wraps the loop
of such a cell::

    for seed in track(SEEDS, label="seeds"):
        ...

Why a line of text and not a widget bar (tqdm's notebook bar): the line is an ordinary
output, updated through IPython's display handles. It updates live in JupyterLab,
Colab (whose ipywidgets 7 we do not control), VS Code and Voilà, and what stays after
the cell ("18 / 18 · 13.9 s") is plain text that survives a page reload, a saved
notebook and a restarted kernel, where a widget shows "model not found". Outside a
notebook ``track`` shows nothing: the command line has its own tqdm bars.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sized
from typing import TypeVar

T = TypeVar("T")

BAR_WIDTH = 20        # characters of the bar
MIN_UPDATE_S = 0.2    # at most five redraws a second: each one is a message to the browser


def progress_line(label: str, done: int, total: int | None, seconds: float) -> str:
    """The text of the progress line.

    >>> progress_line("runs", 7, 18, 5.08)
    'runs ████████░░░░░░░░░░░░ 7 / 18 · 5.1 s'
    >>> progress_line("runs", 18, 18, 13.94)
    'runs ████████████████████ 18 / 18 · 13.9 s'
    >>> progress_line("rounds", 3, None, 0.5)
    'rounds 3 done · 0.5 s'
    """
    if not total:
        return f"{label} {done} done · {seconds:.1f} s"
    filled = round(BAR_WIDTH * min(done, total) / total)
    bar = "█" * filled + "░" * (BAR_WIDTH - filled)
    return f"{label} {bar} {done} / {total} · {seconds:.1f} s"


def _in_notebook() -> bool:
    """True in a Jupyter kernel (JupyterLab, Colab, VS Code, Voilà), not in a terminal."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def _display(line: str):
    from IPython.display import display

    return display({"text/plain": line}, raw=True, display_id=True)


class ProgressLine:
    """One progress line in a notebook, updated in place (nothing outside a notebook).

    ``advance()`` counts one more done; calling the line as ``line(done, total, what)``
    sets the count, the form the kit's long functions report progress in (e.g.
    ``heart_benchmark(progress=ProgressLine("benchmark"))``); ``close()`` draws the
    final line. The line redraws at most every ``MIN_UPDATE_S`` seconds.
    """

    def __init__(self, label: str, *, total: int | None = None):
        self.label, self.total, self.done = label, total, 0
        self._t0 = self._last = time.perf_counter()
        self._closed = False
        self._handle = _display(self._line()) if _in_notebook() else None

    def _line(self) -> str:
        return progress_line(self.label, self.done, self.total, time.perf_counter() - self._t0)

    def _draw(self, line: str) -> None:
        if self._handle is not None:
            self._handle.update({"text/plain": line}, raw=True)

    def _redraw_now_and_then(self) -> None:
        now = time.perf_counter()
        if now - self._last >= MIN_UPDATE_S:
            self._draw(self._line())
            self._last = now

    def advance(self, n: int = 1) -> None:
        self.done += n
        self._redraw_now_and_then()

    def __call__(self, done: int, total: int | None = None, what: str | None = None) -> None:
        self.done = done
        if total is not None:
            self.total = total
        if self.total is not None and done >= self.total:
            self.close()
        else:
            self._redraw_now_and_then()

    def close(self, *, note: str | None = None) -> None:
        """The final line: what was done and in how long, and ``note`` (why it ended
        early, say) after it."""
        if self._closed:
            return
        self._closed = True
        self._draw(self._line() + (f" · {note}" if note else ""))


def track(items: Iterable[T], *, label: str, total: int | None = None) -> Iterator[T]:
    """Yield every item of ``items``, showing in a notebook how many are done and since
    when: ``label ██████░░░ k / n · t s`` (a :class:`ProgressLine`). ``total`` defaults
    to ``len(items)``.

    An item counts as done when the loop asks for the next one. A loop that stops early
    (``break``, an error) leaves the line at what was done, with "stopped". Outside a
    notebook it yields the items and shows nothing.

    >>> [x * x for x in track(range(4), label="squares")]   # no notebook here: no output
    [0, 1, 4, 9]
    """
    if total is None and isinstance(items, Sized):
        total = len(items)
    line = ProgressLine(label, total=total)
    finished = False
    try:
        for item in items:
            yield item
            line.advance()
        finished = True
    finally:
        line.close(note=None if finished else "stopped")
