"""Opening a folder, and leaving it (or quitting) with unsaved work: what to ask and what happens then,
with no widget.

Opening shows the photos at once (drafts, model details and failures from earlier sessions come
back with them) and reads the captions they hold in the background. Before a folder is left, a person is asked (``ask``: the window's dialog, or a test standing in) whether to write all, keep the
drafts, discard them or stay. Writing all runs on the writer thread: the quit or the other folder then
waits for the writes (``Runs.close_after_write`` / ``open_after_write``), and a write that fails stays.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QCoreApplication

from desktop_app.gui.messages import count_of
from desktop_app.gui.panels import DISCARD, KEEP, WRITE
from desktop_app.gui.runs import Runs
from desktop_app.gui.session import Session
from desktop_app.gui.settings import Memory
from desktop_app.photos.discover import find_photos


class Folders:
    """Opens folders; says whether the open one may be left now (``ask(doing)``: WRITE, KEEP, DISCARD or CANCEL)."""

    def __init__(self, session: Session, runs: Runs, memory: Memory, ask: Callable[[str], str]):
        self.session, self.runs, self.memory, self.ask = session, runs, memory, ask

    def open(self, folder: Path) -> str:
        """Show this folder's photos now and read their captions in the background; returns what to say."""
        folder = Path(folder).resolve()
        paths = list(find_photos([folder], self.runs.settings.recursive))
        self.session.open(folder, paths)
        self.memory.opened(folder)
        self.runs.scan(folder)
        restored = self.session.restored_drafts
        return (f"{count_of(len(paths), 'photo')}; reading their captions…"
                + (f" {count_of(restored, 'unsaved caption')} kept from last time" if restored else ""))

    def settle_unsaved(self, doing: str) -> bool:
        """Ask about unsaved work before leaving it; True when it is fine to go on now."""
        if not self.session.unsaved_items():
            return True
        choice = self.ask(doing)
        if choice == DISCARD:
            self.session.discard_all()
        elif choice == WRITE:
            if self.runs.write(self.session.items):
                self.runs.close_after_write = doing == "quit"
                return False  # goes on (quits) when the writes are done
        return choice in (KEEP, DISCARD)

    def last_folder(self) -> Path | None:
        """The folder of the last session, if it is still there (as photo managers reopen it)."""
        last = self.memory.last_folder
        return Path(last) if last and Path(last).is_dir() else None

    def discard_unsaved(self, confirm: Callable[[int], bool]) -> bool:
        """Drop every unsaved caption and edit of the folder if ``confirm(how many)``; True when they were."""
        count = len(self.session.unsaved_items())
        if not count:
            self.runs.message.emit("nothing unsaved", 3000)
            return False
        return confirm(count) and self.session.discard_all() == count

    def may_open(self, folder: Path) -> bool:
        """Whether another folder may be opened now (after writing everything, it opens by itself)."""
        if self.runs.busy:
            self.runs.message.emit("wait for the current captioning or writing to finish (Esc cancels)", 5000)
            return False
        if not self.settle_unsaved("open another folder"):
            if self.runs.write_worker is not None:  # writing everything first: open it when that is done
                self.runs.open_after_write = Path(folder)
            return False
        return True

    def may_quit(self) -> bool:
        """Whether the window may close now: a write runs to its end first (then it closes by itself); a caption
        run stops (its captions so far are drafts); unsaved work is asked about."""
        if self.runs.write_worker is not None:
            self.runs.message.emit("still writing: the window closes when it is done", 5000)
            self.runs.close_after_write = True
            return False
        if self.runs.caption_worker is not None:
            self.runs.stop_captioning()
            QCoreApplication.processEvents()  # take in the worker's last outcomes
        if not self.settle_unsaved("quit"):
            return False
        self.runs.wait_all()
        return True
