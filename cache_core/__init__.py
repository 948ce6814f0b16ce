"""Cache node, trace readers, eviction policies, replay harness, prefetchers and access sampler.

The sub-packages :mod:`cache_core.traces`, :mod:`cache_core.policies`, :mod:`cache_core.replay`
and :mod:`cache_core.prefetch` carry their full APIs; the most used names are re-exported here.
This package never imports torch or Flower.
"""

from cache_core.atomic_file import write_atomic
from cache_core.backends import DictBackend, StorageBackend
from cache_core.errors import (
    CacheCoreError,
    InvalidCapacityError,
    InvalidObjectSizeError,
    InvalidSamplerConfigError,
    MissingLoaderError,
    NodeConfigError,
    ObjectTooLargeError,
    SampleFormatError,
    TraceFormatError,
    TraceNotFoundError,
    UnknownPolicyError,
    UnknownTraceFormatError,
)
from cache_core.node import CacheNode
from cache_core.policies import POLICIES, EvictionPolicy, make_policy
from cache_core.prefetch import PREFETCHERS, Prefetcher, PrefetchEvaluation, evaluate_prefetch
from cache_core.replay import REPLAY_POLICIES, ReplayResult, replay, resolve_capacity
from cache_core.sample_files import SampleExporter, read_samples
from cache_core.sampler import SAMPLE_DTYPE, AccessOp, AccessSampler
from cache_core.stats import CacheStats
from cache_core.trace import Trace, TraceChunk
from cache_core.traces import (
    TRACE_FORMATS,
    BundledTrace,
    bundled_traces,
    iter_trace_chunks,
    read_trace,
    trace_root,
)

__all__ = [
    "POLICIES",
    "PREFETCHERS",
    "REPLAY_POLICIES",
    "SAMPLE_DTYPE",
    "TRACE_FORMATS",
    "AccessOp",
    "AccessSampler",
    "BundledTrace",
    "CacheCoreError",
    "CacheNode",
    "CacheStats",
    "DictBackend",
    "EvictionPolicy",
    "InvalidCapacityError",
    "InvalidObjectSizeError",
    "InvalidSamplerConfigError",
    "MissingLoaderError",
    "NodeConfigError",
    "ObjectTooLargeError",
    "PrefetchEvaluation",
    "Prefetcher",
    "ReplayResult",
    "SampleExporter",
    "SampleFormatError",
    "StorageBackend",
    "Trace",
    "TraceChunk",
    "TraceFormatError",
    "TraceNotFoundError",
    "UnknownPolicyError",
    "UnknownTraceFormatError",
    "bundled_traces",
    "evaluate_prefetch",
    "iter_trace_chunks",
    "make_policy",
    "read_samples",
    "read_trace",
    "replay",
    "resolve_capacity",
    "trace_root",
    "write_atomic",
]
