"""The PySide6 app: a thumbnail grid, a preview with attention maps, and a caption editor."""
