"""Write drained access-sample batches to ``.npy`` files and read them back.

Files are named ``<prefix>-<sequence>.npy`` with a zero-padded, increasing sequence number and
hold one array of :data:`~cache_core.sampler.SAMPLE_DTYPE`. Each file is written to a temporary
file in the same directory, flushed and ``fsync``-ed, then renamed into place, so a reader never
sees a partial file. Files are loaded with ``allow_pickle=False`` and their dtype is checked.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from cache_core.errors import InvalidSamplerConfigError, SampleFormatError
from cache_core.sampler import SAMPLE_DTYPE, AccessSampler

__all__ = ["SampleExporter", "list_sample_files", "read_sample_file", "read_samples"]

_DIGITS = 8


def _pattern(prefix: str) -> re.Pattern[str]:
    return re.compile(rf"^{re.escape(prefix)}-(\d{{{_DIGITS},}})\.npy$")


def list_sample_files(directory: str | Path, prefix: str = "samples") -> list[Path]:
    """Return the sample files of ``directory`` in sequence order.

    Parameters
    ----------
    directory
        Directory the exporter wrote to.
    prefix
        File-name prefix used by the exporter.

    Returns
    -------
    list of pathlib.Path
        Files ordered by sequence number (temporary files are ignored).
    """
    pattern = _pattern(prefix)
    found = []
    for path in Path(directory).iterdir():
        match = pattern.match(path.name)
        if match:
            found.append((int(match.group(1)), path))
    return [path for _, path in sorted(found)]


def read_sample_file(path: str | Path) -> NDArray[np.void]:
    """Load one sample file without unpickling and check its layout.

    Raises
    ------
    SampleFormatError
        If the file is not a 1-d ``.npy`` array of :data:`SAMPLE_DTYPE`.
    """
    try:
        arr = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise SampleFormatError(f"{path}: not a readable .npy file ({exc})") from exc
    if not isinstance(arr, np.ndarray) or arr.dtype != SAMPLE_DTYPE or arr.ndim != 1:
        raise SampleFormatError(f"{path}: expected a 1-d array of the access-sample dtype")
    return arr


def read_samples(directory: str | Path, prefix: str = "samples") -> NDArray[np.void]:
    """Concatenate every sample file of ``directory`` in sequence order.

    Returns
    -------
    numpy.ndarray
        Records of :data:`SAMPLE_DTYPE` (empty if there are no files).
    """
    parts = [read_sample_file(p) for p in list_sample_files(directory, prefix)]
    if not parts:
        return np.zeros(0, dtype=SAMPLE_DTYPE)
    return np.concatenate(parts)


class SampleExporter:
    """Writes sample batches to sequentially numbered files in one directory.

    Parameters
    ----------
    directory
        Output directory (created if missing). Numbering continues after the highest existing
        file with the same prefix.
    prefix
        File-name prefix (letters, digits, ``_`` and ``.``).

    Raises
    ------
    InvalidSamplerConfigError
        If ``prefix`` contains other characters.

    Notes
    -----
    One exporter per directory and prefix; concurrent exporters on the same directory would race
    for sequence numbers.
    """

    def __init__(self, directory: str | Path, prefix: str = "samples") -> None:
        if not re.fullmatch(r"[A-Za-z0-9_.]+", prefix):
            raise InvalidSamplerConfigError(
                f"prefix must be alphanumeric (with _ or .), got {prefix!r}"
            )
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.prefix = prefix
        existing = list_sample_files(self.directory, prefix)
        last = _pattern(prefix).match(existing[-1].name) if existing else None
        self._next = int(last.group(1)) + 1 if last else 0

    def write(self, batch: NDArray[np.void]) -> Path:
        """Write ``batch`` atomically to the next file and return its path.

        Raises
        ------
        SampleFormatError
            If ``batch`` is not a 1-d array of :data:`SAMPLE_DTYPE`.
        """
        if batch.dtype != SAMPLE_DTYPE or batch.ndim != 1:
            raise SampleFormatError("a sample batch must be a 1-d array of the sample dtype")
        path = self.directory / f"{self.prefix}-{self._next:0{_DIGITS}d}.npy"
        fd, tmp = tempfile.mkstemp(prefix=f".{self.prefix}-", suffix=".tmp", dir=self.directory)
        try:
            with os.fdopen(fd, "wb") as fh:
                np.save(fh, batch, allow_pickle=False)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self._next += 1
        return path

    def export(self, sampler: AccessSampler) -> Path | None:
        """Drain ``sampler`` and write the batch; return the path, or None if it was empty."""
        batch = sampler.drain()
        return self.write(batch) if batch.shape[0] else None
