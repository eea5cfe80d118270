"""Which files on this machine the service may read: only those under the folders it was started with."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO


class PathRefused(Exception):
    """A requested path may not or cannot be read; ``status`` is the HTTP status that says why."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class AllowedFolders:
    """Resolves a requested path and refuses anything that is not a file inside an allowed folder.

    Both the path as given and the path after following every symlink must be
    inside an allowed folder, so neither ``..`` nor a symlink can lead out. ``open``
    then opens the resolved path once, from the allowed folder down, one component
    at a time without following symlinks, so a folder swapped for a symlink (or a
    file for a FIFO) between the check and the open is refused rather than read.
    """

    def __init__(self, folders: Iterable[Path]):
        self.folders: list[Path] = []  # symlinks followed
        self.named: list[Path] = []  # as the user named them (a folder reached through a symlinked parent)
        for folder in folders:
            resolved = Path(os.path.realpath(folder))
            if not resolved.is_dir():
                raise ValueError(f"--allow-folder {folder}: not a folder")
            self.folders.append(resolved)
            self.named.append(Path(os.path.abspath(folder)))

    def __bool__(self) -> bool:
        return bool(self.folders)

    @staticmethod
    def _inside(path: Path, folders: list[Path]) -> bool:
        return any(path.is_relative_to(folder) for folder in folders)

    def resolve(self, requested: str) -> Path:
        if not self.folders:
            raise PathRefused(403, "this server reads no files on this machine (start it with --allow-folder FOLDER)")
        if not requested or "\x00" in requested:
            raise PathRefused(400, "give the photo's full path as a non-empty string")
        try:
            requested.encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates ("\ud800"): no file system name
            raise PathRefused(400, "the path is not valid text (it holds unpaired UTF-16 surrogates)") from None
        try:
            return self._resolve(requested)
        except OSError as exc:  # a name too long, a loop of symlinks...
            raise PathRefused(400, f"that path cannot be used: {exc.strerror or exc}") from None

    def _resolve(self, requested: str) -> Path:
        given = Path(requested)
        if not given.is_absolute():
            raise PathRefused(400, f"give a full (absolute) path, not {requested!r}")
        if ".." in given.parts:
            raise PathRefused(403, "paths with '..' are refused")
        if not self._inside(given, self.named + self.folders):
            raise PathRefused(403, "that path is outside the folders this server may read")
        resolved = Path(os.path.realpath(given))
        if not self._inside(resolved, self.folders):
            raise PathRefused(403, "that path leads (through a symlink) outside the folders this server may read")
        if not resolved.exists():
            raise PathRefused(404, "no such file")
        if not resolved.is_file():
            raise PathRefused(400, "that path is not a file")
        return resolved

    def open(self, requested: str) -> tuple[BinaryIO, Path]:
        """The requested file, checked by ``resolve`` and opened race-free: (binary file, its resolved path)."""
        resolved = self.resolve(requested)
        if not (os.open in os.supports_dir_fd and hasattr(os, "O_NOFOLLOW")):  # Windows: no openat
            return open(resolved, "rb"), resolved
        folder = max((f for f in self.folders if resolved.is_relative_to(f)), key=lambda f: len(f.parts))
        parts = resolved.relative_to(folder).parts
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            for part in parts[:-1]:
                inner = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
                os.close(fd)
                fd = inner
            inner = os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY, dir_fd=fd)
        except OSError as exc:
            raise _refusal(exc) from None
        finally:
            os.close(fd)
        if not stat.S_ISREG(os.fstat(inner).st_mode):
            os.close(inner)
            raise PathRefused(400, "that path is not a regular file")
        return os.fdopen(inner, "rb"), resolved


def _refusal(exc: OSError) -> PathRefused:
    """An open that failed after the checks passed: the path changed meanwhile, or cannot be read."""
    if exc.errno in (errno.ELOOP, errno.ENOTDIR):
        return PathRefused(403, "that path changed while it was opened (a symlink appeared in it); refused")
    if exc.errno == errno.ENOENT:
        return PathRefused(404, "no such file")
    if exc.errno == errno.EACCES:
        return PathRefused(403, "this server may not read that file (permission denied)")
    return PathRefused(400, f"that file cannot be opened: {exc.strerror}")
