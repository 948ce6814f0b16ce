"""The durable privacy ledger of a deployment customer's federated training.

In simulation a customer's privacy accounting lives in Flower's ``context.state``
(:mod:`federation.client.customer_state`), which lasts as long as the run. On a customer's
machine the SuperNode keeps ``context.state`` only in memory and only for one run, so a
restarted SuperNode or a new run would forget the ε already spent. :class:`DeploymentLedger`
keeps what must outlive both in a small JSON file next to the agent's state
(``<agent-state-dir>/federation-ledger.json``, written atomically with mode 0600):

* ``trainer-state``: the local trainer's state — DP-SGD's :class:`privacy.PrivacyLedger` (its
  budget and every session's ε) with the calibrated noise multiplier and sampling rate;
* ``client-dp``: client-level DP releases so far and their ε.

Before a train message is handled the file is loaded into ``context.state``; afterwards
``context.state`` is written back **before the reply leaves**: if the write fails, the reply
carries no weights (:mod:`federation.client.deployment_handlers`), so nothing is released that
is not accounted. A round that fails midway is accounted too (the trainer's state is saved in
any case). The file belongs to one customer; the agent process never writes it (its own ledger
rows are separate). One train message at a time holds ``federation-ledger.lock`` (an exclusive
``flock``), so two nodes pointed at one state directory cannot both spend the budget.
"""

from __future__ import annotations

import base64
import datetime as dt
import fcntl
import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cache_core import write_atomic
from federation.client.customer_state import CustomerState

_log = logging.getLogger(__name__)

#: The ledger file inside the agent's state directory.
LEDGER_FILE = "federation-ledger.json"
#: Lock file held while a train message uses the ledger.
LOCK_FILE = "federation-ledger.lock"
#: Version of the file's layout.
LEDGER_FORMAT = 1

_Scalar = int | float | str | bytes | bool


class DeploymentLedgerError(Exception):
    """The durable ledger cannot be used (unreadable, foreign, malformed, unwritable)."""


class LedgerBusyError(DeploymentLedgerError):
    """Another train message (another node on the same state directory) holds the ledger."""


class DeploymentLedger:
    """A customer's durable privacy accounting in its agent's state directory (see the module).

    Parameters
    ----------
    state_dir
        The agent's state directory (must exist).
    customer_id
        The customer the ledger belongs to; a file of another customer is refused.
    """

    def __init__(self, state_dir: Path, customer_id: str) -> None:
        self.state_dir = state_dir
        self.customer_id = customer_id

    def __repr__(self) -> str:
        return f"DeploymentLedger(path={str(self.path)!r}, customer_id={self.customer_id!r})"

    @property
    def path(self) -> Path:
        """The ledger file."""
        return self.state_dir / LEDGER_FILE

    @contextmanager
    def hold(self) -> Iterator[None]:
        """Hold the ledger's lock for one train message.

        Raises
        ------
        LedgerBusyError
            If another process holds it.
        DeploymentLedgerError
            If the lock file cannot be opened.
        """
        try:
            fd = os.open(self.state_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise DeploymentLedgerError(
                f"cannot open the ledger lock in {self.state_dir}: {exc.strerror}"
            ) from None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise LedgerBusyError(
                    f"another node is training for customer {self.customer_id!r} on "
                    f"{self.state_dir}; one SuperNode per agent state directory"
                ) from None
            yield
        finally:
            os.close(fd)  # releases the flock

    def read(self) -> dict[str, Any] | None:
        """Return the file's contents (``None`` when there is none yet).

        Raises
        ------
        DeploymentLedgerError
            If the file is unreadable, malformed or belongs to another customer.
        """
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise DeploymentLedgerError(f"cannot read {self.path}: {exc.strerror}") from None
        try:
            payload = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DeploymentLedgerError(f"{self.path} is not valid JSON: {exc}") from None
        if not isinstance(payload, dict) or payload.get("format") != LEDGER_FORMAT:
            raise DeploymentLedgerError(
                f"{self.path} is not a version-{LEDGER_FORMAT} federation ledger"
            )
        if payload.get("customer-id") != self.customer_id:
            raise DeploymentLedgerError(
                f"{self.path} belongs to customer {payload.get('customer-id')!r}, this node "
                f"plays {self.customer_id!r}; give each customer its own state directory"
            )
        return payload

    def restore(self, state: CustomerState) -> bool:
        """Load the file into ``state``; return whether there was one.

        Raises
        ------
        DeploymentLedgerError
            As :meth:`read`, or if a value is malformed.
        """
        payload = self.read()
        if payload is None:
            return False
        trainer = payload.get("trainer-state", {})
        client_dp = payload.get("client-dp", {})
        if not isinstance(trainer, dict) or not isinstance(client_dp, dict):
            raise DeploymentLedgerError(f"{self.path}: trainer-state and client-dp must be objects")
        state.save_trainer_state({str(k): _decode(self.path, v) for k, v in trainer.items()})
        releases = client_dp.get("releases", 0)
        epsilon = client_dp.get("epsilon", 0.0)
        if not isinstance(releases, int) or not isinstance(epsilon, int | float):
            raise DeploymentLedgerError(f"{self.path}: malformed client-dp {client_dp!r}")
        if releases > 0:
            state.record_client_dp(releases, float(epsilon))
        return True

    def persist(self, state: CustomerState) -> None:
        """Write ``state``'s accounting to the file (atomically, mode 0600, fsynced).

        Raises
        ------
        DeploymentLedgerError
            If the file cannot be written (it then keeps its previous contents).
        """
        payload = {
            "format": LEDGER_FORMAT,
            "customer-id": self.customer_id,
            "updated-at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "trainer-state": {k: _encode(v) for k, v in sorted(state.trainer_state().items())},
            "client-dp": {
                "releases": state.client_dp_releases,
                "epsilon": state.client_dp_epsilon or 0.0,
            },
        }
        data = (json.dumps(payload, indent=2, sort_keys=True) + "\n").encode()
        try:
            write_atomic(self.path, data, mode=0o600, sync_directory=True)
        except OSError as exc:
            raise DeploymentLedgerError(f"cannot write {self.path}: {exc.strerror}") from None


def _encode(value: _Scalar) -> object:
    if isinstance(value, bytes):
        return {"base64": base64.b64encode(value).decode("ascii")}
    return value


def _decode(path: Path, value: object) -> _Scalar:
    if isinstance(value, dict) and set(value) == {"base64"} and isinstance(value["base64"], str):
        return base64.b64decode(value["base64"])
    if isinstance(value, bool | int | float | str):
        return value
    raise DeploymentLedgerError(f"{path}: malformed trainer-state value {value!r}")


def federated_epsilon(state_dir: Path, customer_id: str) -> float | None:
    """Return ε the customer's federated rounds have spent (DP-SGD ledger), if any is recorded.

    Read by the customer's agent for its ``epsilon_spent`` figure and gauge; ``None`` when the
    node has not trained with sample-level DP (no file, or no ledger in it) or the file cannot
    be read (the agent then reports its own ledger; the node itself refuses rounds on a bad
    file).
    """
    from federation.client.dp_trainer import LEDGER_KEY
    from privacy import LedgerStateError, PrivacyLedger

    try:
        payload = DeploymentLedger(state_dir, customer_id).read()
    except DeploymentLedgerError as exc:
        _log.warning("federation ledger unreadable: %s", exc)
        return None
    trainer = payload.get("trainer-state") if payload is not None else None
    text = trainer.get(LEDGER_KEY) if isinstance(trainer, dict) else None
    if not isinstance(text, str):
        return None
    try:
        return PrivacyLedger.from_json(text).spent
    except LedgerStateError as exc:
        _log.warning("federation ledger %s: %s", state_dir, exc)
        return None
