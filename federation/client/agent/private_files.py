"""Private files of the agent's state directory: 0700 directories, atomic 0600 files."""

from __future__ import annotations

import hashlib
import stat
from pathlib import Path

from cache_core import write_atomic
from federation.client.agent.errors import AgentStateError


def sha256_hex(data: bytes) -> str:
    """Return the hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) with mode 0700, or check an existing one is private.

    Raises
    ------
    AgentStateError
        If ``path`` exists but is not a directory, or other users may access it.
    """
    if path.exists():
        if not path.is_dir():
            raise AgentStateError(f"state directory {path} exists and is not a directory")
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            raise AgentStateError(
                f"state directory {path} has mode {mode:o}; other users must not reach the "
                f"agent's keys and state: run chmod 700 {path}"
            )
        return path
    path.mkdir(parents=True, mode=0o700)
    path.chmod(0o700)  # mkdir's mode is filtered by the umask
    return path


def write_private_file(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temporary file, fsync, rename) with mode 0600."""
    write_atomic(path, data, mode=0o600, sync_directory=True)
