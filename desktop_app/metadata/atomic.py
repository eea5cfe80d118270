"""Replace a file without ever leaving it half-written."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path


def replace_atomically(path: Path, data: bytes, keep_mtime: bool = True) -> None:
    """Write ``data`` to a temp file beside ``path``, flush it to disk, then rename it over ``path``.

    A crash at any moment leaves either the old file or the new one, never a
    mix. Permissions are copied; the modification time too, when asked, so
    photo managers that sort by date see no change.
    """
    path = Path(path)
    existing = path.exists()
    stat = path.stat() if existing else None
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".photocaption-tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if existing:
            shutil.copymode(path, temp)
            if keep_mtime:
                os.utime(temp, ns=(stat.st_atime_ns, stat.st_mtime_ns))
        os.replace(temp, path)
    except BaseException:
        if os.path.exists(temp):
            os.unlink(temp)
        raise
    if hasattr(os, "O_DIRECTORY"):  # make the rename itself durable
        dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
