"""User settings, persisted with QSettings, and the dialog that edits them."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDialog, QDialogButtonBox, QFileDialog, QFormLayout,
                               QHBoxLayout, QLineEdit, QMessageBox, QPushButton, QSpinBox, QWidget)

from desktop_app.bundle.format import BundleError, load_bundle
from desktop_app.metadata.store import EMBED, SIDECAR, WriteOptions


@dataclass
class AppSettings:
    model_path: str = ""  # empty: the bundled default model
    provider: str = "auto"
    beam_size: int = 3
    max_length: int = 20
    write_mode: str = EMBED
    sidecar_naming: str = "ext"
    write_exif: bool = True
    write_keywords: bool = True
    overwrite_person_captions: bool = False
    keep_mtime: bool = True
    write_as_captioned: bool = False  # write each caption to its photo as soon as it is made
    recursive: bool = True

    @classmethod
    def load(cls, store: QSettings) -> "AppSettings":
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
        form.addRow("&Model bundle:", row)
        self.provider = self._combo(["auto", "cuda", "cpu"], settings.provider, "Execution provider")
        form.addRow("&Run on:", self.provider)
        self.beam = self._spin(1, 10, settings.beam_size, "Beam width")
        form.addRow("Beam &width:", self.beam)
        self.max_length = self._spin(5, 40, settings.max_length, "Longest caption in words")
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
