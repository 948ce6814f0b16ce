"""Finding traces: the trace root, ``FORMAT:PATH`` specs, and the bundled real traces."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from cache_core.errors import TraceNotFoundError
from cache_core.traces.formats import TRACE_FORMATS, check_format, detect_format

__all__ = [
    "TRACES_ENV_VAR",
    "BundledTrace",
    "bundled_traces",
    "parse_trace_spec",
    "trace_display_name",
    "trace_root",
]

logger = logging.getLogger(__name__)

TRACES_ENV_VAR = "PREDIS_TRACES"
"""Environment variable naming the folder that holds the real traces."""

_REPO_ROOT = Path(__file__).resolve().parents[2]
_DEFAULT_RELATIVE = Path("..") / "shared" / "traces"


def trace_root(explicit: str | Path | None = None) -> Path:
    """Return the folder holding the real traces.

    Looked up in this order: ``explicit``; the environment variable ``PREDIS_TRACES``;
    ``../shared/traces`` relative to the current directory; ``../shared/traces`` relative to the
    repository root (the parent of the ``cache_core`` package folder). An explicit argument or
    the environment variable that names a missing folder is an error (not silently skipped).

    Parameters
    ----------
    explicit
        A folder to use instead of searching.

    Returns
    -------
    Path
        An existing folder.

    Raises
    ------
    TraceNotFoundError
        If the chosen folder does not exist, or no candidate does; the message lists what was
        tried and how to set ``PREDIS_TRACES``.
    """
    if explicit is not None:
        root = Path(explicit).expanduser()
        if not root.is_dir():
            raise TraceNotFoundError(f"trace root {str(root)!r} is not an existing folder")
        return root
    env = os.environ.get(TRACES_ENV_VAR)
    if env:
        root = Path(env).expanduser()
        if not root.is_dir():
            raise TraceNotFoundError(
                f"{TRACES_ENV_VAR}={env!r} is not an existing folder; point it at the folder "
                "holding the traces (e.g. .../shared/traces) or unset it"
            )
        return root
    candidates = [Path.cwd() / _DEFAULT_RELATIVE, _REPO_ROOT / _DEFAULT_RELATIVE]
    for candidate in candidates:
        if candidate.is_dir():
            return candidate.resolve()
    tried = ", ".join(str(c) for c in candidates)
    raise TraceNotFoundError(
        f"no trace folder found (tried {tried}); set {TRACES_ENV_VAR} to the folder holding "
        "the traces, e.g. export PREDIS_TRACES=/path/to/shared/traces"
    )


def _resolve(path_text: str, prefix_hint: str | None) -> Path:
    path = Path(path_text).expanduser()
    if path.exists():
        return path
    tried = [str(path)]
    if not path.is_absolute():
        try:
            root = trace_root()
        except TraceNotFoundError:
            root = None
        if root is not None:
            candidate = root / path
            if candidate.exists():
                return candidate
            tried.append(str(candidate))
    hint = ""
    if prefix_hint is not None:
        hint = (
            f"; if {prefix_hint!r} was meant as a format, valid formats are "
            f"{', '.join(TRACE_FORMATS)}"
        )
    raise TraceNotFoundError(f"trace file not found: tried {', '.join(tried)}{hint}")


def parse_trace_spec(spec: str | Path, fmt: str | None = None) -> tuple[Path, str]:
    """Split a trace spec into an existing path and a format name.

    A spec is ``FORMAT:PATH`` when the text before the first ``:`` is one of
    :data:`~cache_core.traces.TRACE_FORMATS` (so ordinary paths containing ``:`` still work),
    otherwise a plain path whose format is detected with
    :func:`~cache_core.traces.detect_format`. A relative path that does not exist from the
    current directory is also tried relative to :func:`trace_root`, so ``"arc/P6.lis.zst"``
    works from anywhere. A :class:`~pathlib.Path` argument is never split at ``:``.

    Parameters
    ----------
    spec
        ``FORMAT:PATH`` or a path.
    fmt
        A format name that wins over both the spec's prefix and detection.

    Returns
    -------
    tuple of (Path, str)
        The existing file and its format.

    Raises
    ------
    UnknownTraceFormatError
        If ``fmt`` is not a known format, or no format is given and none can be detected.
    TraceNotFoundError
        If the file exists neither as given nor under the trace root.
    """
    text = str(spec)
    prefix_fmt: str | None = None
    prefix_hint: str | None = None
    if isinstance(spec, str) and ":" in text:
        head, rest = text.split(":", 1)
        if head in TRACE_FORMATS:
            prefix_fmt, text = head, rest
        elif head and "/" not in head and "\\" not in head and len(head) > 1:
            prefix_hint = head
    if fmt is not None:
        check_format(fmt)
    path = _resolve(text, prefix_hint)
    chosen = fmt or prefix_fmt or detect_format(path)
    logger.debug("trace spec %r -> %s as %s", spec, path, chosen)
    return path, chosen


def trace_display_name(path: str | Path) -> str:
    """Return ``path`` relative to the trace root when it lies under it, else as given.

    Parameters
    ----------
    path
        A trace file.

    Returns
    -------
    str
        A short name for reports.
    """
    try:
        root = trace_root().resolve()
        return Path(path).resolve().relative_to(root).as_posix()
    except (TraceNotFoundError, ValueError):
        return str(path)


@dataclass(frozen=True)
class BundledTrace:
    """A real trace shipped in the shared trace folder.

    Attributes
    ----------
    name
        Short name, e.g. ``"cache2k/orm-busy"``.
    path
        The file.
    format
        Its format name.
    workload
        One-line description of the workload.
    """

    name: str
    path: Path
    format: str
    workload: str


_BUNDLED: tuple[tuple[str, str, str, str], ...] = (
    ("address/gcc", "address/gcc.trace.gz", "address", "SPEC gcc CPU load/store addresses"),
    ("address/swim", "address/swim.trace.gz", "address", "SPEC swim CPU load/store addresses"),
    ("arc/OLTP", "arc/OLTP.lis.zst", "arc-lis", "CODASYL OLTP database disk pages"),
    ("arc/P3", "arc/P3.lis.zst", "arc-lis", "Windows NT workstation disk pages"),
    ("arc/P6", "arc/P6.lis.zst", "arc-lis", "Windows NT workstation disk pages"),
    ("cache2k/orm-busy", "cache2k/orm-busy.trace.xz", "u32be", "e-commerce ORM object cache"),
    ("cache2k/web07", "cache2k/web07.trace.xz", "u32be", "HTTP product-detail-page objects"),
    ("cloudphysics/w106", "cloudphysics/w106.trace.xz", "u32be", "VMware block I/O"),
    ("lirs/sprite", "lirs/sprite.trace.gz", "lines", "LIRS sprite file-server blocks"),
    ("lirs/multi3", "lirs/multi3.trace.gz", "lines", "LIRS mixed-program blocks"),
    (
        "mooncake/conversation",
        "mooncake/conversation_trace.jsonl",
        "mooncake",
        "LLM serving prefix KV-cache blocks",
    ),
    ("scarab/recs", "scarab/recs.trace.xz", "i64be", "recommendation-service cache keys"),
)


def bundled_traces(root: str | Path | None = None) -> list[BundledTrace]:
    """List the real traces present in the trace folder, in a fixed order.

    Parameters
    ----------
    root
        The trace folder; found with :func:`trace_root` when ``None``.

    Returns
    -------
    list of BundledTrace
        One entry per known trace file that exists; missing files are left out.

    Raises
    ------
    TraceNotFoundError
        If the trace folder itself cannot be found.
    """
    folder = trace_root(root)
    found = []
    for name, relative, fmt, workload in _BUNDLED:
        path = folder / relative
        if path.is_file():
            found.append(BundledTrace(name=name, path=path, format=fmt, workload=workload))
        else:
            logger.debug("bundled trace %s missing at %s", name, path)
    return found
