"""The Flower app's run configuration, read once into a frozen, validated dataclass.

Both apps read the same ``[tool.flwr.app.config]`` table (``context.run_config``, possibly
overridden with ``flwr run --run-config``) through :meth:`FederationConfig.from_run_config` once
per entry-point call; nothing else in :mod:`federation` looks up run-config keys. Unknown keys
are refused, so a typo fails the run at its start instead of being silently ignored.

The module also fixes the message contract shared by the ServerApp and the ClientApp: the
record names of train/evaluate messages and the metric names of the replies.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from customer_models import ModelConfig
from simulations import BUILTIN

#: Registry run names: version ids are ``<name>-r<round:04d>`` (at most 64 characters).
_RUN_NAME = re.compile(r"[A-Za-z0-9._-]{1,58}")

StrategyName = Literal["fedavg", "fedadam", "fedprox"]
RobustName = Literal["none", "trimmed-mean", "krum"]
#: The built-in synthetic scenario; any other ``scenario`` value names a simulation scenario.
SYNTHETIC_SCENARIO = "synthetic"

# --- message contract ---------------------------------------------------------------------------

#: ArrayRecord of a train/evaluate instruction and of a train reply: the shared base only.
ARRAYS_KEY = "arrays"
#: ConfigRecord of an instruction (server round, FedProx's ``proximal-mu``).
CONFIG_KEY = "config"
#: MetricRecord of a reply.
METRICS_KEY = "metrics"
#: ConfigRecord of a reply saying whether the client trained, and why not.
STATUS_KEY = "status"
#: Status values of :data:`STATUS_KEY` (``{"code": ..., "reason": ...}``).
STATUS_OK = "ok"
STATUS_INSUFFICIENT_DATA = "insufficient-data"
STATUS_BUDGET_EXHAUSTED = "privacy-budget-exhausted"
#: Weight of a reply in aggregation (FedAvg's ``weighted_by_key``).
NUM_EXAMPLES = "num-examples"
#: Default largest share of a round's sampled customers that may fail (error or no reply
#: before ``round-timeout``) with the round still aggregated (run config ``max-failed-fraction``).
DEFAULT_MAX_FAILED_FRACTION = 0.5
#: Metrics every successful train reply carries (and nothing else).
TRAIN_METRICS = (NUM_EXAMPLES, "local-steps", "train-loss", "epsilon")
#: Metrics every evaluate reply carries (and nothing else).
EVALUATE_METRICS = (NUM_EXAMPLES, "eval-loss")
#: Config flag of an evaluate instruction asking for the customer's final report (and the
#: ConfigRecord of its reply holding the report; see :mod:`federation.client.final_report`).
FINAL_REPORT_KEY = "final-report"
#: Config key of a final-report instruction: adapter steps of the "global" variant.
ADAPTER_STEPS_KEY = "adapter-steps"
#: Adapter steps a new customer's adapter is fitted for in the final report's "global" variant.
DEFAULT_ADAPTER_STEPS = 20
#: Status of a final-report reply whose evaluation failed.
STATUS_REPORT_FAILED = "final-report-failed"
#: ConfigRecord of the single aggregate reply a SecAgg+ round hands the strategy: the nodes
#: summed, refused and dropped out, and the bytes received (see
#: :mod:`federation.server.secure_aggregation`).
SECURE_AGGREGATION_KEY = "secure-aggregation"
#: Status of a customer asked to train in the clear by a run that requires SecAgg+.
STATUS_SECURE_AGGREGATION_REQUIRED = "secure-aggregation-required"
#: Status of the aggregate reply of a SecAgg+ round that produced no sum.
STATUS_SECURE_AGGREGATION_FAILED = "secure-aggregation-failed"
#: Metrics a customer's SecAgg+ reply (Flower's legacy ``FitRes``) adds: its status code and
#: reason (the legacy status cannot carry ours).
SECAGG_STATUS_METRICS = ("status", "status-reason")


class FederationConfigError(ValueError):
    """A run-config value is missing, unknown, of the wrong type or out of range."""


@dataclass(frozen=True)
class PrivacySettings:
    """Differential-privacy settings.

    Sample level: :mod:`federation.client.dp_trainer`; client level:
    :mod:`federation.client.update_privacy` (both say what guarantee holds).

    Attributes
    ----------
    sample_level
        Train with DP-SGD on each client (run config ``dp-sample-level``); the noise is
        calibrated once for ``num-server-rounds × local-steps`` steps.
    target_epsilon, delta
        The per-customer budget ``(ε, δ)`` accounted across all rounds
        (``dp-target-epsilon``, ``dp-delta``); client-level ε is reported at the same ``δ``.
    max_grad_norm
        Per-example gradient clip of DP-SGD (``dp-max-grad-norm``).
    client_level
        Each client clips and noises its own update of the shared base before replying
        (``dp-client-level``).
    client_clip
        Update-norm clip of client-level DP (``dp-client-clip``).
    client_noise
        Noise multiplier of client-level DP (``dp-client-noise``).
    client_max_epsilon
        Client-level budget (``dp-client-max-epsilon``): a customer declines a round whose
        release would take its client-level ε at ``delta`` above this. ``0``: no limit (the ε
        is still accounted and reported). Kept apart from ``target_epsilon``: the two ε are
        about different neighbouring datasets and are never added.
    """

    sample_level: bool = False
    target_epsilon: float = 8.0
    delta: float = 1e-5
    max_grad_norm: float = 1.0
    client_level: bool = False
    client_clip: float = 1.0
    client_noise: float = 1.0
    client_max_epsilon: float = 0.0

    def __post_init__(self) -> None:
        _positive("dp-target-epsilon", self.target_epsilon)
        if not 0.0 < self.delta < 1.0:
            raise FederationConfigError(f"dp-delta must be in (0, 1), got {self.delta}")
        _positive("dp-max-grad-norm", self.max_grad_norm)
        _positive("dp-client-clip", self.client_clip)
        if not self.client_noise >= 0.0:
            raise FederationConfigError(f"dp-client-noise must be >= 0, got {self.client_noise}")
        if not (math.isfinite(self.client_max_epsilon) and self.client_max_epsilon >= 0.0):
            raise FederationConfigError(
                f"dp-client-max-epsilon must be a number >= 0 (0: no limit), "
                f"got {self.client_max_epsilon!r}"
            )
        if self.client_max_epsilon > 0.0 and self.client_noise == 0.0:
            raise FederationConfigError(
                "dp-client-max-epsilon is set but dp-client-noise = 0 adds no noise (ε is "
                "infinite): set a positive dp-client-noise or dp-client-max-epsilon = 0"
            )


#: SecAgg+ masks in integers modulo this (Flower's default); the sum of the sampled customers'
#: quantized values must stay below it, so at most ``MODULUS_RANGE // quantization_range - 1``
#: customers can be summed in one round.
MODULUS_RANGE = 1 << 32


@dataclass(frozen=True)
class SecureAggregationSettings:
    """Parameters of Flower's SecAgg+ protocol (used when ``secure-aggregation = true``).

    See :mod:`federation.server.secure_aggregation` for what the protocol guarantees and what
    it switches off.

    Attributes
    ----------
    num_shares
        Shares each customer splits its secrets into (``secagg-num-shares``): at most 1, the
        share of the round's sampled customers (1.0: all of them); above 1, a count (a whole
        number >= 3).
    reconstruction_threshold
        Shares needed to reconstruct a secret (``secagg-reconstruction-threshold``): at most 1,
        the share of ``num_shares``; above 1, a count (a whole number >= 2, below a count of
        shares). The server learns an individual update only with the help of this many
        customers, and a round survives as long as every customer keeps this many neighbours.
    clipping_range
        Every coordinate of a customer's weighted update is clipped to
        ``[-clipping_range, clipping_range]`` before quantization (``secagg-clipping-range``).
    quantization_range
        Levels of the quantization (``secagg-quantization-range``, a power of two below 2**32).
        A customer uploads its update weighted by ``n_i / max-samples`` (``n_i``: its training
        examples), so the rounding step of its update is ``2 · clipping_range /
        quantization_range · max-samples / n_i`` (unbiased, stochastic rounding).
    """

    num_shares: float = 1.0
    reconstruction_threshold: float = 0.67
    clipping_range: float = 8.0
    quantization_range: int = 1 << 22

    def __post_init__(self) -> None:
        _share_or_count("secagg-num-shares", self.num_shares, smallest=3)
        _share_or_count("secagg-reconstruction-threshold", self.reconstruction_threshold, 2)
        if (
            self.num_shares > 1.0
            and self.reconstruction_threshold > 1.0
            and self.reconstruction_threshold >= self.num_shares
        ):
            raise FederationConfigError(
                "secagg-reconstruction-threshold must be below secagg-num-shares, got "
                f"{self.reconstruction_threshold:g} >= {self.num_shares:g}"
            )
        _positive("secagg-clipping-range", self.clipping_range)
        q = self.quantization_range
        if not (2 <= q < MODULUS_RANGE and q & (q - 1) == 0):
            raise FederationConfigError(
                f"secagg-quantization-range must be a power of two in [2, 2**32), got {q}"
            )


@dataclass(frozen=True)
class FederationConfig:
    """Everything a federated run is configured with (see :data:`RUN_CONFIG_KEYS`).

    Attributes
    ----------
    num_server_rounds
        Total rounds of the run; a resumed run carries on up to this round.
    fraction_train, min_train_nodes, min_available_nodes
        Client sampling per round (as Flower's ``FedAvg``).
    fraction_evaluate, min_evaluate_nodes
        Federated evaluation sampling (``fraction-evaluate = 0`` skips it).
    round_timeout
        Seconds the server waits for replies in a round; a sampled customer that has not
        replied by then counts as failed.
    max_failed_fraction
        Largest share of a round's sampled customers that may fail — reply with an error
        (a customer that went away included) or not before ``round-timeout`` — with the round
        still aggregated over the others (``max-failed-fraction``, in ``[0, 1]``). When more
        fail, the round is recorded (reason in its manifest's ``skipped``) and the global base
        stays as it was. Customers that decline with a status (too little data, privacy budget
        spent) and replies excluded at screening do not count as failed. See
        :mod:`federation.server.failure_tolerance`.
    local_epochs, local_steps
        Local training per round: ``local_epochs`` passes over the customer's training
        examples, stopped early after ``local_steps`` optimizer steps when ``local_steps > 0``.
    batch_size, learning_rate
        Local optimiser settings.
    max_samples, min_examples
        Training positions drawn from a customer's training part, and the fewest training
        examples a client trains on (fewer → it replies ``insufficient-data``).
    label_horizon
        A candidate is a positive if requested within this many requests (1: next request).
    strategy
        ``fedavg``, ``fedadam`` or ``fedprox``.
    proximal_mu
        FedProx's proximal weight.
    server_learning_rate
        FedAdam's server learning rate ``eta``.
    robust_aggregation
        ``none`` (the strategy's weighted mean), ``trimmed-mean`` or ``krum``.
    trim_fraction
        β of the coordinate-wise trimmed mean: the share cut at *each* end.
    krum_byzantine
        f of Krum: the number of Byzantine clients tolerated.
    clip_bound
        Expected bound on a client's update norm ``‖w_client - w_global‖₂`` (0: no screening).
    norm_screen_factor
        A reply whose update norm exceeds ``norm_screen_factor × clip_bound`` is left out.
    secure_aggregation
        Aggregate the round's updates with Flower's SecAgg+ protocol, so the server sees only
        their weighted sum (``secure-aggregation``; parameters in ``secagg``). Robust
        aggregation cannot be combined with it, and at least 3 customers must train per round.
    checkpoint_dir
        Where each round's merged base is saved (empty: no checkpoints).
    resume
        Start from the last round saved in ``checkpoint_dir``.
    registry_database, registry_artifacts, registry_signing_key, registry_run_name
        Publish every saved round to the model registry at ``registry-database`` (an
        SQLAlchemy URL; empty: no publishing) as a signed version
        ``<registry-run-name>-r<round>``, artifacts under ``registry-artifacts``, signed with
        the Ed25519 key file ``registry-signing-key`` (see
        :mod:`federation.server.registry_publisher`). Needs ``checkpoint-dir``.
    seed
        Seeds the initial base and the clients' sampling and shuffling.
    scenario
        Where customers' data comes from: ``synthetic`` (seeded synthetic customers), the
        name of a built-in simulation scenario (``default``, ``cold-start``, ``smoke``) or the
        path of a scenario TOML file (see :mod:`simulations.scenario`); a scenario's customer
        ``i`` is played by the node with ``partition-id = i``, and ``num-supernodes`` must equal
        its customer count.
    synthetic_requests, synthetic_seed
        Length of each synthetic customer's trace and the scenario's seed.
    model
        Shape of the access model (``model-*`` and ``adapter-*`` keys).
    privacy
        DP settings (``dp-*`` keys).
    secagg
        SecAgg+ parameters (``secagg-*`` keys).
    """

    num_server_rounds: int = 3
    fraction_train: float = 1.0
    min_train_nodes: int = 2
    min_available_nodes: int = 2
    fraction_evaluate: float = 0.0
    min_evaluate_nodes: int = 2
    round_timeout: float = 3600.0
    max_failed_fraction: float = DEFAULT_MAX_FAILED_FRACTION
    local_epochs: int = 1
    local_steps: int = 50
    batch_size: int = 256
    learning_rate: float = 3e-3
    max_samples: int = 20_000
    min_examples: int = 64
    label_horizon: int = 1
    strategy: StrategyName = "fedavg"
    proximal_mu: float = 0.01
    server_learning_rate: float = 0.1
    robust_aggregation: RobustName = "none"
    trim_fraction: float = 0.1
    krum_byzantine: int = 0
    clip_bound: float = 0.0
    norm_screen_factor: float = 10.0
    secure_aggregation: bool = False
    checkpoint_dir: str = ""
    resume: bool = False
    registry_database: str = ""
    registry_artifacts: str = ""
    registry_signing_key: str = ""
    registry_run_name: str = "run"
    seed: int = 0
    scenario: str = SYNTHETIC_SCENARIO
    synthetic_requests: int = 20_000
    synthetic_seed: int = 0
    model: ModelConfig = field(default_factory=ModelConfig)
    privacy: PrivacySettings = field(default_factory=PrivacySettings)
    secagg: SecureAggregationSettings = field(default_factory=SecureAggregationSettings)

    def __post_init__(self) -> None:
        for name in (
            "num_server_rounds",
            "min_train_nodes",
            "min_available_nodes",
            "local_epochs",
            "batch_size",
            "max_samples",
            "min_examples",
            "label_horizon",
            "synthetic_requests",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise FederationConfigError(
                    f"{_key(name)} must be a positive integer, got {value!r}"
                )
        for name in ("local_steps", "krum_byzantine", "min_evaluate_nodes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise FederationConfigError(f"{_key(name)} must be an integer >= 0, got {value!r}")
        if self.registry_database:
            missing = [
                _key(name)
                for name in ("checkpoint_dir", "registry_artifacts", "registry_signing_key")
                if not getattr(self, name)
            ]
            if missing:
                raise FederationConfigError(
                    f"registry-database is set, so {', '.join(missing)} must be set too"
                )
        if not _RUN_NAME.fullmatch(self.registry_run_name):
            raise FederationConfigError(
                "registry-run-name must be 1-58 letters, digits, '.', '_' or '-', got "
                f"{self.registry_run_name!r}"
            )
        if not 0.0 < self.fraction_train <= 1.0:
            raise FederationConfigError(
                f"fraction-train must be in (0, 1], got {self.fraction_train}"
            )
        if not 0.0 <= self.fraction_evaluate <= 1.0:
            raise FederationConfigError(
                f"fraction-evaluate must be in [0, 1], got {self.fraction_evaluate}"
            )
        if not 0.0 <= self.max_failed_fraction <= 1.0:
            raise FederationConfigError(
                f"max-failed-fraction must be in [0, 1], got {self.max_failed_fraction}"
            )
        for name in (
            "round_timeout",
            "learning_rate",
            "server_learning_rate",
            "norm_screen_factor",
        ):
            _positive(_key(name), getattr(self, name))
        if not (math.isfinite(self.proximal_mu) and self.proximal_mu >= 0.0):
            raise FederationConfigError(f"proximal-mu must be >= 0, got {self.proximal_mu}")
        if not (math.isfinite(self.clip_bound) and self.clip_bound >= 0.0):
            raise FederationConfigError(f"clip-bound must be >= 0, got {self.clip_bound}")
        if not 0.0 <= self.trim_fraction < 0.5:
            raise FederationConfigError(
                f"trim-fraction must be in [0, 0.5), got {self.trim_fraction}"
            )
        _choice("strategy", self.strategy, StrategyName)
        _choice("robust-aggregation", self.robust_aggregation, RobustName)
        _check_scenario(self.scenario)
        if self.resume and not self.checkpoint_dir:
            raise FederationConfigError("resume = true needs a checkpoint-dir to resume from")
        if self.secure_aggregation:
            self._check_secure_aggregation()

    def _check_secure_aggregation(self) -> None:
        if self.robust_aggregation != "none":
            raise FederationConfigError(
                f"robust-aggregation = {self.robust_aggregation!r} needs every customer's "
                "update, which secure aggregation hides from the server; set "
                'robust-aggregation = "none" or secure-aggregation = false'
            )
        if self.min_train_nodes < 3:
            raise FederationConfigError(
                "secure aggregation needs min-train-nodes >= 3 (with two customers each "
                f"could subtract its own update from the sum), got {self.min_train_nodes}"
            )
        limit = MODULUS_RANGE // self.secagg.quantization_range - 1
        if self.min_train_nodes > limit:
            raise FederationConfigError(
                f"secure aggregation can sum at most {limit} customers with "
                f"secagg-quantization-range = {self.secagg.quantization_range}, "
                f"min-train-nodes is {self.min_train_nodes}"
            )

    @classmethod
    def from_run_config(cls, run_config: Mapping[str, Any]) -> FederationConfig:
        """Read a Flower run config (kebab-case keys, see :data:`RUN_CONFIG_KEYS`).

        Parameters
        ----------
        run_config
            ``context.run_config``, or any mapping of run-config keys to values; keys not
            given keep their defaults.

        Raises
        ------
        FederationConfigError
            If a key is unknown or a value has the wrong type or range.
        """
        unknown = sorted(set(run_config) - set(RUN_CONFIG_KEYS))
        if unknown:
            raise FederationConfigError(
                f"unknown run-config keys {unknown}; known keys are {sorted(RUN_CONFIG_KEYS)}"
            )
        groups: dict[str, dict[str, Any]] = {"": {}, "model": {}, "privacy": {}, "secagg": {}}
        for key, value in run_config.items():
            group, attr = RUN_CONFIG_KEYS[key]
            groups[group][attr] = _coerce(key, value, _FIELD_TYPES[(group, attr)])
        try:
            model = ModelConfig(**groups["model"])
        except ValueError as exc:
            raise FederationConfigError(f"bad model settings: {exc}") from None
        return cls(
            **groups[""],
            model=model,
            privacy=PrivacySettings(**groups["privacy"]),
            secagg=SecureAggregationSettings(**groups["secagg"]),
        )

    def with_overrides(self, overrides: Mapping[str, Any]) -> FederationConfig:
        """Return a copy with some run-config keys replaced (validated like the originals)."""
        return FederationConfig.from_run_config({**self.to_run_config(), **overrides})

    def to_run_config(self) -> dict[str, Any]:
        """Return every setting under its run-config key (the inverse of ``from_run_config``)."""
        out: dict[str, Any] = {}
        for key, (group, attr) in RUN_CONFIG_KEYS.items():
            owner = self if not group else getattr(self, group)
            out[key] = getattr(owner, attr)
        return out


def _key(attr: str) -> str:
    return attr.replace("_", "-")


def _positive(name: str, value: float) -> None:
    if not (math.isfinite(value) and value > 0.0):
        raise FederationConfigError(f"{name} must be a positive number, got {value!r}")


def _share_or_count(name: str, value: float, smallest: int) -> None:
    """Check a SecAgg+ size: a share in ``(0, 1]`` or a whole count >= ``smallest``."""
    if 0.0 < value <= 1.0 or (value >= smallest and float(value).is_integer()):
        return
    raise FederationConfigError(
        f"{name} must be a share in (0, 1] or a whole number >= {smallest}, got {value!r}"
    )


def _choice(name: str, value: str, literal: Any) -> None:
    allowed = get_args(literal)
    if value not in allowed:
        raise FederationConfigError(f"{name} must be one of {list(allowed)}, got {value!r}")


def _check_scenario(value: str) -> None:
    if value == SYNTHETIC_SCENARIO or value in BUILTIN or value.endswith(".toml"):
        return
    raise FederationConfigError(
        f"scenario must be {SYNTHETIC_SCENARIO!r}, a built-in scenario ({', '.join(BUILTIN)}) "
        f"or the path of a scenario .toml file, got {value!r}"
    )


def _coerce(key: str, value: Any, kind: type) -> Any:
    """Check one run-config value against its field type (ints are accepted for floats)."""
    if kind is bool:
        if isinstance(value, bool):
            return value
    elif kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif kind is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    elif isinstance(value, str):
        return value
    raise FederationConfigError(
        f"run-config key {key} must be a {kind.__name__}, got {value!r} ({type(value).__name__})"
    )


def _run_config_keys() -> dict[str, tuple[str, str]]:
    keys: dict[str, tuple[str, str]] = {}
    for f in dataclasses.fields(FederationConfig):
        if f.name not in ("model", "privacy", "secagg"):
            keys[_key(f.name)] = ("", f.name)
    for f in dataclasses.fields(ModelConfig):
        prefix = "" if f.name.startswith("adapter_") else "model-"
        keys[prefix + _key(f.name)] = ("model", f.name)
    for f in dataclasses.fields(PrivacySettings):
        keys["dp-" + _key(f.name)] = ("privacy", f.name)
    for f in dataclasses.fields(SecureAggregationSettings):
        keys["secagg-" + _key(f.name)] = ("secagg", f.name)
    return keys


def _field_types() -> dict[tuple[str, str], type]:
    defaults: dict[tuple[str, str], type] = {}
    for group, obj in (
        ("", FederationConfig()),
        ("model", ModelConfig()),
        ("privacy", PrivacySettings()),
        ("secagg", SecureAggregationSettings()),
    ):
        for f in dataclasses.fields(obj):
            defaults[(group, f.name)] = type(getattr(obj, f.name))
    return defaults


#: Run-config key → ``(group, attribute)``; group ``""`` is :class:`FederationConfig` itself,
#: ``"model"`` its :class:`~customer_models.ModelConfig`, ``"privacy"`` its
#: :class:`PrivacySettings`. Model keys are ``model-hidden``, ``model-window``,
#: ``model-scorer-hidden``, ``model-context``, ``adapter-buckets``, ``adapter-rank``; DP keys
#: are ``dp-sample-level``, ``dp-target-epsilon``, ``dp-delta``, ``dp-max-grad-norm``,
#: ``dp-client-level``, ``dp-client-clip``, ``dp-client-noise``, ``dp-client-max-epsilon``;
#: ``"secagg"`` its :class:`SecureAggregationSettings` (``secagg-num-shares``,
#: ``secagg-reconstruction-threshold``, ``secagg-clipping-range``,
#: ``secagg-quantization-range``).
RUN_CONFIG_KEYS: dict[str, tuple[str, str]] = _run_config_keys()
_FIELD_TYPES: dict[tuple[str, str], type] = _field_types()
