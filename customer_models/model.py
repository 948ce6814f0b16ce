"""The access model: a shared, key-agnostic base and a per-customer adapter.

* **Base** (what federation averages): a :class:`ContextEncoder` — an LSTM over the key-agnostic
  features of the last ``window`` requests — and a :class:`CandidateScorer`, an MLP that scores
  each locally generated candidate from its key-agnostic features and the context vector, plus a
  "none of them" logit. No base tensor is indexed by any key or vocabulary.
* **Adapter** (never leaves the customer): a :class:`CustomerAdapter` with a score bias per local
  key bucket (keyed hash of the candidate's key), a low-rank update of the scorer's first layer,
  and a bias of the "none" logit.

The model outputs logits over ``M`` candidates plus "none"; a softmax gives the probability that
each candidate is the next request, which the prefetcher compares with its confidence threshold.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from customer_models.config import ModelConfig
from customer_models.errors import ModelFileError
from customer_models.features import N_CAND_FEATURES, N_CTX_FEATURES

BASE_PREFIXES = ("encoder.", "scorer.")
ADAPTER_PREFIX = "adapter."


class ContextEncoder(nn.Module):
    """LSTM over the context features of the most recent requests (part of the base)."""

    def __init__(self, n_features: int, hidden: int) -> None:
        super().__init__()
        self.lstm = nn.LSTM(n_features, hidden, batch_first=True)

    def forward(self, windows: Tensor) -> Tensor:
        """Encode ``windows`` (``[B, W, F]``, oldest first) into ``[B, hidden]``."""
        _, (h, _) = self.lstm(windows)
        last: Tensor = h[-1]
        return last


class CustomerAdapter(nn.Module):
    """Per-customer parameters: bucket biases, a low-rank scorer update, a "none" bias."""

    def __init__(self, buckets: int, in_features: int, hidden: int, rank: int) -> None:
        super().__init__()
        self.bucket_bias = nn.Embedding(buckets, 1)
        self.lora_down = nn.Parameter(torch.empty(rank, in_features))
        self.lora_up = nn.Parameter(torch.zeros(hidden, rank))
        self.none_bias = nn.Parameter(torch.zeros(1))
        self.reset(None)

    @torch.no_grad()
    def reset(self, generator: torch.Generator | None) -> None:
        """Make this a fresh adapter: no effect on the scores, a random low-rank direction.

        ``generator`` draws that direction (``None``: the global generator, as at construction).
        """
        nn.init.zeros_(self.bucket_bias.weight)
        shape = self.lora_down.shape
        self.lora_down.copy_(torch.randn(shape, generator=generator) * 0.01)
        self.lora_up.zero_()
        self.none_bias.zero_()


class CandidateScorer(nn.Module):
    """MLP scoring candidates from their features and the context vector (part of the base)."""

    def __init__(self, n_cand_features: int, context_dim: int, hidden: int) -> None:
        super().__init__()
        self.layer1 = nn.Linear(n_cand_features + context_dim, hidden)
        self.layer2 = nn.Linear(hidden, hidden // 2)
        self.out = nn.Linear(hidden // 2, 1)
        self.none_head = nn.Linear(max(context_dim, 1), 1)
        self.context_dim = context_dim

    def forward(
        self, cand_feats: Tensor, row_of: Tensor, context: Tensor, adapter: CustomerAdapter
    ) -> tuple[Tensor, Tensor]:
        """Score ``K`` candidates of ``B`` requests.

        Parameters
        ----------
        cand_feats
            ``[K, F_cand]`` features of every real candidate, all requests flattened.
        row_of
            ``[K]`` index of the request each candidate belongs to.
        context
            ``[B, context_dim]`` context vectors.
        adapter
            The customer's adapter.

        Returns
        -------
        tuple
            Candidate logits ``[K]`` and "none" logits ``[B]``.
        """
        # layer1 and the adapter's low-rank update act on [candidate features, context]; the
        # context half is computed once per request and gathered, not once per candidate.
        n_cand = cand_feats.shape[1]
        weight, down = self.layer1.weight, adapter.lora_down
        h1 = cand_feats @ weight[:, :n_cand].T + self.layer1.bias
        low = cand_feats @ down[:, :n_cand].T
        if self.context_dim:
            h1 = h1 + (context @ weight[:, n_cand:].T)[row_of]
            low = low + (context @ down[:, n_cand:].T)[row_of]
            none_in = context
        else:
            none_in = context.new_zeros(context.shape[0], 1)
        h1 = h1 + low @ adapter.lora_up.T
        h2 = torch.relu(self.layer2(torch.relu(h1)))
        logits = self.out(h2).squeeze(-1)
        none = self.none_head(none_in).squeeze(-1) + adapter.none_bias
        return logits, none


class AccessModel(nn.Module):
    """Shared base plus customer adapter; see the module docstring.

    Parameters
    ----------
    config
        Model shape.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        context_dim = config.hidden if config.context == "lstm" else 0
        self.encoder: ContextEncoder | None = (
            ContextEncoder(N_CTX_FEATURES, config.hidden) if config.context == "lstm" else None
        )
        self.scorer = CandidateScorer(N_CAND_FEATURES, context_dim, config.scorer_hidden)
        self.adapter = CustomerAdapter(
            config.adapter_buckets,
            N_CAND_FEATURES + context_dim,
            config.scorer_hidden,
            config.adapter_rank,
        )

    def forward(
        self, windows: Tensor, cand_feats: Tensor, row_of: Tensor, cand_buckets: Tensor
    ) -> tuple[Tensor, Tensor]:
        """Return candidate logits ``[K]`` and "none" logits ``[B]``.

        Parameters
        ----------
        windows
            ``[B, W, F_ctx]`` context features of the last ``W`` requests, oldest first.
        cand_feats
            ``[K, F_cand]`` features of the real candidates of all ``B`` requests.
        row_of
            ``[K]`` request index of each candidate.
        cand_buckets
            ``[K]`` local buckets of the candidates' keys.
        """
        if self.encoder is not None:
            context = self.encoder(windows)
        else:
            context = windows.new_zeros(windows.shape[0], 0)
        logits, none = self.scorer(cand_feats, row_of, context, self.adapter)
        return logits + self.adapter.bucket_bias(cand_buckets).squeeze(-1), none

    def padded_logits(
        self, windows: Tensor, cand_feats: Tensor, cand_buckets: Tensor, valid: Tensor
    ) -> Tensor:
        """Return logits ``[B, M + 1]`` for padded inputs (``-inf`` where not ``valid``).

        Parameters
        ----------
        windows
            ``[B, W, F_ctx]``.
        cand_feats
            ``[B, M, F_cand]``.
        cand_buckets
            ``[B, M]``.
        valid
            ``[B, M]`` boolean mask of real candidates.
        """
        rows, cols = torch.nonzero(valid, as_tuple=True)
        cand, none = self.forward(windows, cand_feats[rows, cols], rows, cand_buckets[rows, cols])
        out = torch.full((valid.shape[0], valid.shape[1] + 1), float("-inf"), dtype=cand.dtype)
        out[rows, cols] = cand
        out[:, -1] = none
        return out

    def base_state(self) -> dict[str, Tensor]:
        """Return the shared base's weights by stable name (detached copies)."""
        return {
            k: v.detach().clone()
            for k, v in self.state_dict().items()
            if k.startswith(BASE_PREFIXES)
        }

    def adapter_state(self) -> dict[str, Tensor]:
        """Return the customer adapter's weights by stable name (detached copies)."""
        return {
            k: v.detach().clone()
            for k, v in self.state_dict().items()
            if k.startswith(ADAPTER_PREFIX)
        }

    def reset_adapter(self, generator: torch.Generator | None = None) -> None:
        """Replace the adapter by a fresh one drawn from ``generator`` (global one if ``None``)."""
        self.adapter.reset(generator)

    def load_base_state(self, state: dict[str, Tensor]) -> None:
        """Replace the base weights; names and shapes must match exactly."""
        self._load_part(state, self.base_state(), "base")

    def load_adapter_state(self, state: dict[str, Tensor]) -> None:
        """Replace the adapter weights; names and shapes must match exactly."""
        self._load_part(state, self.adapter_state(), "adapter")

    def _load_part(self, state: dict[str, Tensor], current: dict[str, Tensor], part: str) -> None:
        missing = sorted(set(current) - set(state))
        extra = sorted(set(state) - set(current))
        if missing or extra:
            raise ModelFileError(
                f"{part} weights do not match the model: missing {missing}, unexpected {extra}"
            )
        for name, tensor in state.items():
            if tuple(tensor.shape) != tuple(current[name].shape):
                raise ModelFileError(
                    f"{part} tensor {name} has shape {tuple(tensor.shape)}, "
                    f"the model expects {tuple(current[name].shape)}"
                )
        self.load_state_dict({**self.state_dict(), **state})
