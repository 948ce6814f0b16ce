"""The long-running customer agent: local store, drift, A/B adoption, rollback, metrics."""

from federation.client.agent.agent import CustomerAgent
from federation.client.agent.deployment_store import AgentSampleReader, AgentStoreMissingError
from federation.client.agent.drift_feed import DriftMonitorLike, make_drift_monitor
from federation.client.agent.errors import (
    AgentConfigError,
    AgentError,
    AgentStateError,
    CandidateRefusedError,
)
from federation.client.agent.metrics import AgentMetrics
from federation.client.agent.records import (
    AdapterRecord,
    AgentSnapshot,
    ChampionRecord,
    DecisionRecord,
    DriftRecord,
    ModelVersionRecord,
    RefreshRecord,
)
from federation.client.agent.registry_link import LinkStatus, RegistryLink
from federation.client.agent.sample_source import StoredSamplesSource
from federation.client.agent.settings import AgentSettings
from federation.client.agent.source import RequestBatch, RequestSource, TraceReplaySource
from federation.client.agent.store import AgentStore
from federation.client.agent.store_queries import STORED_SAMPLE_DTYPE
from federation.client.agent.summary import AgentSummary
from federation.client.agent.supernode import SuperNodeOptions, SuperNodeProcess, SuperNodeStatus

__all__ = [
    "STORED_SAMPLE_DTYPE",
    "AdapterRecord",
    "AgentConfigError",
    "AgentError",
    "AgentMetrics",
    "AgentSampleReader",
    "AgentSettings",
    "AgentSnapshot",
    "AgentStateError",
    "AgentStore",
    "AgentStoreMissingError",
    "AgentSummary",
    "CandidateRefusedError",
    "ChampionRecord",
    "CustomerAgent",
    "DecisionRecord",
    "DriftMonitorLike",
    "DriftRecord",
    "LinkStatus",
    "ModelVersionRecord",
    "RefreshRecord",
    "RegistryLink",
    "RequestBatch",
    "RequestSource",
    "StoredSamplesSource",
    "SuperNodeOptions",
    "SuperNodeProcess",
    "SuperNodeStatus",
    "TraceReplaySource",
    "make_drift_monitor",
]
