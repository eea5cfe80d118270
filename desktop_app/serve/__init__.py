"""``photocaption serve``: a local HTTP captioning service (the optional ``serve`` extra).

It sits beside ``cli`` and ``gui`` at the top of the data path: one loaded
``Captioner`` answers every request, concurrent requests share model batches,
and nothing here is imported by the GUI. Starlette and uvicorn are imported
only when the server starts, so the rest of the CLI works without the extra.
"""
