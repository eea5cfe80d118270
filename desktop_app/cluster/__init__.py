"""``photocaption cluster``: batch captioning on Ray Data for archives that outgrow one machine (the optional
``cluster`` extra), and writing its results back into the photos and the library (``write``, one local process).

Only ``desktop_app.cli`` imports it, to register the subcommand; Ray and pyarrow are imported when a command
runs, so the rest of photocaption works without the extra.
"""
