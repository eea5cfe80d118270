"""photocaption desktop app: photo -> pixels -> encoder -> decode loop -> caption -> metadata + index -> UI.

Package map (data flows top to bottom):
    bundle/      the model bundle format (manifest, vocabulary), shared with model_export
    photos/      finding photos and turning them into normalised pixels
    captioning/  onnxruntime sessions, greedy/beam decode loop, folder pipeline
    metadata/    reading and writing captions in EXIF, XMP and sidecars
    library/     the SQLite full-text index of captions
    cli.py       headless command line
    gui/         the PySide6 app
"""

__version__ = "0.1.0"
