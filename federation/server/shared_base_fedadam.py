"""FedAdam over the screened shared base, with its server optimiser state saved and restored.

Flower's ``FedAdam`` keeps, between rounds, the first and second moments ``m_t`` and ``v_t`` of
the aggregated update (one array per base tensor) and uses the round number in its bias
correction. Resuming a run from the merged base alone would restart Adam from zero moments —
a different optimiser trajectory from the uninterrupted run. So the moments are part of each
round's checkpoint (:meth:`SharedBaseFedAdam.server_state`, saved by
:class:`~federation.server.checkpointing_strategy.CheckpointingStrategy` as safetensors beside
the weights) and restored on resume (:meth:`SharedBaseFedAdam.load_server_state`). The round
counter needs no saving: a resumed run numbers its rounds globally (the checkpoint's round
plus the loop's round), and that global number is what reaches ``aggregate_train``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from flwr.serverapp.strategy import FedAdam
from numpy.typing import NDArray

from federation.server.base_weights import Weights
from federation.server.shared_base_strategy import SharedBaseFedAvg

#: Name prefixes of the two moments in the saved state (``m_t/<base tensor>``).
FIRST_MOMENT = "m_t/"
SECOND_MOMENT = "v_t/"


class SharedBaseFedAdam(SharedBaseFedAvg, FedAdam):
    """FedAdam (server-side Adam on the aggregated update) over the screened shared base.

    Takes the keyword arguments of :class:`SharedBaseFedAvg` and Flower's ``FedAdam``
    (``eta``, ``eta_l``, ``beta_1``, ``beta_2``, ``tau``).
    """

    def server_state(self) -> Weights:
        """Return Adam's moments by ``m_t/<name>`` and ``v_t/<name>`` (``{}`` before round 1)."""
        state: Weights = {}
        for prefix, moments in ((FIRST_MOMENT, self.m_t), (SECOND_MOMENT, self.v_t)):
            for name, value in (moments or {}).items():
                state[prefix + name] = np.ascontiguousarray(value)
        return state

    def load_server_state(
        self, state: Mapping[str, NDArray[Any]], base: Mapping[str, NDArray[Any]]
    ) -> None:
        """Restore Adam's moments saved by :meth:`server_state`.

        Parameters
        ----------
        state
            The saved moments (``{}``: start from zero moments, as a fresh run does).
        base
            The base the run resumes from: every moment must have its tensor's name and shape.

        Raises
        ------
        ValueError
            If a name is not a moment of a base tensor, a moment is missing, or a shape differs.
        """
        first = _moments(state, FIRST_MOMENT)
        second = _moments(state, SECOND_MOMENT)
        unknown = sorted(k for k in state if not k.startswith((FIRST_MOMENT, SECOND_MOMENT)))
        if unknown:
            raise ValueError(f"unexpected FedAdam state tensors {unknown}")
        if state and not (set(first) == set(second) == set(base)):
            raise ValueError(
                "FedAdam state does not cover the base: moments of "
                f"{sorted(set(first) ^ set(base))} (first) and "
                f"{sorted(set(second) ^ set(base))} (second) differ from the base tensors"
            )
        for moments in (first, second):
            for name, value in moments.items():
                if value.shape != base[name].shape:
                    raise ValueError(
                        f"FedAdam moment of {name} has shape {value.shape}, "
                        f"the base has {base[name].shape}"
                    )
        self.m_t = first or None
        self.v_t = second or None


def _moments(state: Mapping[str, NDArray[Any]], prefix: str) -> dict[str, NDArray[Any]]:
    return {k[len(prefix) :]: np.array(v) for k, v in state.items() if k.startswith(prefix)}
