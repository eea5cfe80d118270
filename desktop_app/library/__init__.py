"""The photo library index: what is captioned, searchable by words; and keeping a caption (write, read back,
index) in one place for every front end (``keep``)."""
