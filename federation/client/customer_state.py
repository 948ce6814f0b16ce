"""What a customer keeps between rounds, in the ClientApp's persistent ``context.state``.

Everything is stored as Flower records (no pickle):

* ``customer-secret`` (ConfigRecord): the customer's key-hashing secret, generated on first use
  and never sent anywhere; in deployment the agent's store supplies it instead.
* ``adapter`` (ArrayRecord): the customer's adapter weights by stable name.
* ``client-progress`` (ConfigRecord): rounds trained, local steps taken, the last round.
* ``trainer-state`` (ConfigRecord): the local trainer's state (DP-SGD's privacy ledger).
* ``client-dp`` (ConfigRecord): client-level DP releases so far and their ε.
"""

from __future__ import annotations

import hashlib
import hmac
import os

import torch
from flwr.app import ArrayRecord, ConfigRecord, RecordDict

from customer_models import KeyEncoder

SECRET_KEY = "customer-secret"
ADAPTER_KEY = "adapter"
PROGRESS_KEY = "client-progress"
TRAINER_KEY = "trainer-state"
CLIENT_DP_KEY = "client-dp"
SECRET_BYTES = 32


class CustomerState:
    """Typed access to a customer's records in ``context.state``.

    Parameters
    ----------
    state
        The ClientApp's ``context.state`` (modified in place).
    """

    def __init__(self, state: RecordDict) -> None:
        self._state = state

    def __repr__(self) -> str:
        return f"CustomerState(records={sorted(self._state)})"

    def key_encoder(self) -> KeyEncoder:
        """Return the customer's key encoder, creating its secret on first use."""
        record = self._state.config_records.get(SECRET_KEY)
        if record is None or not isinstance(record.get("secret"), bytes):
            record = ConfigRecord({"secret": os.urandom(SECRET_BYTES)})
            self._state[SECRET_KEY] = record
        secret = record["secret"]
        assert isinstance(secret, bytes)
        return KeyEncoder(secret)

    def private_seed(self, label: str) -> int:
        """Return a 63-bit seed derived from the customer's secret and ``label``.

        The server cannot reproduce it; give every use its own label (round, session).
        """
        self.key_encoder()
        secret = self._state.config_records[SECRET_KEY]["secret"]
        assert isinstance(secret, bytes)
        digest = hmac.new(secret, b"private-seed/" + label.encode(), hashlib.sha256).digest()
        return int.from_bytes(digest[:8], "little") >> 1

    def adapter(self) -> dict[str, torch.Tensor] | None:
        """Return the saved adapter weights (``None`` before the first round)."""
        record = self._state.array_records.get(ADAPTER_KEY)
        if record is None:
            return None
        return {name: torch.from_numpy(array.numpy().copy()) for name, array in record.items()}

    def save_adapter(self, weights: dict[str, torch.Tensor]) -> None:
        """Keep the adapter weights for the next round."""
        self._state[ADAPTER_KEY] = ArrayRecord({k: v.detach().cpu() for k, v in weights.items()})

    @property
    def rounds_trained(self) -> int:
        """Rounds this customer has trained in."""
        return self._progress_int("rounds-trained")

    @property
    def local_steps(self) -> int:
        """Local optimizer steps over all rounds."""
        return self._progress_int("local-steps")

    def record_round(self, server_round: int, steps: int) -> None:
        """Count a trained round and its steps."""
        self._state[PROGRESS_KEY] = ConfigRecord(
            {
                "rounds-trained": self.rounds_trained + 1,
                "local-steps": self.local_steps + steps,
                "last-round": server_round,
            }
        )

    def trainer_state(self) -> dict[str, int | float | str | bytes | bool]:
        """Return the trainer state saved after the previous round (empty at first)."""
        record = self._state.config_records.get(TRAINER_KEY)
        if record is None:
            return {}
        out: dict[str, int | float | str | bytes | bool] = {}
        for key, value in record.items():
            if isinstance(value, int | float | str | bytes | bool):
                out[key] = value
        return out

    def save_trainer_state(self, state: dict[str, int | float | str | bytes | bool]) -> None:
        """Keep the trainer state for the next round."""
        self._state[TRAINER_KEY] = ConfigRecord(dict(state))

    @property
    def client_dp_releases(self) -> int:
        """Client-level DP releases (noised updates sent) so far."""
        record = self._state.config_records.get(CLIENT_DP_KEY)
        value = record.get("releases", 0) if record is not None else 0
        return int(value) if isinstance(value, int) else 0

    @property
    def client_dp_epsilon(self) -> float | None:
        """Client-level ε of the releases so far (``None`` before the first)."""
        record = self._state.config_records.get(CLIENT_DP_KEY)
        value = record.get("epsilon") if record is not None else None
        return float(value) if isinstance(value, int | float) else None

    def record_client_dp(self, releases: int, epsilon: float) -> None:
        """Keep the count of client-level DP releases and their ε."""
        self._state[CLIENT_DP_KEY] = ConfigRecord({"releases": releases, "epsilon": epsilon})

    def _progress_int(self, key: str) -> int:
        record = self._state.config_records.get(PROGRESS_KEY)
        value = record.get(key, 0) if record is not None else 0
        return int(value) if isinstance(value, int | float) else 0
