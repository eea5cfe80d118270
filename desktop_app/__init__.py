"""photocaption desktop app: photo -> pixels -> encoder -> decode loop -> caption -> metadata + index -> UI.

Package map (data flows top to bottom):
    bundle/      the model bundle format (manifest, vocabulary), shared with model_export
    photos/      finding photos and turning them into normalised pixels
    captioning/  onnxruntime sessions, greedy/beam decode loop, folder pipeline; options.py: the app's
                 decode defaults and limits, which every front end reads
    metadata/    reading and writing captions in EXIF, XMP and sidecars
    library/     the SQLite full-text index of captions; keep.py: write a caption, read it back, index
                 it (the one path the CLI and the GUI's writers take)
    cli.py       headless command line
    gui/         the PySide6 app
"""

__version__ = "0.1.0"
