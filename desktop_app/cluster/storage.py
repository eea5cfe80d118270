"""Where a cluster run's photos and results live: local folders, or any file system pyarrow knows by its URI.

A SOURCE or ``--out`` is a local path, or a URI ``pyarrow.fs.FileSystem.from_uri`` understands (``file://``,
``s3://bucket/prefix``, ``gs://``, ``hdfs://``, with their query options, e.g.
``s3://bucket/photos?endpoint_override=http://host:9000``). A ``file://`` URI is a local path. The results name a
photo by its resolved local path, or for object storage by ``SCHEME://bucket/key`` (the scheme as given).

Listing runs in Ray tasks, never in the driver: one task walks a source's folders (``folders_of``), others list
and stat the photos of a few folders each (``list_photos``), so the driver holds no list of photos however many
there are. Locally it follows ``photos.discover.find_photos``' rules: files named directly are taken as they are,
in folders only photos (by extension), none hidden and none under a hidden folder.
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
import pyarrow.fs as pafs

from desktop_app.photos.discover import is_photo


@dataclass(frozen=True)
class Place:
    """A folder or file on a file system, and the prefix that makes its paths into the names results keep."""

    fs: pafs.FileSystem
    path: str
    prefix: str = ""  # "" for the local file system, else e.g. "s3://"

    @property
    def local(self) -> bool:
        return isinstance(self.fs, pafs.LocalFileSystem)

    def name(self, path: str) -> str:
        """What the results call the file at ``path`` on this file system."""
        return self.prefix + path


def is_uri(text: str) -> bool:
    return "://" in text


def locate(source: str | Path) -> Place:
    """A SOURCE or --out as the file system it is on: a local path (resolved), or a URI."""
    text = str(source)
    if not is_uri(text):
        return Place(pafs.LocalFileSystem(), str(Path(text).resolve()))
    fs, path = pafs.FileSystem.from_uri(text)
    if isinstance(fs, pafs.LocalFileSystem):
        return Place(fs, str(Path(path).resolve()))
    return Place(fs, path.rstrip("/"), text.split("://", 1)[0] + "://")


def kind_of(place: Place) -> pafs.FileType:
    return place.fs.get_file_info(place.path).type


def same_file_system(places: list[Place]) -> bool:
    """One run reads all its sources through one file system (one object passed to every listing task)."""
    return len({(type(p.fs).__name__, p.prefix) for p in places}) <= 1


# -- listing, in Ray tasks ------------------------------------------------------------------------------------------

def folders_of(row: dict, fs: pafs.FileSystem, recursive: bool) -> list[dict]:
    """A source -> the folders to list (itself, and with ``recursive`` every folder below it that is not hidden),
    or the file itself when a file is named."""
    source = str(row["source"])
    if fs.get_file_info(source).type != pafs.FileType.Directory:
        return [{"folder": "", "file": source}]
    if isinstance(fs, pafs.LocalFileSystem):
        return [{"folder": folder, "file": ""} for folder in _local_folders(source, recursive)]
    found, stack = [], [source]
    while stack:
        folder = stack.pop()
        found.append({"folder": folder, "file": ""})
        if recursive:
            stack += [info.path for info in fs.get_file_info(pafs.FileSelector(folder))
                      if info.type == pafs.FileType.Directory and not info.base_name.startswith(".")]
    return found


def _local_folders(root: str, recursive: bool) -> Iterator[str]:
    if not recursive:
        yield root
        return
    for folder, subfolders, _ in os.walk(root):
        subfolders[:] = sorted(d for d in subfolders if not d.startswith("."))
        yield folder


def photo_key(name: str, size: int, mtime_ns: int) -> int:
    """A photo as one number: its name, size and modification time hashed (64 bits). The results' done photos
    are kept as a sorted array of these, 8 bytes a photo, not as a set of Python objects."""
    digest = hashlib.blake2b(f"{name}\0{size}\0{mtime_ns}".encode("utf-8", "surrogateescape"), digest_size=8)
    return int.from_bytes(digest.digest(), "little")


def path_key(name: str) -> int:
    return int.from_bytes(hashlib.blake2b(name.encode("utf-8", "surrogateescape"), digest_size=8).digest(), "little")


def keys_of(names: list[str], sizes: list[int], mtimes: list[int]) -> np.ndarray:
    return np.fromiter((photo_key(n, s, m) for n, s, m in zip(names, sizes, mtimes)), np.uint64, len(names))


def is_done(keys: np.ndarray, done: np.ndarray) -> np.ndarray:
    """Which of ``keys`` are in the sorted array ``done``."""
    if not len(done):
        return np.zeros(len(keys), bool)
    at = np.minimum(np.searchsorted(done, keys), len(done) - 1)
    return done[at] == keys


def stat_files(place: Place, folder: str, file: str) -> Iterator[tuple[str, int, int]]:
    """(name in the results, size, mtime_ns) of the photos of ``folder``, or of the one ``file``."""
    fs = place.fs
    if isinstance(fs, pafs.LocalFileSystem):
        for path in [Path(file)] if file else _local_photos(folder):
            try:
                stat = path.stat()
            except OSError:  # gone since the listing: nothing to caption
                continue
            yield str(path.resolve()), stat.st_size, stat.st_mtime_ns
        return
    # pyarrow lists a folder of object storage whole (one list of FileInfo per folder, in the listing task)
    infos = ([fs.get_file_info(file)] if file else
             sorted((i for i in fs.get_file_info(pafs.FileSelector(folder))
                     if i.type == pafs.FileType.File and is_photo(Path(i.base_name))), key=lambda i: i.path))
    for info in infos:
        if info.type == pafs.FileType.File:
            yield place.name(info.path), info.size, info.mtime_ns or 0


def _local_photos(folder: str) -> Iterator[Path]:
    """A local folder's photos as the directory lists them (streamed, not sorted: a folder of a million photos
    is never one list)."""
    with os.scandir(folder) as entries:
        for entry in entries:
            try:
                if entry.is_file() and is_photo(Path(entry.name)):
                    yield Path(entry.path)
            except OSError:
                continue


def read_photo(place: Place, name: str) -> tuple[str, io.BytesIO] | Path:
    """A photo to decode: its local path, or for another file system its name and bytes."""
    if place.local:
        return Path(name)
    path = name[len(place.prefix):]
    with place.fs.open_input_file(path) as handle:
        return PurePosixPath(path).name, io.BytesIO(handle.read())
