"""The agent's models: champions and challengers built from recorded versions and adapters.

:class:`ModelShop` owns the stream featurizer that learned models read (one per replayed trace,
created when a learned model first needs it and caught up to the current request), loads
recorded model versions and adapters from the store, builds a challenger from a candidate
(candidate base + the customer's adapter, refitted on recent samples) and refreshes the
champion's adapter after drift. Every artifact is looked up by its provenance first, so a
replay after a kill reuses what was built before it instead of building it again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from customer_models import AccessModel, KeyEncoder, ModelBundle, save_model
from customer_models.features import FeaturizerConfig
from federation.client.agent.errors import AgentConfigError, CandidateRefusedError
from federation.client.agent.model_work import (
    RefitResult,
    adapter_bytes,
    adapter_fits,
    load_adapter_bytes,
    load_version,
    manifest_sha256,
    refit_adapter,
    threshold_of,
    verify_candidate,
)
from federation.client.agent.private_files import ensure_private_dir
from federation.client.agent.proposers import (
    Markov2Proposer,
    ModelProposer,
    NoProposer,
    Proposer,
)
from federation.client.agent.ranker import ModelRanker, StreamFeaturizer
from federation.client.agent.records import (
    AdapterRecord,
    ChampionKind,
    ModelVersionRecord,
    RefreshRecord,
)
from federation.client.agent.settings import AgentSettings
from federation.client.agent.source import RequestSource
from federation.client.agent.store import AgentStore
from federation.client.agent.trial import Champion

_log = logging.getLogger(__name__)
_MODELS_DIR = "models"


@dataclass(frozen=True)
class Challenger:
    """A challenger built from a candidate: its version, adapter and proposer."""

    version: ModelVersionRecord
    adapter: AdapterRecord
    proposer: ModelProposer


class ModelShop:
    """Builds and loads the agent's models (see the module docstring).

    Parameters
    ----------
    store
        The agent's store.
    settings
        The agent's settings (thresholds, refit settings).
    encoder
        The customer's key encoder.
    source
        The request source (learned models need a replayed trace).
    """

    def __init__(
        self,
        store: AgentStore,
        settings: AgentSettings,
        encoder: KeyEncoder,
        source: RequestSource,
    ) -> None:
        self._store = store
        self._settings = settings
        self._encoder = encoder
        self._source = source
        self.stream: StreamFeaturizer | None = None

    def __repr__(self) -> str:
        return f"ModelShop(stream={self.stream is not None})"

    # -- the stream featurizer -----------------------------------------------------------------

    def stream_for(self, config: FeaturizerConfig, position: int) -> StreamFeaturizer:
        """Return the stream featurizer of ``config``, at ``position`` (created if needed).

        Raises
        ------
        AgentConfigError
            If the source has no trace to featurize, or a stream of another configuration is in
            use.
        """
        if self.stream is not None:
            if self.stream.config != config:
                raise AgentConfigError(
                    "this model's featurizer configuration differs from the running model's"
                )
            return self.stream
        trace = getattr(self._source, "trace", None)
        if trace is None:
            raise AgentConfigError(
                "learned prefetching needs a replayed trace as the request source (the "
                "real-time source is not supported yet)"
            )
        stream = StreamFeaturizer(trace, config)
        stream.skip_to(position)
        self.stream = stream
        return stream

    # -- champions -----------------------------------------------------------------------------

    def champion(
        self, kind: ChampionKind, version_id: int | None, adapter_id: int | None, position: int
    ) -> Champion:
        """Build the champion a record names, ready to serve from request ``position``."""
        proposer: Proposer
        if kind == "none":
            proposer = NoProposer()
        elif kind == "markov2":
            proposer = Markov2Proposer()
        else:
            if version_id is None:
                raise AgentConfigError("a learned champion needs a model version")
            version = self._store.model_version(version_id)
            bundle = load_version(version.directory, self._encoder)
            if adapter_id is not None:
                data = self._store.read_adapter(self._store.adapter(adapter_id))
                load_adapter_bytes(bundle.model, data)
            proposer = self._proposer(bundle, position)
        return Champion(kind, version_id, adapter_id, proposer)

    def register_initial(self, spec: str | Path) -> tuple[ChampionKind, int | None, int | None]:
        """Record the champion a first start is given (``none``, ``markov2`` or a model dir).

        Returns
        -------
        tuple
            ``(kind, version_id, adapter_id)``.
        """
        if str(spec) in ("none", "markov2"):
            return ("none" if str(spec) == "none" else "markov2"), None, None
        directory = Path(spec).resolve()
        bundle = load_version(directory, self._encoder)
        version = self._store.add_model_version(
            directory,
            manifest_sha256(directory),
            source="champion",
            status="initial",
            request_index=0,
        )
        adapter = self._store.add_adapter(
            adapter_bytes(bundle.model), source="initial", request_index=0
        )
        return "model", version.id, adapter.id

    def _proposer(self, bundle: ModelBundle, position: int) -> ModelProposer:
        stream = self.stream_for(bundle.featurizer, position)
        threshold = threshold_of(bundle, self._settings.model_threshold)
        return ModelProposer(ModelRanker(bundle.model, stream, self._encoder, threshold))

    # -- challengers ---------------------------------------------------------------------------

    def challenger(
        self,
        candidate: ModelVersionRecord,
        champion: Champion,
        index: int,
        samples: NDArray[np.void],
    ) -> Challenger:
        """Verify a candidate and build its challenger at request ``index``.

        Raises
        ------
        CandidateRefusedError
            If the candidate is refused (corrupt, wrong shapes, foreign key table, other
            featurizer).
        """
        running = _model_of(champion)
        bundle = verify_candidate(candidate.directory, self._encoder, running)
        try:
            stream = self.stream_for(bundle.featurizer, index)
        except AgentConfigError as exc:
            raise CandidateRefusedError(f"candidate refused: {exc}") from None
        model = bundle.model
        built = self._store.find_model_version("challenger", index, candidate.id)
        adapter = self._store.find_adapter("challenger", index)
        if built is not None and adapter is not None:
            model = load_version(built.directory, self._encoder).model
        else:
            if champion.adapter_id is not None:
                own = self._store.read_adapter(self._store.adapter(champion.adapter_id))
                if adapter_fits(model, own):
                    load_adapter_bytes(model, own)
            result = self._refit(model, bundle.featurizer, samples, index)
            adapter = self._store.add_adapter(
                adapter_bytes(model),
                source="challenger",
                request_index=index,
                samples=result.samples,
                steps=result.steps,
                loss=result.loss,
            )
            folder = ensure_private_dir(self._store.state_dir / _MODELS_DIR)
            directory = folder / f"challenger-{index}-{candidate.id}"
            save_model(
                directory,
                model,
                featurizer=bundle.featurizer,
                encoder=self._encoder,
                training={**bundle.training, "candidate": candidate.directory},
                metrics={
                    **bundle.metrics,
                    "threshold": threshold_of(bundle, self._settings.model_threshold),
                    "refit_steps": result.steps,
                    "refit_samples": result.samples,
                },
            )
            built = self._store.add_model_version(
                directory,
                manifest_sha256(directory),
                source="challenger",
                status="challenger",
                request_index=index,
                parent_id=candidate.id,
            )
        threshold = threshold_of(bundle, self._settings.model_threshold)
        proposer = ModelProposer(ModelRanker(model, stream, self._encoder, threshold))
        return Challenger(built, adapter, proposer)

    # -- adapter refresh -----------------------------------------------------------------------

    def refresh(
        self, champion: Champion, index: int, samples: NDArray[np.void]
    ) -> tuple[Champion, RefreshRecord]:
        """Refit the champion's adapter after drift at request ``index`` (recorded artifact).

        A champion without a learned model keeps running unchanged (nothing to refit).
        """
        proposer = champion.proposer
        if not isinstance(proposer, ModelProposer):
            return champion, RefreshRecord(index, "drift", None, 0, 0, None)
        model = proposer.ranker.model
        found = self._store.find_adapter("refresh", index)
        if found is not None:
            load_adapter_bytes(model, self._store.read_adapter(found))
            record = RefreshRecord(index, "drift", found.id, found.samples, found.steps, found.loss)
        else:
            result = self._refit(model, proposer.ranker.stream.config, samples, index)
            if result.steps == 0:
                return champion, RefreshRecord(index, "drift", None, result.samples, 0, None)
            found = self._store.add_adapter(
                adapter_bytes(model),
                source="refresh",
                request_index=index,
                samples=result.samples,
                steps=result.steps,
                loss=result.loss,
            )
            record = RefreshRecord(
                index, "drift", found.id, result.samples, result.steps, result.loss
            )
        updated = Champion(champion.kind, champion.version_id, found.id, champion.proposer)
        return updated, record

    def _refit(
        self,
        model: AccessModel,
        featurizer: FeaturizerConfig,
        samples: NDArray[np.void],
        index: int,
    ) -> RefitResult:
        s = self._settings
        return refit_adapter(
            model,
            samples,
            self._encoder,
            featurizer,
            steps=s.refit_steps,
            batch_size=s.refit_batch_size,
            learning_rate=s.refit_learning_rate,
            min_samples=s.refit_min_samples,
            seed=s.seed + index,
        )


def _model_of(champion: Champion) -> AccessModel | None:
    proposer = champion.proposer
    return proposer.ranker.model if isinstance(proposer, ModelProposer) else None
