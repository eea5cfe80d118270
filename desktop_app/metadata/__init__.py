"""Captions in photo metadata: EXIF and XMP embedded in JPEGs, XMP sidecars for everything else."""
