"""Reading a running agent's store from another process (the deployment ClientApp).

The agent process owns its store (an exclusive ``flock`` on ``agent.lock``, Alembic
migrations, every write). The ClientApp that its SuperNode spawns for a federated round only
reads the stored samples, while the agent keeps writing. :class:`AgentSampleReader` opens the
same SQLite file without the lock and without migrating, on connections that refuse writes
(``PRAGMA query_only``). In WAL mode (the agent's journal mode, persistent in the file) a
reader sees the last committed checkpoint and never blocks the agent's writers; each query is
one short read transaction, so it holds back the agent's WAL checkpoints only for as long as
the query runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import sessionmaker

from federation.client.agent.errors import AgentStateError
from federation.client.agent.settings import DATABASE_FILE
from federation.client.agent.store_queries import StoreQueries

#: Milliseconds a read waits for a lock (WAL recovery after an agent crash) before failing.
READ_BUSY_TIMEOUT_MS = 2000


def _read_only_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout={READ_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA query_only=ON")
    finally:
        cursor.close()


class AgentStoreMissingError(AgentStateError):
    """The state directory holds no agent store yet (the agent has not started there)."""


class AgentSampleReader(StoreQueries):
    """Read-only queries of an agent's SQLite store, safe while the agent writes it.

    Parameters
    ----------
    state_dir
        The agent's state directory (its ``agent.db`` is read).

    Raises
    ------
    AgentStoreMissingError
        If the directory holds no agent database yet.
    """

    def __init__(self, state_dir: str | Path) -> None:
        self._path = Path(state_dir) / DATABASE_FILE
        if not self._path.is_file():
            raise AgentStoreMissingError(
                f"no agent store at {self._path} yet: start the agent (predis-fl agent) first"
            )
        self._engine: Engine = create_engine(f"sqlite:///{self._path.resolve()}")
        event.listen(self._engine, "connect", _read_only_pragmas)
        self._sessions = sessionmaker(self._engine)

    def __repr__(self) -> str:
        return f"AgentSampleReader(path={str(self._path)!r})"

    @property
    def path(self) -> Path:
        """The database file read."""
        return self._path

    def recent_samples(self, limit: int, before_index: int | None = None) -> NDArray[np.void]:
        """Return up to ``limit`` most recent stored samples, oldest first (see the base class).

        Raises
        ------
        AgentStateError
            If the store cannot be read (not migrated yet, locked beyond the timeout, corrupt).
        """
        try:
            return super().recent_samples(limit, before_index)
        except SQLAlchemyError as exc:
            raise AgentStateError(
                f"cannot read the samples of the agent store {self._path}: {_cause(exc)}"
            ) from None

    def sample_count(self) -> int:
        """Return the number of stored samples (see :meth:`recent_samples` for errors)."""
        try:
            return super().sample_count()
        except SQLAlchemyError as exc:
            raise AgentStateError(
                f"cannot count the samples of the agent store {self._path}: {_cause(exc)}"
            ) from None

    def close(self) -> None:
        """Close the reader's connections."""
        self._engine.dispose()

    def __enter__(self) -> AgentSampleReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _cause(exc: SQLAlchemyError) -> object:
    """Return the driver's error behind ``exc`` (SQLAlchemy's repeats the query)."""
    return getattr(exc, "orig", None) or exc
