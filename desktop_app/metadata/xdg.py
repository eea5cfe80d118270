"""The freedesktop extended attributes desktop search reads: ``user.xdg.comment`` and ``user.xdg.tags``.

The Shared File Metadata spec (freedesktop.org CommonExtendedAttributes) names them;
KDE's Baloo indexes both, GNOME's extractors read the comment. They live on the
file, not in it, so they survive no copy to a file system without user xattrs;
where the file system has none, nothing is written and nothing is said.
Which values may be replaced is decided by ``policy.xdg_updates``.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

COMMENT, TAGS = "user.xdg.comment", "user.xdg.tags"
NAMES = (COMMENT, TAGS)
UNSUPPORTED = (errno.ENOTSUP, errno.EOPNOTSUPP, errno.EPERM, errno.EACCES, errno.EROFS)


def supported() -> bool:
    return hasattr(os, "getxattr")


def read(path: Path | int) -> dict[str, str] | None:
    """The attributes present (UTF-8, undecodable bytes replaced); None where the file system has no user xattrs."""
    if not supported():
        return None
    values = {}
    for name in NAMES:
        try:
            values[name] = os.getxattr(path, name).decode("utf-8", "replace")
        except OSError as exc:
            if exc.errno == errno.ENODATA:
                continue
            if exc.errno in UNSUPPORTED:
                return None
            raise
    return values


def write(path: Path | int, values: dict[str, str | None]) -> bool:
    """Set (or, for None, remove) each attribute; False where the file system refuses user xattrs."""
    if not supported():
        return False
    try:
        for name, value in values.items():
            if value is not None:
                os.setxattr(path, name, value.encode("utf-8"))
            else:
                try:
                    os.removexattr(path, name)
                except OSError as exc:
                    if exc.errno != errno.ENODATA:
                        raise
    except OSError as exc:
        if exc.errno in UNSUPPORTED or exc.errno == errno.E2BIG or exc.errno == errno.ENOSPC:
            return False
        raise
    return True


def tags_value(keywords: list[str]) -> str:
    """Keywords as one comma-separated value (the spec's list form); a comma inside a keyword becomes a space."""
    return ",".join(dict.fromkeys(" ".join(k.replace(",", " ").split()) for k in keywords if k.strip()))


def tags_of(value: str) -> list[str]:
    return [tag.strip() for tag in value.split(",") if tag.strip()]
