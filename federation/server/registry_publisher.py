"""Publishing each round's merged base to the model registry as a signed version.

The ServerApp saves every round in its :class:`~federation.server.CheckpointStore` first and
publishes from there: after each save, :meth:`RegistryPublisher.publish_pending` publishes
every saved round the registry does not hold yet, oldest first. A round whose publication
failed (registry unreachable) is therefore published after the next round, and a restarted
run publishes what its predecessor saved but did not publish — no version is lost, and none
is published twice (a version's id is fixed by the run name and the round number).

Version ids are ``<run-name>-r<round:04d>``; the parent of a round is the previous saved round
of the same run (round 0, the initial base, is published too, so every version has its parent
in the registry).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from federation.server.checkpoint_store import CheckpointStore

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

_log = logging.getLogger(__name__)


def version_id(run_name: str, server_round: int) -> str:
    """Return the registry version id of ``server_round`` of run ``run_name``."""
    return f"{run_name}-r{server_round:04d}"


@dataclass(frozen=True)
class RegistrySettings:
    """Where and how a run publishes its rounds.

    Attributes
    ----------
    database
        SQLAlchemy URL of the registry (SQLite path URLs and PostgreSQL).
    artifacts
        Directory of the artifact store.
    signing_key
        The registry's Ed25519 private key (PEM, ``predis-fl certs init``).
    run_name
        Prefix of the run's version ids.
    """

    database: str
    artifacts: str
    signing_key: str
    run_name: str


class RegistryPublisher:
    """Publish a checkpoint store's rounds to the registry (see the module docstring).

    Parameters
    ----------
    settings
        Registry location, signing key and run name.

    Raises
    ------
    federation.server.registry.RegistryError
        If the database cannot be migrated or opened.
    privacy.SigningError
        If the signing key cannot be loaded.
    """

    def __init__(self, settings: RegistrySettings) -> None:
        from federation.server.registry import make_engine, session_factory, upgrade_database
        from privacy import load_private_key

        self.settings = settings
        upgrade_database(settings.database)
        self._engine = make_engine(settings.database)
        self._sessions: sessionmaker[Session] = session_factory(self._engine)
        self._key = load_private_key(Path(settings.signing_key))

    def __repr__(self) -> str:
        return f"RegistryPublisher(run_name={self.settings.run_name!r})"

    def close(self) -> None:
        """Release the database connections."""
        self._engine.dispose()

    def published_rounds(self, store: CheckpointStore) -> list[int]:
        """Return the rounds of ``store`` that the registry already holds."""
        from sqlalchemy import select

        from federation.server.registry import ModelVersion

        wanted = {version_id(self.settings.run_name, r): r for r in store.rounds()}
        if not wanted:
            return []
        with self._sessions() as session:
            found = session.scalars(
                select(ModelVersion.version).where(ModelVersion.version.in_(list(wanted)))
            ).all()
        return sorted(wanted[v] for v in found)

    def publish_pending(self, store: CheckpointStore) -> list[str]:
        """Publish every round of ``store`` not yet in the registry; return the new versions.

        A failure is logged and leaves the remaining rounds for the next call; it never
        raises, so a registry outage cannot fail a federated round.
        """
        try:
            done = set(self.published_rounds(store))
        except Exception:
            _log.exception("registry unreachable; rounds will be published later")
            return []
        published: list[str] = []
        previous: int | None = None
        for server_round in store.rounds():
            if server_round not in done:
                try:
                    published.append(self._publish(store, server_round, previous))
                except Exception:
                    _log.exception(
                        "publishing round %d failed; it will be retried after the next round",
                        server_round,
                    )
                    break
            previous = server_round
        return published

    def _publish(self, store: CheckpointStore, server_round: int, parent: int | None) -> str:
        from federation.server.registry import publish_model

        checkpoint = store.load(server_round)
        version = version_id(self.settings.run_name, server_round)
        metrics: dict[str, Any] = dict(checkpoint.manifest.get("metrics") or {})
        extra: dict[str, Any] = {
            key: checkpoint.manifest[key]
            for key in ("strategy", "model_config", "featurizer_config")
            if key in checkpoint.manifest
        }
        with self._sessions() as session:
            publish_model(
                session,
                self.settings.artifacts,
                version=version,
                weights=checkpoint.weights,
                signing_key=self._key,
                round=server_round,
                parent=None if parent is None else version_id(self.settings.run_name, parent),
                metrics=metrics,
                extra=extra,
            )
        _log.info("published round %d as registry version %s", server_round, version)
        return version
