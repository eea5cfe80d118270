"""Which photo formats we decode, and how: Pillow, plus pillow-heif for HEIC/HEIF, plus rawpy for camera RAW."""

from __future__ import annotations

RAW_EXTENSIONS = frozenset({".dng", ".cr2", ".cr3", ".crw", ".nef", ".nrw", ".arw", ".srf", ".sr2", ".orf", ".rw2",
                            ".raf", ".pef", ".srw", ".3fr", ".erf", ".kdc", ".mos", ".mrw", ".x3f", ".iiq", ".rwl"})
HEIF_EXTENSIONS = frozenset({".heic", ".heif", ".hif"})


def heif_available() -> bool:
    """Register pillow-heif's HEIC/HEIF opener with Pillow (once); False when it is not installed."""
    try:
        import pillow_heif
    except ImportError:
        return False
    pillow_heif.register_heif_opener()  # idempotent
    return True


HEIF = heif_available()
