"""The customer agent's settings: environment (``PREDIS_AGENT_*``), a ``.env`` file, or arguments.

Every field has a documented default; ``AgentSettings()`` reads ``PREDIS_AGENT_<FIELD>``
variables (case-insensitive) and a ``.env`` file in the working directory, and keyword
arguments win over both. The settings are validated once, here, and frozen.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from cache_core.replay import resolve_capacity
from customer_models.abtest import DEFAULT_MIN_REQUESTS

#: Name of the SQLite database inside the state directory (when no URL is given).
DATABASE_FILE = "agent.db"
#: Name of the customer's key secret inside the state directory (hex, mode 0600).
SECRET_FILE = "customer.secret"

ABMode = Literal["shadow", "split"]


class AgentSettings(BaseSettings):
    """Validated settings of one :class:`~federation.client.agent.CustomerAgent`.

    Attributes
    ----------
    customer_id
        The customer's name in the store, metrics and reports (``"customer"``).
    state_dir
        Directory holding the database, adapters, model versions and the key secret; created
        with mode 0700 (``./predis-agent``).
    database_url
        SQLAlchemy URL of the store; default ``sqlite:///<state_dir>/agent.db`` (created 0600).
    cache_size
        Capacity of the replayed cache: a fraction in (0, 1) of the trace's unique objects or an
        object count (``"0.01"``, design §4).
    batch_size
        Requests served per batch; the unit of commit and of off-path analysis (1024).
    persist_interval
        Requests between checkpoints; a kill loses at most the requests since the last one,
        which are replayed on restart (10,000).
    degree
        Prefetches per request at most (2, design §4).
    model_threshold
        Confidence a learned model's candidate needs to be prefetched (0.05), used when the
        model's manifest records no ``metrics.threshold``.
    sample_rate
        Burst-sampling rate of the node's sampler (0.003: within the 1% serving-overhead
        target, see ``BENCHMARKS.md``). Drift detection and the local sample store see only sampled
        requests, so a higher rate detects drift sooner at a higher serving cost.
    sample_window
        Burst window in requests (1024).
    store_samples
        Sampled requests kept in the local store at most; older ones are deleted (200,000).
    drift_adwin_delta, drift_ks_threshold, drift_psi_threshold
        Thresholds of :class:`customer_models.drift.DriftConfig`: ADWIN's confidence on the
        block hit ratios (1e-6), the KS distance of reuse and inter-arrival times (0.3) and the
        PSI of the key-popularity classes (4.0) that signal drift — that package's defaults,
        chosen on the bundled traces for at most one false alarm per million requests.
    drift_block_size, drift_recent_blocks, drift_reference_blocks, drift_warmup_blocks
        The drift windows, in *sampled* requests: blocks of 256, a recent window of 8 blocks,
        a reference history of 128 blocks (at least 16 before the first test) and 8 blocks of
        warm-up after (re)arming. The monitor sees the sampled stream only (burst windows back
        to back), so its windows are shorter than the full-stream defaults (blocks of 1,000);
        the first test needs ``(warmup + 2 * recent + reference_gap + recent) * block`` sampled
        requests (``reference_gap`` = 10 blocks, :class:`~customer_models.drift.DriftConfig`),
        and detection takes roughly ``(recent + 3) * block / sample_rate`` requests after a
        change. The false-alarm figures of ``BENCHMARKS.md`` are for the full-stream defaults.
    drift_key_table_bits
        Per-key statistics of each detector live in ``2 ** bits`` slots (16: the sampled keys).
    refit_steps, refit_batch_size, refit_learning_rate
        Adapter refresh after drift and challenger refit: Adam steps, batch, rate (30, 256, 3e-3).
    refit_min_samples
        Fewest stored samples an adapter refit uses; below it the adapter is left as is (2048).
    ab_mode
        ``"shadow"`` (ghost caches on the same requests, the default) or ``"split"`` (a key-hash
        traffic split between the two models, for customers who cannot run a ghost cache).
    ab_alpha
        False-adoption rate of the always-valid sequential test (0.05).
    ab_max_requests
        Requests a test may count before it ends ``inconclusive`` (200,000).
    ab_min_requests
        Requests a shadow test counts before it may decide (10,000, the test's default:
        the dispersion estimate then rests on 100 blocks, and a traffic phase shorter than
        that cannot decide alone; see :class:`customer_models.abtest.PairedSequentialTest`).
        Like ``ab_max_requests`` it counts the sampled requests the ghosts see.
    ab_sample_rate
        Spatial (key-hash) sample of keys whose requests the shadow ghost caches and the
        degradation watch see, with the ghosts' capacity scaled alike, as SHARDS does (0.01:
        within the 10% serving-overhead target during a test, see ``BENCHMARKS.md``; 1.0 runs
        them on every request). A test needs about ``1 / ab_sample_rate`` times more requests
        than one on every request.
    rollback_delta
        ADWIN confidence of the post-adoption degradation monitor (0.002).
    rollback_tolerance
        Drop of the hit level below the lowest pre-adoption window level that rolls back (0.02).
    rollback_confirm
        Sampled requests over which a new level is measured after a detected change, and the
        fewest pre-adoption ones a test collects before it counts (2,000).
    rollback_watch
        Requests after an adoption during which degradation rolls back (500,000).
    candidate_dir
        A directory watched for candidate global models (each a model directory, or the
        directory itself); checked at every checkpoint (none).
    registry_url
        Base URL of the adoption API (e.g. ``https://registry.example:8443``); when set, the
        agent polls it for new model versions, downloads and verifies them, A/B-tests them and
        reports its results and adoptions back (none: no API).
    registry_token
        The customer's bearer token (``predis-fl api create-token --role customer``); prefer
        ``registry_token_file``, a file readable by the agent only.
    registry_token_file
        File holding the token (must not be group/world readable).
    registry_trusted_keys
        Public keys (PEM files, ``predis-fl certs init``) whose signatures the agent accepts on
        downloaded models; several during a key rotation. Required with ``registry_url``.
    registry_ca_file
        CA certificate to verify the API's TLS certificate with (system roots when unset).
    registry_poll_seconds
        Seconds between polls for a new version (60).
    registry_timeout
        Seconds per HTTP request (10).
    registry_max_backoff
        Longest wait between tries while the API is unreachable, in seconds (300).
    metrics_port
        Port of the Prometheus ``/metrics`` HTTP server (none: not served).
    warm_restart
        On restart over a replayable source, rebuild the cache, prefetchers, monitors and ghost
        caches by re-running the recorded history without recording it again (``True``), so a
        resumed run ends exactly where an uninterrupted one would.
    privacy_epsilon, privacy_delta
        The customer's lifetime (ε, δ) budget for its privacy ledger (8.0, 1e-5).
    seed
        Seeds refits, the sampler's burst schedule and the traffic split (0).
    threads
        ``torch.set_num_threads`` for model work (1).
    """

    model_config = SettingsConfigDict(
        env_prefix="PREDIS_AGENT_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        frozen=True,
    )

    customer_id: str = Field(default="customer", min_length=1, max_length=128)
    state_dir: Path = Path("predis-agent")
    database_url: str | None = None
    cache_size: str = "0.01"
    batch_size: int = Field(default=1024, gt=0, le=1 << 20)
    persist_interval: int = Field(default=10_000, gt=0)
    degree: int = Field(default=2, ge=1, le=32)
    model_threshold: float = Field(default=0.05, ge=0.0)
    sample_rate: float = Field(default=0.003, gt=0.0, le=1.0)
    sample_window: int = Field(default=1024, gt=0)
    store_samples: int = Field(default=200_000, gt=0)
    drift_adwin_delta: float = Field(default=1e-6, gt=0.0, lt=1.0)
    drift_ks_threshold: float = Field(default=0.3, gt=0.0, lt=1.0)
    drift_psi_threshold: float = Field(default=4.0, gt=0.0)
    drift_block_size: int = Field(default=256, gt=0)
    drift_recent_blocks: int = Field(default=8, gt=0)
    drift_reference_blocks: int = Field(default=128, gt=0)
    drift_warmup_blocks: int = Field(default=8, ge=0)
    drift_key_table_bits: int = Field(default=16, ge=4, le=30)
    refit_steps: int = Field(default=30, ge=0)
    refit_batch_size: int = Field(default=256, gt=0)
    refit_learning_rate: float = Field(default=3e-3, gt=0.0)
    refit_min_samples: int = Field(default=2048, gt=0)
    ab_mode: ABMode = "shadow"
    ab_alpha: float = Field(default=0.05, gt=0.0, lt=1.0)
    ab_max_requests: int = Field(default=200_000, gt=0)
    ab_min_requests: int = Field(default=DEFAULT_MIN_REQUESTS, ge=0)
    ab_sample_rate: float = Field(default=0.01, gt=0.0, le=1.0)
    rollback_delta: float = Field(default=0.002, gt=0.0, lt=1.0)
    rollback_tolerance: float = Field(default=0.02, ge=0.0, lt=1.0)
    rollback_confirm: int = Field(default=2000, gt=0)
    rollback_watch: int = Field(default=500_000, gt=0)
    candidate_dir: Path | None = None
    registry_url: str | None = None
    registry_token: SecretStr | None = None
    registry_token_file: Path | None = None
    registry_trusted_keys: tuple[Path, ...] = ()
    registry_ca_file: Path | None = None
    registry_poll_seconds: float = Field(default=60.0, gt=0.0)
    registry_timeout: float = Field(default=10.0, gt=0.0)
    registry_max_backoff: float = Field(default=300.0, gt=0.0)
    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    warm_restart: bool = True
    privacy_epsilon: float = Field(default=8.0, gt=0.0)
    privacy_delta: float = Field(default=1e-5, gt=0.0, lt=1.0)
    seed: int = Field(default=0, ge=0)
    threads: int = Field(default=1, gt=0)

    @field_validator("cache_size")
    @classmethod
    def _check_cache_size(cls, value: str) -> str:
        resolve_capacity(value, 1_000_000)  # raises InvalidCapacityError (a ValueError)
        return value

    @model_validator(mode="after")
    def _check_registry(self) -> AgentSettings:
        if self.registry_url is None:
            return self
        if not self.registry_url.startswith(("http://", "https://")):
            raise ValueError("registry_url must start with http:// or https://")
        if self.registry_token is None and self.registry_token_file is None:
            raise ValueError("registry_url needs registry_token or registry_token_file")
        if not self.registry_trusted_keys:
            raise ValueError(
                "registry_url needs registry_trusted_keys (the registry's public signing keys)"
            )
        return self

    def registry_bearer(self) -> str:
        """Return the API token (from ``registry_token_file`` or ``registry_token``).

        Raises
        ------
        AgentConfigError
            If the token file is missing, empty or readable by others.
        """
        from federation.client.agent.errors import AgentConfigError

        if self.registry_token_file is not None:
            path = self.registry_token_file
            try:
                mode = path.stat().st_mode
                token = path.read_text("utf-8").strip()
            except OSError as exc:
                raise AgentConfigError(
                    f"cannot read the registry token file {path}: {exc}"
                ) from None
            if mode & 0o077:
                raise AgentConfigError(
                    f"the registry token file {path} is readable by others; chmod 600 it"
                )
            if not token:
                raise AgentConfigError(f"the registry token file {path} is empty")
            return token
        if self.registry_token is None:
            raise AgentConfigError("no registry token is configured")
        return self.registry_token.get_secret_value()

    @property
    def database_path(self) -> Path | None:
        """The SQLite file of the default store (``None`` when ``database_url`` is given)."""
        return None if self.database_url else self.state_dir / DATABASE_FILE

    @property
    def store_url(self) -> str:
        """The SQLAlchemy URL of the store."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.state_dir / DATABASE_FILE).resolve()}"

    @property
    def secret_path(self) -> Path:
        """Where the customer's key secret lives when ``$PREDIS_CUSTOMER_SECRET`` is unset."""
        return self.state_dir / SECRET_FILE
