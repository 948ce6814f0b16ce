"""The agent's local store: SQLite (WAL, ``synchronous=FULL``) through SQLAlchemy 2.0.

The state directory is created 0700 and the database file 0600 (SQLite gives its ``-wal`` and
``-shm`` files the database's mode). The schema is created and upgraded by the Alembic
migrations inside this package, run programmatically when the store opens. One agent process
holds the store at a time (an exclusive ``flock`` on ``agent.lock``, released by the kernel
however the process ends).

Writes come in two kinds:

* :meth:`AgentStore.checkpoint` commits, in ONE transaction, the progress snapshot and every
  record produced since the previous checkpoint (decisions, drift and refresh events, champion
  changes, sampled requests). A kill before the commit loses all of them together, and they are
  produced again when the lost requests are replayed: nothing is recorded twice.
* Artifacts (adapter files, model versions) are written as soon as they exist and are found
  again by their provenance (``source``, ``request_index``) on replay, so an artifact built just
  before a kill is reused rather than rebuilt.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import Engine, create_engine, delete, event, func, insert, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from federation.client.agent.errors import AgentStateError
from federation.client.agent.orm import (
    AdapterRow,
    AgentStateRow,
    DirectiveRow,
    ModelVersionRow,
    RegistryReportRow,
    SampleRow,
    utcnow,
)
from federation.client.agent.private_files import (
    ensure_private_dir,
    sha256_hex,
    write_private_file,
)
from federation.client.agent.records import (
    AdapterRecord,
    AgentSnapshot,
    ChampionRecord,
    DecisionRecord,
    DirectiveRecord,
    DriftRecord,
    ModelVersionRecord,
    RefreshRecord,
    RegistryAnswer,
)
from federation.client.agent.store_queries import REFUSED_PREFIX, StoreQueries
from federation.client.agent.store_rows import (
    adapter_record,
    champion_row,
    check_owner,
    decision_row,
    drift_row,
    fill_state_row,
    refresh_row,
    snapshot_of,
    version_record,
)

_LOCK_FILE = "agent.lock"
_ADAPTER_DIR = "adapters"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=5000")
    finally:
        cursor.close()


class AgentStore(StoreQueries):
    """The agent's database and artifact files under one state directory.

    Parameters
    ----------
    state_dir
        The state directory (created 0700; an existing one must not be group/world accessible).
    url
        SQLAlchemy URL; default: SQLite ``agent.db`` in ``state_dir`` (created 0600).

    Raises
    ------
    AgentStateError
        If the directory is unusable, another agent holds the store, or the database cannot be
        opened or migrated.
    """

    def __init__(self, state_dir: str | Path, url: str | None = None) -> None:
        self._dir = ensure_private_dir(Path(state_dir))
        self._lock_fd = self._acquire_lock()
        try:
            if url is None:
                db = (self._dir / "agent.db").resolve()
                fd = os.open(db, os.O_RDWR | os.O_CREAT, 0o600)
                os.close(fd)
                db.chmod(0o600)
                url = f"sqlite:///{db}"
            self._url = url
            self._engine = self._make_engine(url)
            self._sessions = sessionmaker(self._engine, expire_on_commit=False)
            self._migrate()
        except BaseException:
            self._release_lock()
            raise

    def __repr__(self) -> str:
        return f"AgentStore(state_dir={str(self._dir)!r})"

    # -- lifecycle -----------------------------------------------------------------------------

    @property
    def state_dir(self) -> Path:
        """The state directory."""
        return self._dir

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine (for inspection and tests)."""
        return self._engine

    def close(self) -> None:
        """Dispose of the engine and release the store's lock."""
        self._engine.dispose()
        self._release_lock()

    def __enter__(self) -> AgentStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _acquire_lock(self) -> int:
        fd = os.open(self._dir / _LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise AgentStateError(
                f"another agent process is using the state directory {self._dir}"
            ) from None
        return fd

    def _release_lock(self) -> None:
        if self._lock_fd >= 0:
            os.close(self._lock_fd)  # closing the descriptor releases the flock
            self._lock_fd = -1

    @staticmethod
    def _make_engine(url: str) -> Engine:
        try:
            engine = create_engine(url)
        except (SQLAlchemyError, ValueError) as exc:
            raise AgentStateError(f"cannot open the agent store {url!r}: {exc}") from None
        if engine.dialect.name == "sqlite":
            event.listen(engine, "connect", _sqlite_pragmas)
        return engine

    def _migrate(self) -> None:
        from alembic import command
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
        try:
            with self._engine.begin() as connection:
                config.attributes["connection"] = connection
                command.upgrade(config, "head")
        except SQLAlchemyError as exc:
            raise AgentStateError(f"cannot migrate the agent store: {exc}") from None

    @contextmanager
    def _transaction(self) -> Iterator[Session]:
        with self._sessions() as session, session.begin():
            yield session

    # -- the checkpointed state ----------------------------------------------------------------

    def load(self) -> tuple[str, str, AgentSnapshot] | None:
        """Return ``(customer_id, source_name, snapshot)`` of the last checkpoint, if any."""
        with self._sessions() as session:
            row = session.get(AgentStateRow, 1)
            if row is None:
                return None
            return row.customer_id, row.source_name, snapshot_of(row)

    def checkpoints(self) -> int:
        """Return the number of checkpoints committed so far."""
        with self._sessions() as session:
            row = session.get(AgentStateRow, 1)
            return 0 if row is None else row.checkpoints

    def checkpoint(
        self,
        customer_id: str,
        source_name: str,
        snapshot: AgentSnapshot,
        *,
        decisions: list[DecisionRecord] | None = None,
        drift_events: list[DriftRecord] | None = None,
        refreshes: list[RefreshRecord] | None = None,
        champions: list[ChampionRecord] | None = None,
        samples: list[tuple[int, NDArray[np.void]]] | None = None,
        keep_samples: int | None = None,
    ) -> None:
        """Commit ``snapshot`` and the records since the previous checkpoint in one transaction.

        Parameters
        ----------
        customer_id, source_name
            Identify the run; a store is bound to one customer and one request source.
        snapshot
            The new progress snapshot; ``next_index`` must not go backwards.
        decisions, drift_events, refreshes, champions
            Records produced since the previous checkpoint.
        samples
            ``(request_index, rows)`` pairs of drained sampler rows
            (:data:`cache_core.SAMPLE_DTYPE`), tagged with the batch they came from.
        keep_samples
            Keep at most this many stored samples (the oldest are deleted).

        Raises
        ------
        AgentStateError
            If the store belongs to another customer or source, or progress would go back.
        """
        with self._transaction() as session:
            row = session.get(AgentStateRow, 1)
            if row is None:
                row = AgentStateRow(id=1, customer_id=customer_id, source_name=source_name)
                session.add(row)
            else:
                check_owner(row, customer_id, source_name)
                if snapshot.next_index < row.next_index:
                    raise AgentStateError(
                        f"checkpoint at request {snapshot.next_index} is behind the stored "
                        f"progress {row.next_index}"
                    )
            fill_state_row(row, snapshot)
            row.checkpoints = (row.checkpoints or 0) + 1
            row.updated_at = utcnow()
            session.add_all(decision_row(d) for d in decisions or ())
            session.add_all(drift_row(e) for e in drift_events or ())
            session.add_all(refresh_row(r) for r in refreshes or ())
            session.add_all(champion_row(c) for c in champions or ())
            rows = [
                {
                    "request_index": index,
                    "timestamp": float(r["timestamp"]),
                    "key": int(np.int64(np.uint64(r["key"]).view(np.int64))),
                    "op": int(r["op"]),
                    "hit": int(r["hit"]),
                    "size": int(r["size"]),
                }
                for index, block in samples or ()
                for r in block
            ]
            if rows:
                session.execute(insert(SampleRow), rows)
            if keep_samples is not None:
                newest = session.scalar(select(func.max(SampleRow.id)))
                if newest is not None and newest > keep_samples:
                    session.execute(delete(SampleRow).where(SampleRow.id <= newest - keep_samples))

    # -- artifacts -----------------------------------------------------------------------------

    def add_adapter(
        self,
        data: bytes,
        *,
        source: str,
        request_index: int,
        samples: int = 0,
        steps: int = 0,
        loss: float | None = None,
    ) -> AdapterRecord:
        """Write an adapter file (safetensors bytes) atomically, mode 0600, and record it.

        Returns the existing record when an adapter of the same ``source`` and ``request_index``
        was already recorded (a replay after a kill).
        """
        found = self.find_adapter(source, request_index)
        if found is not None:
            return found
        digest = sha256_hex(data)
        folder = ensure_private_dir(self._dir / _ADAPTER_DIR)
        relative = f"{_ADAPTER_DIR}/{source}-{request_index}-{digest[:12]}.safetensors"
        write_private_file(folder / Path(relative).name, data)
        with self._transaction() as session:
            row = AdapterRow(
                path=relative,
                sha256=digest,
                source=source,
                request_index=request_index,
                samples=samples,
                steps=steps,
                loss=None if loss is None or not np.isfinite(loss) else float(loss),
            )
            session.add(row)
            session.flush()
            return adapter_record(row)

    def read_adapter(self, record: AdapterRecord) -> bytes:
        """Return an adapter file's bytes after checking its sha256.

        Raises
        ------
        AgentStateError
            If the file is missing or its sha256 differs from the record.
        """
        path = self._dir / record.path
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise AgentStateError(f"cannot read adapter file {path}: {exc.strerror}") from None
        if sha256_hex(data) != record.sha256:
            raise AgentStateError(f"adapter file {path} does not match its recorded sha256")
        return data

    def add_model_version(
        self,
        directory: str | Path,
        sha256: str,
        *,
        source: str,
        status: str,
        request_index: int,
        error: str | None = None,
        parent_id: int | None = None,
    ) -> ModelVersionRecord:
        """Record a model directory; an identical ``(sha256, source, request_index)`` is reused."""
        with self._transaction() as session:
            row = session.scalars(
                select(ModelVersionRow).where(
                    ModelVersionRow.sha256 == sha256,
                    ModelVersionRow.source == source,
                    ModelVersionRow.request_index == request_index,
                )
            ).first()
            if row is None:
                row = ModelVersionRow(
                    directory=str(directory),
                    sha256=sha256,
                    source=source,
                    status=status,
                    error=error,
                    request_index=request_index,
                    parent_id=parent_id,
                )
                session.add(row)
                session.flush()
            return version_record(row)

    # -- reports to the adoption API -----------------------------------------------------------

    def add_refused_registry_version(self, version: str, error: str, request_index: int) -> None:
        """Record that registry ``version`` was refused (one row per version), with the error."""
        self.add_model_version(
            f"{REFUSED_PREFIX}{version}",
            hashlib.sha256(version.encode()).hexdigest(),
            source="registry",
            status="refused",
            request_index=request_index,
            error=error,
        )

    def record_answers(self, answers: list[RegistryAnswer]) -> None:
        """Record the adoption API's answers to reports (one transaction; repeats ignored)."""
        if not answers:
            return
        with self._transaction() as session:
            known = set(
                session.scalars(
                    select(RegistryReportRow.report_id).where(
                        RegistryReportRow.report_id.in_([a.report_id for a in answers])
                    )
                )
            )
            for a in answers:
                if a.report_id in known:
                    continue
                known.add(a.report_id)
                session.add(
                    RegistryReportRow(
                        report_id=a.report_id,
                        kind=a.kind,
                        request_index=a.request_index,
                        version=a.version,
                        status=a.status,
                        error=a.error,
                    )
                )

    def add_directive(self, record: DirectiveRecord) -> None:
        """Record an operator directive as applied (committed at once; a repeat is ignored)."""
        d = record.directive
        with self._transaction() as session:
            if session.scalar(select(DirectiveRow.id).where(DirectiveRow.record_id == d.record_id)):
                return
            session.add(
                DirectiveRow(
                    record_id=d.record_id,
                    action=d.action,
                    version=d.version,
                    reason=d.reason,
                    actor=d.actor,
                    request_index=record.request_index,
                    candidate_id=record.candidate_id,
                    status=record.status,
                    error=record.error,
                )
            )
