"""Writing a file so that readers and crashes only ever see the old or the new contents."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_atomic(
    path: str | Path, data: bytes, *, mode: int = 0o600, sync_directory: bool = False
) -> None:
    """Write ``data`` to ``path`` atomically: temporary file, fsync, rename.

    The temporary file is created in the target's directory with mode 0600 (``mkstemp``), set
    to ``mode`` before the rename, and removed if anything fails, so ``path`` holds either its
    old contents or all of ``data``, never a torn write.

    Parameters
    ----------
    path
        The file to write (its directory must exist).
    data
        The new contents.
    mode
        Permission bits of the written file (default 0600: owner only).
    sync_directory
        Also fsync the directory, so the rename itself survives a power loss (state files).

    Raises
    ------
    OSError
        If the file cannot be written; ``path`` is then unchanged.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "state.json"
    >>> write_atomic(target, b"{}")
    >>> target.read_bytes(), oct(target.stat().st_mode & 0o777)
    (b'{}', '0o600')
    """
    target = Path(path)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if sync_directory:
        dir_fd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
