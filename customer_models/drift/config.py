"""Every threshold and window of the drift detectors, with the reasoning behind each default.

Real cache traces are far from stationary at the scale of a few thousand requests: scans start
and stop, sets of keys are visited in turn, sequential re-reads come and go. Measured on the
bundled traces, the KS distance between two *adjacent* 5k-request windows of reuse times reached
0.9-0.99 inside a single trace (ARC P3/P6), per-request ADWIN fired 400-2,600 times per trace, and
the PSI of hashed-key histograms reached 8 (CPU address traces). A detector built on those
figures either fires constantly or misses a change of workload. The defaults here follow four
rules that, together, brought every bundled trace to at most one alarm per million requests:

1. **Compare with many references.** The recent window is tested against every window of the
   same length in the last ``reference_blocks`` blocks, and drift needs it to differ from *all*
   of them (the statistic is the minimum distance). Phases that recur within that history are
   not drift; a workload never seen before is. This is an intersection-union test: its level is
   that of one test, so no correction for the number of references is needed.
2. **Effect sizes, not only p-values.** With 10k requests per window any difference is
   "significant"; thresholds are set on the KS distance and the PSI, and the p-value is checked
   on top at a level that accounts for repeated testing (``false_alarm_rate`` x ``block_size``
   per test, Bonferroni over the tests in a million requests).
3. **Persistence.** A detection needs ``consecutive`` rejections in a row (one test per block).
4. **Warm-up after (re)arming.** The first ``warmup_blocks`` blocks after start or after a
   detection are skipped (a cold cache and cold key statistics look like drift), and tests start
   once ``min_reference_blocks`` blocks of reference exist.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

from customer_models.drift.errors import DriftConfigError

#: Names of the detectors a :class:`~customer_models.drift.DriftMonitor` can run.
DETECTOR_NAMES: tuple[str, ...] = ("adwin", "ks_reuse", "ks_interarrival", "psi")


@dataclass(frozen=True)
class DriftConfig:
    """Settings of the drift detectors and the monitor (the agent's settings map onto these).

    Attributes
    ----------
    detectors
        Detectors the monitor runs, by name (:data:`DETECTOR_NAMES`). ``ks_interarrival`` only
        tests when timestamps are given.
    block_size
        Requests per block (1000). Windows are whole blocks and the KS/PSI tests run once per
        block, so the per-request cost is a table update and a histogram increment.
    recent_blocks
        Length of the recent window in blocks (10, i.e. 10k requests): long enough that a KS
        distance of 0.3 is far beyond sampling noise (about 0.02 at this size), short enough that
        a switch fills most of it well within the 20k-request detection target.
    reference_blocks
        History searched for a matching reference window (300 blocks = 300k requests), so that
        phases recurring within a few hundred thousand requests are recognised.
    reference_gap_blocks
        Blocks between the end of the reference history and the start of the recent window
        (10, one recent window). After a change the recent window is then compared with
        references from before the change for this many tests, instead of one, so the
        persistence rule can see the change at full strength.
    warmup_blocks
        Blocks ignored after start and after each detection (50): the cold-start transient of the
        cache and of the key statistics, and the transient of the new workload after a switch.
    min_reference_blocks
        Reference history needed before the first test (50 blocks).
    consecutive
        Rejections in a row needed for a detection (3).
    false_alarm_rate
        Target false-alarm rate per request for the p-value checks (1e-6); each test uses
        ``alpha = false_alarm_rate * block_size`` (1e-3), so even ignoring the persistence rule
        the tests of a million requests make at most one false alarm in expectation.
    ks_threshold
        KS distance to exceed (0.3). The distance is the largest difference between the two
        windows' shares of requests whose reuse time is below some bound, i.e. between the hit
        ratios an LRU cache of that size would see (for sizes up to ``reuse_cap``): 0.3 is a
        30-point change, a change the customer would feel, and above what recurring phases of
        the bundled traces produced (at most 0.25 once rule 1 applies).
    reuse_cap
        Reuse times (requests since the key's last access) are capped at this value (16384, the
        power of two above the recent window): reuse beyond the window's own span says nothing
        comparable between windows, and without the cap scan-heavy traces (whose reuse times sit
        just below or above any cap) swing between two extremes.
    bins_per_octave
        Resolution of the binned reuse and inter-arrival times (2 per octave: bins of a factor
        sqrt(2)). Finer bins made sequential re-reads at a slightly different distance look like
        a new workload, which a cache does not care about.
    interarrival_octaves
        Inter-arrival times are binned over ``2 ** -octaves .. 2 ** octaves`` time units of the
        trace's clock (40), plus one bin for zero gaps, so no unit has to be configured.
    psi_threshold
        PSI to exceed on the key-popularity histogram (4.0; see :class:`PSIDetector`). PSI above
        0.25 is the usual "major shift" in credit scoring, but cache workloads are far more
        volatile: with the other defaults, phases of the bundled traces reached at most 2.8 (CPU
        address trace gcc) once rule 1 applied, while traffic moving to keys not seen in the
        history gave 5.5 (synthetic Zipf) and more; 4.0 sits between the two with a margin of
        1.2 above the largest natural value.
    psi_classes
        Popularity classes (8): class 0 is a key not seen in the history, class ``j`` a key that
        received a share ``[2 ** -j, 2 ** (1 - j))`` of it, the last class every share below
        2**-6. Finer classes made the PSI of natural phases grow faster than that of a switch
        (16 classes: 3.5 inside the gcc trace against 4.1 for a switch).
    psi_smoothing
        Additive smoothing of the class shares before the PSI (1e-3), so an empty class gives a
        finite, bounded contribution instead of one dominated by the epsilon chosen.
    popularity_half_life
        Half-life of the decayed per-key counts, in requests (262144 = 2**18): popularity is
        judged over the last few hundred thousand requests, the span of the reference history.
    adwin_delta
        ADWIN's confidence parameter (``river.drift.ADWIN(delta=...)``).
    adwin_block
        ADWIN is fed the hit ratio of consecutive blocks of this many requests. Per-request hits are
        strongly autocorrelated and ADWIN's bound assumes independent values: on raw hits it fired
        hundreds of times per trace.
    adwin_min_effect
        Smallest change of hit ratio (between ADWIN's window before the recent window and the
        recent window) that is reported (0.3, as for the KS distance); ADWIN's smaller
        detections only restart its window.
    adwin_band_margin
        How far (in hit ratio) the recent window's hit ratio must lie outside the range of the
        reference history's window hit ratios (0.1): block-I/O traces dip to new lows by a few
        points from one scan burst to the next.
    key_table_bits
        The per-key statistics live in a direct-mapped table of ``2 ** key_table_bits`` slots
        (20: about 16-20 MB per detector); a key whose slot was taken by another key since its
        last access counts as new, a bounded approximation that only adds a little noise.
    """

    detectors: tuple[str, ...] = DETECTOR_NAMES
    block_size: int = 1000
    recent_blocks: int = 10
    reference_blocks: int = 300
    reference_gap_blocks: int = 10
    warmup_blocks: int = 50
    min_reference_blocks: int = 50
    consecutive: int = 3
    false_alarm_rate: float = 1e-6
    ks_threshold: float = 0.3
    reuse_cap: int = 16384
    bins_per_octave: int = 2
    interarrival_octaves: int = 40
    psi_threshold: float = 4.0
    psi_classes: int = 8
    psi_smoothing: float = 1e-3
    popularity_half_life: float = 262144.0
    adwin_delta: float = 1e-6
    adwin_block: int = 200
    adwin_min_effect: float = 0.3
    adwin_band_margin: float = 0.1
    key_table_bits: int = 20

    def __post_init__(self) -> None:
        if isinstance(self.detectors, str) or not self.detectors:
            raise DriftConfigError("detectors must be a non-empty tuple of detector names")
        for name in self.detectors:
            if name not in DETECTOR_NAMES:
                raise DriftConfigError(
                    f"unknown drift detector {name!r}; valid: {', '.join(DETECTOR_NAMES)}"
                )
        if len(set(self.detectors)) != len(self.detectors):
            raise DriftConfigError(f"detectors are listed twice: {self.detectors}")
        for name in (
            "block_size",
            "recent_blocks",
            "reference_blocks",
            "min_reference_blocks",
            "consecutive",
            "bins_per_octave",
            "interarrival_octaves",
            "psi_classes",
            "adwin_block",
        ):
            _positive_int(name, getattr(self, name))
        _positive_int("warmup_blocks", self.warmup_blocks, minimum=0)
        _positive_int("reference_gap_blocks", self.reference_gap_blocks, minimum=0)
        _positive_int("reuse_cap", self.reuse_cap, minimum=2)
        _positive_int("key_table_bits", self.key_table_bits, minimum=4)
        if self.key_table_bits > 30:
            raise DriftConfigError(f"key_table_bits must be at most 30, got {self.key_table_bits}")
        if self.min_reference_blocks < self.recent_blocks:
            raise DriftConfigError(
                f"min_reference_blocks ({self.min_reference_blocks}) must be at least "
                f"recent_blocks ({self.recent_blocks}) so that one reference window fits"
            )
        if self.reference_blocks < self.min_reference_blocks:
            raise DriftConfigError(
                f"reference_blocks ({self.reference_blocks}) must be at least "
                f"min_reference_blocks ({self.min_reference_blocks})"
            )
        _in_open_unit("false_alarm_rate", self.false_alarm_rate)
        _in_open_unit("adwin_delta", self.adwin_delta)
        if not 0 < self.false_alarm_rate * self.block_size < 1:
            raise DriftConfigError("false_alarm_rate * block_size must lie in (0, 1)")
        _positive_float("ks_threshold", self.ks_threshold)
        if self.ks_threshold >= 1:
            raise DriftConfigError(f"ks_threshold must be below 1, got {self.ks_threshold}")
        _positive_float("psi_threshold", self.psi_threshold)
        _positive_float("psi_smoothing", self.psi_smoothing)
        _positive_float("popularity_half_life", self.popularity_half_life)
        _positive_float("adwin_min_effect", self.adwin_min_effect, allow_zero=True)
        _positive_float("adwin_band_margin", self.adwin_band_margin, allow_zero=True)
        if self.adwin_min_effect >= 1:
            raise DriftConfigError(f"adwin_min_effect must be below 1, got {self.adwin_min_effect}")

    @property
    def test_alpha(self) -> float:
        """Significance level of each KS/PSI test: ``false_alarm_rate * block_size``."""
        return self.false_alarm_rate * self.block_size

    @property
    def warmup_requests(self) -> int:
        """Requests after (re)arming until the first KS/PSI test."""
        return self.block_size * (
            self.warmup_blocks
            + self.min_reference_blocks
            + self.reference_gap_blocks
            + self.recent_blocks
        )

    def to_dict(self) -> dict[str, Any]:
        """Return the settings as a JSON-serialisable dictionary."""
        out = asdict(self)
        out["detectors"] = list(self.detectors)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DriftConfig:
        """Build a configuration from :meth:`to_dict` output (unknown keys are refused).

        Raises
        ------
        DriftConfigError
            If a key is unknown or a value is invalid.
        """
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise DriftConfigError(f"unknown drift settings: {', '.join(unknown)}")
        values = dict(data)
        if "detectors" in values:
            values["detectors"] = tuple(values["detectors"])
        return cls(**values)


def _positive_int(name: str, value: object, minimum: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise DriftConfigError(f"{name} must be an integer >= {minimum}, got {value!r}")


def _positive_float(name: str, value: object, *, allow_zero: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise DriftConfigError(f"{name} must be a finite number, got {value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        raise DriftConfigError(f"{name} must be positive, got {value!r}")


def _in_open_unit(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1:
        raise DriftConfigError(f"{name} must lie strictly between 0 and 1, got {value!r}")
