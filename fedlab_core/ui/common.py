"""What the dashboard and the robustness race share: a run in a background thread, the
status line, error text, and re-syncing a live plotly widget."""

from __future__ import annotations

import html
import threading

import ipywidgets as widgets

STATUS_COLORS = {"info": "#333", "done": "#0072B2", "stopped": "#D55E00"}


def describe(e: BaseException) -> str:
    """A ``ValueError`` from the config already names the field; others get their type."""
    return str(e) if isinstance(e, ValueError) else f"{type(e).__name__}: {e}"


def error_html(text: str) -> str:
    return f'<span style="color:#D55E00"><b>⚠</b> {html.escape(text)}</span>'


def show(w: widgets.Widget, visible: bool) -> None:
    w.layout.display = "" if visible else "none"


def button(description: str, icon: str, style: str, css_class: str, tooltip: str) -> widgets.Button:
    """A control button with a stable CSS class, for tests to find it."""
    b = widgets.Button(description=description, icon=icon, button_style=style, tooltip=tooltip,
                       layout=widgets.Layout(width="96px"))
    b.add_class(css_class)
    return b


def resync(fig) -> None:
    """Copy a live ``FigureWidget``'s whole state into its synced widget state.

    ``batch_update`` streams deltas only; a view that connects later (page reload,
    saved widget state, Voila) reads the synced state, which plotly refreshes on
    construction and on display only (shared/notes/browser-testing.md, pitfall 4).
    """
    try:
        fig._repr_mimebundle_()
    except Exception:
        pass


class BackgroundRun:
    """Rounds in a daemon thread, so the kernel stays free for the Stop button.

    The widget provides ``status`` (an HTML widget) and ``_running_simulations()``;
    Stop asks each to finish after its current round, and their histories stay.
    """

    _thread: threading.Thread | None = None
    _stop_event: threading.Event | None = None

    @property
    def running(self) -> bool:
        """Whether a background run is going on."""
        return self._thread is not None and self._thread.is_alive()

    def _start(self, loop, *args, name: str) -> None:
        self._stop_event = threading.Event()
        self._thread = threading.Thread(target=loop, args=(*args, self._stop_event),
                                        name=name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop after the current round; what was done stays."""
        if not self.running:
            return
        self._stop_event.set()
        for sim in self._running_simulations():
            sim.request_stop()
        self._set_status("stopping after this round…", kind="stopped")

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for a background run to end; ``True`` if none is left running."""
        if self._thread is not None:
            self._thread.join(timeout)
        return not self.running

    def _set_status(self, text: str, *, kind: str = "info") -> None:
        color = STATUS_COLORS.get(kind, STATUS_COLORS["info"])
        self.status.value = f'<span style="color:{color}">{html.escape(text)}</span>'

    def _running_simulations(self):
        raise NotImplementedError
