"""Replace a file without ever leaving it half-written, and without changing what file it is.

The new bytes go to a hidden temp file beside the real file (symlinks are
followed, so the target gets the caption and a link stays a link), which gets
the old file's owner, group, mode, extended attributes and (if asked) times,
is flushed to disk, and is renamed over the old one.

Hard links are refused: a rename gives the name a new inode, so the other
names would silently keep the old bytes (a split), and writing in place
instead would lose the crash safety. A person gets a clear message and can
use a sidecar or give the photo a single name.

A temp file is locked (flock) while it is written. A run killed with
``kill -9`` leaves its temp file unlocked, and the next write in that folder
removes such leftovers (only ours: ``.NAME.XXXX.photocaption-tmp``), however
young: a kill between creating and locking leaves an empty one. A writer that
finds its fresh temp file swept away before it got the lock simply makes another.
"""

from __future__ import annotations

import errno
import os
import re
import stat as stat_module
import tempfile
import time
from pathlib import Path

from desktop_app.metadata import xdg

try:
    import fcntl
except ImportError:  # Windows: no flock; leftovers are then removed by age only
    fcntl = None

TEMP_SUFFIX = ".photocaption-tmp"
TEMP_PATTERN = re.compile(r"^\..+\.[A-Za-z0-9_]+" + re.escape(TEMP_SUFFIX) + r"$")
STALE_WITHOUT_LOCKS_S = 3600  # where locks do not exist, a leftover this old is surely dead
TEMP_ATTEMPTS = 5  # fresh temp files a writer tries when a sweep keeps removing them before it locks one
_cleaned: set[Path] = set()  # folders already swept by this process


class AtomicWriteError(OSError):
    """The file cannot be replaced safely; the message says why in words."""


def replace_atomically(path: Path, data: bytes, keep_mtime: bool = True, like: Path | None = None,
                       xattrs: dict[str, str | None] | None = None) -> None:
    """Write ``data`` over ``path`` so that a crash leaves either the old file or the new one, never a mix.

    ``path`` may be a symlink: the file it points at is replaced. Owner and
    group (when we may set them), mode, extended attributes and, with
    ``keep_mtime``, the modification time are kept; a file of another user is
    refused unless we are root, as the rename would make it ours. A new file
    gets the owner, group and read/write bits of ``like`` (a sidecar: those of
    its photo, so a private photo gets a private sidecar), else the usual
    permissions (0666 less the umask), never a temp file's 0600. ``xattrs`` (e.g. the
    freedesktop caption attributes) are set on the new file before it takes the name, so
    they change with it.
    """
    path = Path(os.path.realpath(path))
    folder = path.parent
    if not os.access(folder, os.W_OK | os.X_OK):
        raise AtomicWriteError(errno.EACCES, f"folder {folder} is not writable")
    try:
        old = os.stat(path)
    except FileNotFoundError:
        old = None
    if old is not None and old.st_nlink > 1:
        raise AtomicWriteError(errno.EMLINK, f"{path.name} has {old.st_nlink} hard links (other names for the same "
                               "file); replacing it would split them, so it was left unchanged (use a sidecar, or "
                               "give the photo a single name)")
    if old is not None and not _may_keep_owner(old):
        raise AtomicWriteError(errno.EPERM, f"{path.name} belongs to another user; replacing it would make it yours, "
                               "so it was left unchanged (its owner can write it, or use a sidecar)")
    model = os.stat(like) if old is None and like is not None else None
    remove_stale_temp_files(folder)
    fd, temp = _locked_temp_file(path)
    try:
        with os.fdopen(fd, "wb", closefd=False) as handle:
            handle.write(data)
            handle.flush()
            if old is not None:
                _copy_identity(path, fd, old, keep_mtime)
            elif model is not None:
                _copy_owner(fd, model)
                os.fchmod(fd, stat_module.S_IMODE(model.st_mode) & 0o666)
            else:
                os.fchmod(fd, 0o666 & ~current_umask())
            if xattrs:
                xdg.write(fd, xattrs)
            os.fsync(fd)
        os.replace(temp, path)
    except BaseException:
        if os.path.exists(temp):
            os.unlink(temp)
        raise
    finally:
        os.close(fd)
    _fsync_folder(folder)


def _locked_temp_file(path: Path) -> tuple[int, str]:
    """A new temp file beside ``path``, locked (flock) and still under its name once locked.

    Between creating and locking, another process's sweep may take the file for a
    killed run's leftover and remove it (it holds the lock while it does); the name is
    then gone or names another file, and we try a new one rather than write into a
    file no rename can reach.
    """
    for _ in range(TEMP_ATTEMPTS):
        fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
        if fcntl is None:
            return fd, temp
        fcntl.flock(fd, fcntl.LOCK_EX)  # released by the kernel if we are killed
        try:
            if os.path.samestat(os.fstat(fd), os.lstat(temp)):
                return fd, temp
        except FileNotFoundError:
            pass
        os.close(fd)
    raise AtomicWriteError(errno.EAGAIN, f"could not make a temp file beside {path.name}: another program keeps "
                           "removing them")


def _may_keep_owner(old: os.stat_result) -> bool:
    """Whether the replaced file can keep its owner: it is ours, or we are root (or the OS has no owners)."""
    return not hasattr(os, "geteuid") or os.geteuid() in (0, old.st_uid)


def _copy_owner(fd: int, old: os.stat_result) -> None:
    try:
        os.fchown(fd, old.st_uid, old.st_gid)
    except PermissionError:  # not root: at least the group, where we are a member of it
        try:
            os.fchown(fd, -1, old.st_gid)
        except PermissionError:
            pass


def _copy_identity(path: Path, fd: int, old: os.stat_result, keep_mtime: bool) -> None:
    _copy_owner(fd, old)
    os.fchmod(fd, stat_module.S_IMODE(old.st_mode))
    _copy_xattrs(path, fd)
    if keep_mtime:
        os.utime(fd, ns=(old.st_atime_ns, old.st_mtime_ns))


def _copy_xattrs(path: Path, fd: int) -> None:
    if not hasattr(os, "listxattr"):
        return
    try:
        names = os.listxattr(path)
    except OSError:  # the file system has none
        return
    for name in names:
        try:
            os.setxattr(fd, name, os.getxattr(path, name))
        except OSError as exc:
            if exc.errno not in (errno.ENOTSUP, errno.EPERM, errno.EACCES):  # e.g. security.* as a normal user
                raise


def current_umask() -> int:
    """The process umask, read without changing it where /proc tells it (setting it races with other threads)."""
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def remove_stale_temp_files(folder: Path, force: bool = False) -> list[Path]:
    """Remove our temp files that no running write holds (left by a killed run); once per folder per process."""
    folder = Path(folder)
    if folder in _cleaned and not force:
        return []
    _cleaned.add(folder)
    removed = []
    try:
        names = [n for n in os.listdir(folder) if n.endswith(TEMP_SUFFIX) and TEMP_PATTERN.match(n)]
    except OSError:
        return removed
    for name in names:
        candidate = folder / name
        if _remove_if_abandoned(candidate):
            removed.append(candidate)
    return removed


def _remove_if_abandoned(candidate: Path) -> bool:
    """Remove a temp file no live write holds; True if removed.

    The lock is taken, and held while the file is removed, so a writer that created it
    a moment ago and is about to lock it waits, then sees it gone (``_locked_temp_file``).
    An empty file counts too: that is what a kill between creating and locking leaves.
    """
    try:
        info = os.lstat(candidate)
    except OSError:
        return False
    if not stat_module.S_ISREG(info.st_mode):
        return False
    if fcntl is None:
        return time.time() - info.st_mtime > STALE_WITHOUT_LOCKS_S and _unlink(candidate)
    try:
        fd = os.open(candidate, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # held by a live writer -> BlockingIOError
        return os.path.samestat(os.fstat(fd), os.lstat(candidate)) and _unlink(candidate)
    except OSError:
        return False
    finally:
        os.close(fd)


def _unlink(path: Path) -> bool:
    try:
        path.unlink()
        return True
    except OSError:
        return False


def _fsync_folder(folder: Path) -> None:
    if hasattr(os, "O_DIRECTORY"):  # make the rename itself durable
        dir_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
