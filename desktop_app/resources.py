"""Where the shipped resources (default model bundle, icons, sample photos) live.

One place for the path, so a source checkout, an editable install and the
PyInstaller app (which puts ``resources/`` beside the packages) all agree.
"""

from pathlib import Path

RESOURCES = Path(__file__).resolve().parents[1] / "resources"
DEFAULT_BUNDLE = RESOURCES / "models" / "default"
APP_ICON = RESOURCES / "icons" / "photocaption.svg"
SAMPLE_PHOTOS = RESOURCES / "samples"
SEARCH_TERMS = RESOURCES / "search_terms.json"  # everyday search words and what they cover (model_export/terms.py)
