"""Plain functions run off the UI thread, their results handed back on it (as Picard's ``run_task``).

A ``Background`` runs each function on its own thread pool and emits ``done(tag, result, error)`` on the
thread that made it (the UI thread): the tag says what the result answers, so a controller can drop a
result that no longer fits (a folder closed since, a newer search asked).
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal, Slot


class _Job(QRunnable):
    def __init__(self, tag: object, work: Callable[[], object], arrived: Signal):
        super().__init__()
        self.tag, self.work, self.arrived = tag, work, arrived

    def run(self) -> None:
        try:
            result = self.work()
        except Exception as exc:  # handed back: the UI thread says what went wrong
            self.arrived.emit(self.tag, None, exc)
        else:
            self.arrived.emit(self.tag, result, None)


class Background(QObject):
    """Runs functions on ``threads`` threads of its own; ``done`` on the UI thread for each."""

    done = Signal(object, object, object)  # tag, result, exception (None when it worked)
    _arrived = Signal(object, object, object)  # emitted on a pool thread; queued to this object's thread

    def __init__(self, threads: int = 1, parent: QObject | None = None):
        super().__init__(parent)
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(threads)
        self.running = 0  # jobs started and not yet handed back
        self._arrived.connect(self._hand_back)

    def run(self, tag: object, work: Callable[[], object]) -> None:
        self.running += 1
        self.pool.start(_Job(tag, work, self._arrived))

    @Slot(object, object, object)
    def _hand_back(self, tag: object, result: object, error: object) -> None:
        self.running -= 1
        self.done.emit(tag, result, error)

    def wait(self, milliseconds: int = 30000) -> bool:
        """Let the running jobs end (on closing); their results are then dropped."""
        return self.pool.waitForDone(milliseconds)
