"""Section 4 figures of the prefetch baselines on real traces, checked against the issue.

Set-up of the issue: first 1,000,000 requests, LRU at 1% of the unique objects of those requests
(rounded), degree 2, hits counted on the last 30%. The issue's hit ratios are matched to ±0.02.
Its traffic and precision came from a Markov table without a width bound (with our width set very
large we reproduce them: orm-busy markov .954 / 0.90 / .435, scarab .624 / 1.22 / .289); our
bounded rows (16 successors per key, 8 per pair context) prefetch less, so traffic and precision
are pinned to our own measurement (±0.02) and only loosely (±0.12) to the issue's.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from cache_core.prefetch import evaluate_prefetch
from cache_core.traces import read_trace

pytestmark = [pytest.mark.traces, pytest.mark.slow]

N_REQUESTS = 1_000_000

# prefetcher → (hit ratio, prefetches per request, precision, top-1, top-10) as measured here;
# ISSUE holds the issue's (hit ratio, prefetches per request, precision).
MEASURED = {
    "cache2k/orm-busy.trace.xz": {
        "none": (0.6118, 0.0, 0.0, None, None),
        "next": (0.5546, 0.9310, 0.0145, 0.0338, 0.0338),
        "markov": (0.9525, 0.8367, 0.4640, 0.5306, 0.8692),
        "markov2": (0.9609, 0.8443, 0.4694, 0.7786, 0.8886),
    },
    "scarab/recs.trace.xz": {
        "none": (0.3309, 0.0, 0.0, None, None),
        "next": (0.2492, 1.5453, 0.0, 0.0, 0.0),
        "markov": (0.6141, 1.1227, 0.3017, 0.3677, 0.4947),
        "markov2": (0.6400, 1.1758, 0.3110, 0.4410, 0.5075),
    },
}
ISSUE = {
    "cache2k/orm-busy.trace.xz": {
        "none": (0.612, 0.0, 0.0),
        "markov": (0.955, 0.90, 0.44),
        "markov2": (0.961, 0.85, 0.47),
    },
    "scarab/recs.trace.xz": {
        "none": (0.331, 0.0, 0.0),
        "markov": (0.616, 1.22, 0.28),
        "markov2": (0.640, 1.08, 0.34),
    },
}


def _manifest_digest(root: Path, relative: str) -> str | None:
    manifest = root / "MANIFEST.sha256"
    if not manifest.is_file():
        return None
    for line in manifest.read_text().splitlines():
        digest, _, name = line.partition("  ")
        if name.removeprefix("./") == relative:
            return digest
    return None


@pytest.mark.parametrize("relative", sorted(MEASURED))
def test_prefetch_baselines_match_the_issue(trace_root_or_skip: Path, relative: str) -> None:
    path = trace_root_or_skip / relative
    if not path.is_file():
        pytest.skip(f"{relative} is not in the trace folder {trace_root_or_skip}")
    expected_digest = _manifest_digest(trace_root_or_skip, relative)
    if expected_digest != hashlib.sha256(path.read_bytes()).hexdigest():
        pytest.skip(f"{relative} does not match MANIFEST.sha256; the pinned figures do not apply")
    trace = read_trace(str(path), max_requests=N_REQUESTS)
    assert len(trace) == N_REQUESTS
    capacity = round(0.01 * trace.unique_objects)
    for name, (hit_ratio, traffic, precision, top1, top10) in MEASURED[relative].items():
        ev = evaluate_prefetch(trace, capacity, name, degree=2, train_fraction=0.7)
        assert ev.requests_evaluated == N_REQUESTS - 700_000
        got = (ev.hit_ratio, ev.prefetches_per_request, ev.prefetch_precision)
        assert got == pytest.approx((hit_ratio, traffic, precision), abs=0.02), name
        if top1 is None:
            assert ev.top1_accuracy is None and ev.top10_accuracy is None
        else:
            assert (ev.top1_accuracy, ev.top10_accuracy) == pytest.approx((top1, top10), abs=0.02)
        if name in ISSUE[relative]:
            issue_hit_ratio, issue_traffic, issue_precision = ISSUE[relative][name]
            assert ev.hit_ratio == pytest.approx(issue_hit_ratio, abs=0.02), name
            assert (ev.prefetches_per_request, ev.prefetch_precision) == pytest.approx(
                (issue_traffic, issue_precision), abs=0.12
            ), name
