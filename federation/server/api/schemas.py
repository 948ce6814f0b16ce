"""Request and response bodies of the adoption API (the OpenAPI schema is generated from these)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from federation.server.registry import (
    ID_PATTERN,
    AbResult,
    AbResultView,
    AdoptionRecord,
    AdoptionView,
    ModelVersion,
    PrivacyLedgerEntry,
    model_signature,
)

CLIENT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"


def _plain_text(value: str) -> str:
    if "\x00" in value:
        raise ValueError("text must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("text must be valid Unicode (no lone surrogates)") from None
    return value


Identifier = Annotated[str, Field(pattern=ID_PATTERN, min_length=1, max_length=64)]
ClientId = Annotated[str, Field(pattern=CLIENT_ID_PATTERN, min_length=1, max_length=128)]
Reason = Annotated[str, Field(min_length=1, max_length=2000), AfterValidator(_plain_text)]


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class Health(BaseModel):
    """``GET /v1/health``."""

    status: Literal["ok"]
    database: Literal["ok"]
    schema_revision: str


class SignatureBody(BaseModel):
    """A detached Ed25519 signature over the manifest's canonical bytes."""

    algorithm: Literal["ed25519"] = "ed25519"
    key_id: str = Field(min_length=64, max_length=64, pattern=r"^[0-9a-f]{64}$")
    signature: str = Field(max_length=128, description="base64 of the 64-byte signature")


class ArtifactInfo(BaseModel):
    """Where and what the weights are."""

    file: str
    sha256: str
    size: int
    url: str


class ModelOut(_Out):
    """One model version with its signed manifest (verify before loading the artifact)."""

    version: str
    round: int | None
    parent: str | None
    metrics: dict[str, Any]
    created_at: datetime
    artifact: ArtifactInfo
    manifest: dict[str, Any]
    signature: SignatureBody

    @classmethod
    def of(cls, row: ModelVersion) -> ModelOut:
        """Build the response for ``row``."""
        files = row.manifest.get("files", {})
        name = next(iter(files), "")
        return cls(
            version=row.version,
            round=row.round,
            parent=row.parent,
            metrics=row.metrics,
            created_at=row.created_at,
            artifact=ArtifactInfo(
                file=name,
                sha256=row.artifact_sha256,
                size=row.artifact_size,
                url=f"/v1/models/{row.version}/artifact",
            ),
            manifest=row.manifest,
            signature=SignatureBody.model_validate(model_signature(row).to_dict()),
        )


class ModelUpload(BaseModel):
    """``POST /v1/models``: a signed artifact (files as base64), verified before it is stored."""

    manifest: dict[str, Any]
    signature: SignatureBody
    files: dict[str, str] = Field(description="file name → base64 contents", min_length=1)


class PageInfo(BaseModel):
    """Position of a page: ``limit``/``offset`` as asked, ``total`` rows, ``next_offset``."""

    total: int
    limit: int
    offset: int
    next_offset: int | None


class ModelPage(PageInfo):
    """``GET /v1/models``: newest first."""

    items: list[ModelOut]


class AbResultIn(BaseModel):
    """``POST /v1/customers/{customer_id}/ab-results``."""

    id: ClientId = Field(description="client-chosen idempotency id (e.g. a UUID)")
    challenger_version: Identifier
    champion_version: Identifier | None = None
    decision: Literal["adopt", "reject", "inconclusive"]
    statistics: dict[str, Any] = Field(
        default_factory=dict,
        description="test statistics (requests, hit ratios, p-value, ...), plain JSON",
    )


class AbResultOut(_Out):
    """A stored A/B result."""

    id: str
    customer_id: str
    challenger_version: str
    champion_version: str | None
    decision: str
    statistics: dict[str, Any]
    created_at: datetime

    @classmethod
    def of(cls, row: AbResult | AbResultView) -> AbResultOut:
        """Build the response for ``row``."""
        return cls(
            id=row.client_id,
            customer_id=row.customer_id,
            challenger_version=row.challenger_version,
            champion_version=row.champion_version,
            decision=row.decision,
            statistics=row.statistics,
            created_at=row.created_at,
        )


class AdoptionIn(BaseModel):
    """``POST /v1/customers/{customer_id}/adoption``: adopt or roll back to ``version``.

    A rollback with ``version: null`` goes back to the customer's own baseline (no registry
    version serves, e.g. the agent's plain LRU or markov2 prefetcher).
    """

    version: Identifier | None = Field(
        description="the new champion; null only with action rollback (the customer's baseline)"
    )
    action: Literal["adopt", "rollback"] = "adopt"
    reason: Reason
    ab_result_id: ClientId | None = Field(
        default=None, description="id of the A/B result that justified the adoption"
    )
    id: ClientId | None = Field(
        default=None,
        description="client-chosen idempotency id: a change already recorded with it is not "
        "made again (200, changed false)",
    )

    @model_validator(mode="after")
    def _baseline_only_by_rollback(self) -> AdoptionIn:
        if self.version is None and self.action != "rollback":
            raise ValueError("version may be null only for a rollback (to the baseline)")
        return self


class AdoptionOut(BaseModel):
    """One change of champion."""

    id: int
    action: str
    version: str | None
    previous_version: str | None
    reason: str
    actor: str
    client_id: str | None = Field(
        default=None, description="the reporter's idempotency id (agents report with one)"
    )
    created_at: datetime
    ab_result: AbResultOut | None

    @classmethod
    def of(
        cls, row: AdoptionRecord | AdoptionView, ab: AbResult | AbResultView | None
    ) -> AdoptionOut:
        """Build the response for ``row`` and its A/B result."""
        return cls(
            id=row.id,
            action=row.action,
            version=row.version,
            previous_version=row.previous_version,
            reason=row.reason,
            actor=row.actor,
            client_id=row.client_id,
            created_at=row.created_at,
            ab_result=AbResultOut.of(ab) if ab is not None else None,
        )


class AdoptionPage(PageInfo):
    """Adoption history, newest first."""

    items: list[AdoptionOut]


class AdoptionState(BaseModel):
    """``GET /v1/customers/{customer_id}/adoption``: current champion and history."""

    customer_id: str
    champion: str | None
    history: AdoptionPage


class AdoptionChange(BaseModel):
    """Answer to an adoption: the champion now, and the record written (none if unchanged)."""

    customer_id: str
    champion: str | None
    changed: bool
    record: AdoptionOut | None


class PrivacyEntryOut(_Out):
    """One DP-SGD session (``epsilon``: whole history after it, at ``delta``)."""

    round_id: str
    steps: int
    sample_rate: float
    noise_multiplier: float
    epsilon: float
    delta: float
    created_at: datetime

    @classmethod
    def of(cls, row: PrivacyLedgerEntry) -> PrivacyEntryOut:
        """Build the response for ``row``."""
        return cls.model_validate(row)


class PrivacyPage(PageInfo):
    """Privacy ledger entries, newest first."""

    items: list[PrivacyEntryOut]


class PrivacyState(BaseModel):
    """``GET /v1/customers/{customer_id}/privacy``: ε spent and the ledger."""

    customer_id: str
    epsilon_spent: float | None
    delta: float | None
    entries: PrivacyPage
