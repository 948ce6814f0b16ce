"""The access model as Opacus needs it: examples leading in every module, a DP-LSTM.

Opacus computes per-sample gradients (or, with ghost clipping, their norms) module by module,
along the *leading* dimension of each module's input. :class:`~customer_models.AccessModel`'s
ordinary forward flattens all candidates of a batch into ``[K, F]`` (``K`` differs per batch) and
uses the adapter's raw parameters outside any module, so Opacus would take candidates, not
examples, for samples (per-"sample" gradients of ``[K, ...]`` for the scorer, ``[B, ...]`` for the
encoder, none at all for the adapter). :class:`PaddedAccessNet` computes exactly
:meth:`AccessModel.padded_logits` with the **same parameter objects** but keeps the example
dimension ``B`` leading in every module input (``[B, W, F]`` windows, ``[B, M, F]`` candidates,
``[B, M]`` buckets, ``[B, H]`` contexts) and wraps the adapter's raw parameters in small modules.

Opacus refuses ``nn.LSTM``; :func:`dp_lstm` swaps the encoder's LSTM for an
``opacus.layers.DPLSTM`` with the same weights (same state-dict names) for the session and swaps
the original back afterwards, so :meth:`AccessModel.base_state` keeps its names, shapes and
module types.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from opacus.layers import DPLSTM
from torch import Tensor, nn
from torch.nn import functional

from customer_models.model import AccessModel, ContextEncoder
from customer_models.training import multi_positive_loss
from privacy.errors import InvalidPrivacyConfigError


class _LowRank(nn.Module):
    """The adapter's low-rank update ``x ↦ (x Dᵀ) Uᵀ`` as a module (shared parameters)."""

    def __init__(self, down: nn.Parameter, up: nn.Parameter) -> None:
        super().__init__()
        self.down = down
        self.up = up

    def forward(self, x: Tensor) -> Tensor:
        """Apply the update to ``x`` (``[..., F]``)."""
        return (x @ self.down.T) @ self.up.T


class _Bias(nn.Module):
    """Adds the adapter's scalar "none" bias (shared parameter) to ``[B]`` logits."""

    def __init__(self, bias: nn.Parameter) -> None:
        super().__init__()
        self.bias = bias

    def forward(self, x: Tensor) -> Tensor:
        """Return ``x + bias``."""
        return x + self.bias


class PaddedAccessNet(nn.Module):
    """:meth:`AccessModel.padded_logits` with the example dimension leading in every module.

    Holds the model's own submodules and parameter objects (nothing is copied), so training
    this network trains the model. Every module input has the batch of examples ``B`` as its
    first dimension, which is what Opacus's per-sample machinery needs.

    Parameters
    ----------
    model
        The access model (its encoder may hold an ``nn.LSTM`` or a ``DPLSTM``).
    """

    def __init__(self, model: AccessModel) -> None:
        super().__init__()
        scorer, adapter = model.scorer, model.adapter
        self.encoder: ContextEncoder | None = model.encoder
        self.layer1 = scorer.layer1
        self.layer2 = scorer.layer2
        self.out = scorer.out
        self.none_head = scorer.none_head
        self.context_dim = scorer.context_dim
        self.lora = _LowRank(adapter.lora_down, adapter.lora_up)
        self.none_bias = _Bias(adapter.none_bias)
        self.bucket_bias = adapter.bucket_bias

    def forward(
        self, windows: Tensor, cand_feats: Tensor, cand_buckets: Tensor, valid: Tensor
    ) -> Tensor:
        """Return logits ``[B, M + 1]`` (``-inf`` where not ``valid``; "none" last).

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
        n, m = cand_buckets.shape
        if self.encoder is not None and self.context_dim:
            context = self.encoder(windows)
            x = torch.cat([cand_feats, context[:, None, :].expand(n, m, self.context_dim)], -1)
            none_in = context
        else:
            x = cand_feats
            none_in = cand_feats.new_zeros(n, 1)
        h1 = self.layer1(x) + self.lora(x)
        h2 = torch.relu(self.layer2(torch.relu(h1)))
        cand = self.out(h2).squeeze(-1) + self.bucket_bias(cand_buckets).squeeze(-1)
        none = self.none_bias(self.none_head(none_in).squeeze(-1))
        logits = torch.cat([cand.masked_fill(~valid, float("-inf")), none[:, None]], dim=1)
        return logits


@contextlib.contextmanager
def dp_lstm(model: AccessModel) -> Iterator[AccessModel]:
    """Swap the encoder's ``nn.LSTM`` for an Opacus ``DPLSTM`` with the same weights.

    On exit the trained weights are copied back into the original ``nn.LSTM``, which is put
    back: the model's state-dict names, shapes and module types are as before. A model without
    an encoder is left alone.

    Parameters
    ----------
    model
        The access model.

    Yields
    ------
    AccessModel
        The same model, its encoder running a ``DPLSTM``.
    """
    encoder = model.encoder
    if encoder is None:
        yield model
        return
    lstm = encoder.lstm
    if lstm.num_layers != 1 or lstm.bidirectional or lstm.proj_size or not lstm.batch_first:
        raise InvalidPrivacyConfigError("only a single-layer, batch-first LSTM is supported")
    replacement = DPLSTM(lstm.input_size, lstm.hidden_size, batch_first=True, bias=lstm.bias)
    replacement.load_state_dict(lstm.state_dict())
    replacement.train(lstm.training)
    encoder.lstm = replacement
    try:
        yield model
    finally:
        trained = replacement.state_dict()
        with torch.no_grad():
            for name, tensor in lstm.state_dict().items():
                tensor.copy_(trained[name])
        encoder.lstm = lstm


def per_example_loss(logits: Tensor, labels: Tensor) -> Tensor:
    """Return the training loss of each example (``[B]``), as ``customer_models.training``.

    Parameters
    ----------
    logits
        ``[B, M + 1]`` padded logits ("none" last, ``-inf`` for missing candidates).
    labels
        Either ``bool[B, M + 1]`` positives (candidates requested within the label horizon,
        or "none"): ``-log`` of the probability mass on the positives; or ``int64[B]`` targets:
        the cross-entropy. The batch mean is the loss ``customer_models`` trains on.
    """
    if labels.dtype == torch.bool:
        return multi_positive_loss(logits, labels, reduction="none")
    return functional.cross_entropy(logits, labels, reduction="none")
