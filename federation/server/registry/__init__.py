"""Model registry: SQLAlchemy models, Alembic migrations, signed artifacts, adoptions, tokens."""

from federation.server.registry.adoption import (
    AdoptionAction,
    Decision,
    ab_results_by_id,
    adopt_version,
    adoption_history,
    record_ab_result,
)
from federation.server.registry.adoption_views import AbResultView, AdoptionView, adoption_state
from federation.server.registry.artifact_store import DEFAULT_ARTIFACT_DIR, ArtifactStore
from federation.server.registry.audit import list_audit, record_audit
from federation.server.registry.customers import (
    ID_PATTERN,
    check_identifier,
    ensure_customer,
    get_customer,
)
from federation.server.registry.database import (
    DEFAULT_DATABASE_URL,
    is_sqlite,
    make_engine,
    normalize_url,
    session_factory,
)
from federation.server.registry.errors import (
    ArtifactRefusedError,
    ConflictError,
    NotFoundError,
    RegistryConfigError,
    RegistryError,
)
from federation.server.registry.migrate import (
    database_revision,
    downgrade_database,
    head_revision,
    upgrade_database,
)
from federation.server.registry.model_versions import (
    get_model_version,
    list_model_versions,
    model_signature,
    register_model_version,
)
from federation.server.registry.models import (
    AbResult,
    AdoptionRecord,
    ApiToken,
    AuditEntry,
    Base,
    Customer,
    ModelVersion,
    PrivacyLedgerEntry,
)
from federation.server.registry.pagination import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    Page,
)
from federation.server.registry.privacy_records import (
    latest_privacy_entry,
    privacy_entries,
    record_privacy_entry,
)
from federation.server.registry.publish import (
    MANIFEST_FORMAT,
    build_manifest,
    publish_model,
    weights_bytes,
)
from federation.server.registry.tokens import (
    TOKEN_PREFIX,
    Principal,
    Role,
    authenticate,
    create_token,
    revoke_token,
    token_digest,
)

__all__ = [
    "DEFAULT_ARTIFACT_DIR",
    "DEFAULT_DATABASE_URL",
    "DEFAULT_PAGE_SIZE",
    "ID_PATTERN",
    "MANIFEST_FORMAT",
    "MAX_PAGE_SIZE",
    "TOKEN_PREFIX",
    "AbResult",
    "AbResultView",
    "AdoptionAction",
    "AdoptionRecord",
    "AdoptionView",
    "ApiToken",
    "ArtifactRefusedError",
    "ArtifactStore",
    "AuditEntry",
    "Base",
    "ConflictError",
    "Customer",
    "Decision",
    "ModelVersion",
    "NotFoundError",
    "Page",
    "Principal",
    "PrivacyLedgerEntry",
    "RegistryConfigError",
    "RegistryError",
    "Role",
    "ab_results_by_id",
    "adopt_version",
    "adoption_history",
    "adoption_state",
    "authenticate",
    "build_manifest",
    "check_identifier",
    "create_token",
    "database_revision",
    "downgrade_database",
    "ensure_customer",
    "get_customer",
    "get_model_version",
    "head_revision",
    "is_sqlite",
    "latest_privacy_entry",
    "list_audit",
    "list_model_versions",
    "make_engine",
    "model_signature",
    "normalize_url",
    "privacy_entries",
    "publish_model",
    "record_ab_result",
    "record_audit",
    "record_privacy_entry",
    "register_model_version",
    "revoke_token",
    "session_factory",
    "token_digest",
    "upgrade_database",
    "weights_bytes",
]
