"""Which files on this machine the service may read: only those under the folders it was started with."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path


class PathRefused(Exception):
    """A requested path may not or cannot be read; ``status`` is the HTTP status that says why."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class AllowedFolders:
    """Resolves a requested path and refuses anything that is not a file inside an allowed folder.

    Both the path as given and the path after following every symlink must be
    inside an allowed folder, so neither ``..`` nor a symlink can lead out; the
    caller then opens the resolved path, not the one it was given.
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
