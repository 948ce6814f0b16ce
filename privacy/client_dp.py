"""Client-level DP of the shared-base update: clipping and Gaussian noise, and what holds where.

These helpers serve the federation client or strategy where Flower's DP wrappers
(``DifferentialPrivacyClientSideFixedClipping`` and friends, ``fixedclipping_mod``) do not fit:
an update is a mapping from stable weight names to tensors (``AccessModel.base_state()`` minus
the global base); it is clipped to L2 norm ``C`` over all its tensors together, and Gaussian
noise of std ``σ·C`` is added to each coordinate, deterministically for a given seed.

Which guarantee holds in which configuration
--------------------------------------------
* **Sample-level DP (always on when a customer trains with DP-SGD).** Each customer's DP-SGD
  steps are accounted by its own :class:`~privacy.PrivacyLedger` over its whole lifetime
  (PRV accountant). The ε it reports protects any single *training example* of that customer
  against everyone who sees what leaves the premises — the server, other customers, anyone
  who gets the published models — whatever the server does. Report it per customer.
* **Client-level DP (clipping + noise of the whole update).** Protects the participation of an
  entire *customer* in the aggregate. With Flower's wrappers, its ε comes from Flower's own
  accountant (RDP, and without sampling amplification unless clients are sampled and that is
  accounted), keyed by the server's noise multiplier, clipping norm and number of rounds; with
  these helpers it must be accounted by whoever chooses ``σ`` and the client sampling — a
  separate ledger for a separate unit of privacy. Server-side noise protects the customer from
  the *published* model but not from the server; client-side noise (each client noises its own
  update, as here) also protects it from the server, at a higher noise cost per client.
* **Secure aggregation (SecAgg+).** The server sees only the sum of the updates of a round, not
  any individual update. It is a confidentiality measure and adds **no** DP by itself; it makes
  server-side client-level noise meaningful against the server only if the noise is added
  before the sum is revealed (distributed noise), which these helpers support by noising on
  the client.
* **Never add ε of different layers together.** A sample-level ε (unit: one example) and a
  client-level ε (unit: one customer) are guarantees about different neighbouring datasets;
  both hold at once, each for its own unit. Summing them means nothing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from torch import Tensor

from privacy.errors import InvalidPrivacyConfigError


def update_norm(update: Mapping[str, Tensor]) -> float:
    """Return the L2 norm of ``update`` over all its tensors together."""
    total = torch.zeros((), dtype=torch.float64)
    for tensor in update.values():
        total += tensor.detach().double().pow(2).sum()
    return float(total.sqrt())


def clip_update(update: Mapping[str, Tensor], max_norm: float) -> tuple[dict[str, Tensor], float]:
    """Scale ``update`` down to L2 norm at most ``max_norm``.

    Parameters
    ----------
    update
        Tensors by name (e.g. the base delta of one round).
    max_norm
        Clipping norm ``C > 0``.

    Returns
    -------
    tuple
        The clipped update (new tensors; the input is not modified) and the norm before
        clipping.

    Examples
    --------
    >>> clipped, norm = clip_update({"w": torch.tensor([3.0, 4.0])}, 1.0)
    >>> norm, clipped["w"].tolist()
    (5.0, [0.6000000238418579, 0.800000011920929])
    """
    _check_positive("max_norm", max_norm)
    norm = update_norm(update)
    scale = min(1.0, max_norm / norm) if norm > 0.0 else 1.0
    return {name: tensor.detach() * scale for name, tensor in update.items()}, norm


def add_gaussian_noise(update: Mapping[str, Tensor], std: float, *, seed: int) -> dict[str, Tensor]:
    """Add independent Gaussian noise of standard deviation ``std`` to every coordinate.

    The noise depends only on ``seed``, the names and the shapes: tensors are visited in
    sorted name order with one generator, so the order of the mapping does not matter. Never
    reuse a seed for two updates of one customer (the noise would cancel in their difference).

    Parameters
    ----------
    update
        Tensors by name (floating point).
    std
        Noise standard deviation (``>= 0``).
    seed
        Seed of the noise.

    Returns
    -------
    dict
        New tensors; the input is not modified.
    """
    if not (math.isfinite(std) and std >= 0.0):
        raise InvalidPrivacyConfigError(f"std must be a finite number >= 0, got {std!r}")
    generator = torch.Generator().manual_seed(seed)
    noised: dict[str, Tensor] = {}
    for name in sorted(update):
        tensor = update[name].detach()
        if not tensor.is_floating_point():
            raise InvalidPrivacyConfigError(f"update tensor {name} is not floating point")
        noise = torch.normal(0.0, std, size=tuple(tensor.shape), generator=generator)
        noised[name] = tensor + noise.to(dtype=tensor.dtype, device=tensor.device)
    return {name: noised[name] for name in update}


def privatize_update(
    update: Mapping[str, Tensor], *, max_norm: float, noise_multiplier: float, seed: int
) -> tuple[dict[str, Tensor], float]:
    """Clip ``update`` to ``max_norm`` and add Gaussian noise of std ``noise_multiplier·max_norm``.

    Parameters
    ----------
    update
        Tensors by name.
    max_norm
        Clipping norm ``C``.
    noise_multiplier
        ``σ >= 0`` (``0``: clipping only, e.g. when the server adds the noise).
    seed
        Seed of the noise.

    Returns
    -------
    tuple
        The privatized update and the norm before clipping (not private: for local logs).
    """
    if not (math.isfinite(noise_multiplier) and noise_multiplier >= 0.0):
        raise InvalidPrivacyConfigError(
            f"noise_multiplier must be a finite number >= 0, got {noise_multiplier!r}"
        )
    clipped, norm = clip_update(update, max_norm)
    return add_gaussian_noise(clipped, noise_multiplier * max_norm, seed=seed), norm


def noised_norm_bound(max_norm: float, noise_multiplier: float, dimension: int) -> float:
    """Return a norm an honestly privatized update exceeds with probability below 1.6e-8.

    ``‖clipped + N(0, (σC)² I_d)‖ ≤ C + σC(√d + t)`` except with probability
    ``exp(-t²/2)`` (Gaussian concentration of the norm, a 1-Lipschitz function), ``t = 6``: a
    server may refuse privatized replies beyond it.

    Parameters
    ----------
    max_norm
        Clipping norm ``C``.
    noise_multiplier
        ``σ >= 0``.
    dimension
        Coordinates ``d`` of the update.

    Examples
    --------
    >>> noised_norm_bound(1.0, 0.0, 100)
    1.0
    """
    _check_positive("max_norm", max_norm)
    if not (math.isfinite(noise_multiplier) and noise_multiplier >= 0.0):
        raise InvalidPrivacyConfigError(
            f"noise_multiplier must be a finite number >= 0, got {noise_multiplier!r}"
        )
    return max_norm + noise_multiplier * max_norm * (math.sqrt(dimension) + _NORM_TAIL)


#: Standard normal tail of :func:`noised_norm_bound`.
_NORM_TAIL = 6.0


def _check_positive(name: str, value: float) -> None:
    if not (math.isfinite(value) and value > 0.0):
        raise InvalidPrivacyConfigError(f"{name} must be a positive finite number, got {value!r}")
