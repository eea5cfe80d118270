"""User settings and what the app remembers (last folder, recent folders, window layout), persisted with
QSettings under a settings version, and the dialog that edits them."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDialog, QDialogButtonBox, QFileDialog, QFormLayout,
                               QHBoxLayout, QLabel, QLineEdit, QMainWindow, QMenu, QMessageBox, QPushButton, QSpinBox,
                               QSplitter, QWidget)

from desktop_app.bundle.format import BundleError, load_bundle
from desktop_app.captioning.options import LIMITS, DecodeOptions
from desktop_app.metadata.store import EMBED, SIDECAR, WriteOptions

SETTINGS_VERSION = 2
RECENT_FOLDERS = 8


def upgrade(store: QSettings) -> None:
    """Bring settings written by an older version up to SETTINGS_VERSION, one step at a time."""
    version = int(store.value("settings_version", 1))
    if version < 2:
        # version 1 had no memory keys; a "cuda" saved after CUDA had just failed left the model unusable
        if store.value("provider") == "cuda":
            store.setValue("provider", "auto")
    store.setValue("settings_version", SETTINGS_VERSION)
    store.sync()


class Memory:
    """What the app remembers between sessions: the last folder, recent folders, window geometry and layout."""

    def __init__(self, store: QSettings):
        self.store = store

    @property
    def last_folder(self) -> str:
        return str(self.store.value("memory/last_folder", ""))

    def recent_folders(self) -> list[str]:
        value = self.store.value("memory/recent_folders", [])
        folders = [value] if isinstance(value, str) else list(value or [])
        return [f for f in folders if f]

    def opened(self, folder: Path) -> None:
        folder_text = str(folder)
        recent = [folder_text] + [f for f in self.recent_folders() if f != folder_text]
        self.store.setValue("memory/last_folder", folder_text)
        self.store.setValue("memory/recent_folders", recent[:RECENT_FOLDERS])
        self.store.sync()

    def save_window(self, geometry: QByteArray, state: QByteArray, splitters: dict[str, QByteArray]) -> None:
        self.store.setValue("memory/geometry", geometry)
        self.store.setValue("memory/state", state)
        for name, value in splitters.items():
            self.store.setValue(f"memory/splitter_{name}", value)
        self.store.sync()

    def remember_window(self, window: QMainWindow, splitters: list[QSplitter]) -> None:
        self.save_window(window.saveGeometry(), window.saveState(), {s.objectName(): s.saveState() for s in splitters})

    def restore_window(self, window: QMainWindow, splitters: list[QSplitter]) -> None:
        """The window's size, docks and splitters as they were when it last closed."""
        geometry, state = self.window()
        if geometry is not None:
            window.restoreGeometry(geometry)
        if state is not None:
            window.restoreState(state)
        for splitter in splitters:
            saved = self.splitter(splitter.objectName())
            if saved is not None:
                splitter.restoreState(saved)

    def fill_recent(self, menu: QMenu, open_folder) -> None:
        """The Open Recent menu: each recent folder, opened by ``open_folder(Path)``."""
        menu.clear()
        for folder in self.recent_folders():
            menu.addAction(folder, lambda folder=folder: open_folder(Path(folder)))
        menu.setEnabled(not menu.isEmpty())

    def window(self) -> tuple[QByteArray | None, QByteArray | None]:
        return self.store.value("memory/geometry"), self.store.value("memory/state")

    def splitter(self, name: str) -> QByteArray | None:
        return self.store.value(f"memory/splitter_{name}")


@dataclass
class AppSettings:
    model_path: str = ""  # empty: the bundled default model
    provider: str = "auto"
    beam_size: int = DecodeOptions.beam_size  # the app's decode defaults and limits: captioning/options.py
    max_length: int = DecodeOptions.max_length
    write_mode: str = EMBED
    sidecar_naming: str = "ext"
    write_exif: bool = True
    write_keywords: bool = True
    overwrite_person_captions: bool = False
    keep_mtime: bool = True
    write_as_captioned: bool = False  # write each caption to its photo as soon as it is made (undoable)
    recursive: bool = True

    @classmethod
    def load(cls, store: QSettings) -> "AppSettings":
        upgrade(store)
        values = {}
        for f in fields(cls):
            raw = store.value(f.name, f.default)
            values[f.name] = (raw in (True, "true", "1", 1)) if f.type in ("bool", bool) else type(f.default)(raw)
        return cls(**values)

    def save(self, store: QSettings) -> None:
        for name, value in asdict(self).items():
            store.setValue(name, value)
        store.sync()

    def write_options(self, overwrite: bool | None = None) -> WriteOptions:
        return WriteOptions(mode=self.write_mode, sidecar_naming=self.sidecar_naming,
                            overwrite=self.overwrite_person_captions if overwrite is None else overwrite,
                            keep_mtime=self.keep_mtime, write_exif=self.write_exif, write_keywords=self.write_keywords)


class SettingsDialog(QDialog):
    def __init__(self, settings: AppSettings, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.settings = settings
        form = QFormLayout(self)
        self.model_path = QLineEdit(settings.model_path)
        self.model_path.setPlaceholderText("bundled default model")
        self.model_path.setAccessibleName("Model bundle folder")
        browse = QPushButton("&Browse…")
        browse.clicked.connect(self._browse)
        row = QHBoxLayout()
        row.addWidget(self.model_path)
        row.addWidget(browse)
        form.addRow(QLabel("&Model bundle:", buddy=self.model_path), row)
        self.provider = self._combo(["auto", "cuda", "cpu"], settings.provider, "Execution provider")
        form.addRow("&Run on:", self.provider)
        self.beam = self._spin(*LIMITS["beam_size"], settings.beam_size, "Beam width")
        form.addRow("Beam &width:", self.beam)
        self.max_length = self._spin(*LIMITS["max_length"], settings.max_length, "Longest caption in words")
        form.addRow("Longest caption (&words):", self.max_length)
        self.write_mode = self._combo([EMBED, SIDECAR], settings.write_mode, "Where to write captions")
        form.addRow("Write &captions:", self.write_mode)
        self.naming = self._combo(["ext", "stem"], settings.sidecar_naming, "Sidecar naming: photo.jpg.xmp or photo.xmp")
        form.addRow("&Sidecar name (ext = photo.jpg.xmp):", self.naming)
        self.exif = self._check("Also write EXIF ImageDescription/XPComment", settings.write_exif)
        self.keywords = self._check("Add keywords (dc:subject)", settings.write_keywords)
        self.overwrite = self._check("Replace captions a person wrote", settings.overwrite_person_captions)
        self.mtime = self._check("Keep photos' modification time", settings.keep_mtime)
        self.auto_write = self._check("Write each caption as soon as it is made", settings.write_as_captioned)
        for box in (self.exif, self.keywords, self.overwrite, self.mtime, self.auto_write):
            form.addRow(box)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def _combo(self, items, current, name):
        box = QComboBox()
        box.addItems(items)
        box.setCurrentText(current)
        box.setAccessibleName(name)
        return box

    def _spin(self, low, high, value, name):
        box = QSpinBox()
        box.setRange(low, high)
        box.setValue(value)
        box.setAccessibleName(name)
        return box

    def _check(self, text, value):
        box = QCheckBox(text)
        box.setChecked(value)
        return box

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Choose a model bundle folder")
        if folder:
            self.model_path.setText(folder)

    def accept(self) -> None:
        path = self.model_path.text().strip()
        if path:
            try:
                load_bundle(Path(path))
            except BundleError as exc:
                QMessageBox.warning(self, "Not a usable model bundle", str(exc))
                return
        self.settings = AppSettings(
            model_path=path, provider=self.provider.currentText(), beam_size=self.beam.value(),
            max_length=self.max_length.value(), write_mode=self.write_mode.currentText(),
            sidecar_naming=self.naming.currentText(), write_exif=self.exif.isChecked(),
            write_keywords=self.keywords.isChecked(), overwrite_person_captions=self.overwrite.isChecked(),
            keep_mtime=self.mtime.isChecked(), write_as_captioned=self.auto_write.isChecked(),
            recursive=self.settings.recursive)
        super().accept()
