"""Who may call the service: the API token (made once, kept in the user's config, mode 0600) and loopback hosts."""

from __future__ import annotations

import ipaddress
import os
import secrets
import stat
import sys
from pathlib import Path

TOKEN_FILE = "serve-token"
LOOPBACK_NAMES = ("localhost",)


class AccessError(Exception):
    """The token file cannot be used; the message says what to do."""


def config_dir() -> Path:
    """Per-user config folder: $XDG_CONFIG_HOME (or the platform's usual place) / photocaption."""
    if sys.platform == "win32":
        base = Path(os.environ.get("APPDATA", Path.home() / "AppData" / "Roaming"))
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "photocaption"


def default_token_path() -> Path:
    return config_dir() / TOKEN_FILE


def load_or_create_token(path: Path | None = None) -> tuple[str, bool]:
    """The stored token, or a new one written with mode 0600; returns (token, created now).

    A token file other users can read is refused rather than used: someone may already have it.
    """
    path = path or default_token_path()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_token(path), False
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(token + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    return token, True


def _read_token(path: Path) -> str:
    if sys.platform != "win32":
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            raise AccessError(f"the token file {path} can be read by other users (mode {mode:04o}); "
                              f"delete it to make a new token, or run: chmod 600 {path}")
    token = path.read_text(encoding="ascii", errors="replace").strip()
    if len(token) < 16:
        raise AccessError(f"the token file {path} holds no usable token; delete it to make a new one")
    return token


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach (127.0.0.0/8, ::1, "localhost")."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # any other name may resolve to a reachable address
