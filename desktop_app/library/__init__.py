"""The photo library index: what is captioned, searchable by words."""
