"""Streaming readers for real cache traces (nine formats, any common compression)."""

from cache_core.traces.formats import TRACE_FORMATS, detect_format
from cache_core.traces.locate import BundledTrace, bundled_traces, parse_trace_spec, trace_root
from cache_core.traces.reader import iter_trace_chunks, read_trace

__all__ = [
    "TRACE_FORMATS",
    "BundledTrace",
    "bundled_traces",
    "detect_format",
    "iter_trace_chunks",
    "parse_trace_spec",
    "read_trace",
    "trace_root",
]
