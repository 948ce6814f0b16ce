"""Client-level DP: each customer clips and noises its own update of the shared base.

With ``dp-client-level = true`` the train handler replaces the base it would send by
``w_global + privatize(w_local - w_global)``: the update (the base delta of the round, all base
tensors together) is clipped to L2 norm ``C = dp-client-clip`` and Gaussian noise of standard
deviation ``σ·C`` (``σ = dp-client-noise``) is added to every coordinate
(:func:`privacy.privatize_update`), **on the customer's side, before the reply leaves it**.

What this guarantees
--------------------
* **Unit and adversary.** The whole data of one customer, against anyone who sees its reply —
  the server included (local DP of the update). Two data sets of a customer give clipped
  updates at most ``2C`` apart, so each round's release is a Gaussian mechanism with noise
  multiplier ``σ/2`` (replace-one adjacency); over the ``R`` rounds the customer released, ε is
  that of ``R`` such releases composed (PRV accountant, :func:`client_level_epsilon`). The handler
  keeps ``R`` and this ε in the customer's Context state (``client-dp``) and logs them; they are
  not sent. ``σ = 0`` clips without noise: no DP (ε infinite).
* **Budget.** With ``dp-client-max-epsilon`` > 0 the train handler declines, before training,
  a round whose release would take this ε above that budget (status
  ``privacy-budget-exhausted``); ``0`` accounts and reports the ε without a limit.
* **Everything the server does is post-processing** of the noised updates — reply screening,
  robust aggregation, FedAvg's weighting, FedAdam's server optimiser — so the guarantee holds for
  every strategy. The aggregate of ``n`` honest customers carries ``n`` independent noises (a
  stronger guarantee against whoever sees only the published model); that is not accounted here.
* **Not covered.** The reply's metrics (``num-examples``, ``local-steps``, ``epsilon``) and
  federated evaluation replies are not noised. The training loss is not sent under DP (``0.0``).
  Sample-level ε (unit: one example) and this client-level ε (unit: one customer) are separate
  guarantees that both hold; never add them.
* **Randomness.** The noise seed is derived from the customer's secret, the round and the
  number of rounds trained, so the server cannot reproduce or cancel it and no seed repeats.

Why not Flower's ``DifferentialPrivacyClientSideFixedClipping`` + ``fixedclipping_mod``: that
wrapper clips on the client but adds the noise on the server (``σ·C/n`` to the aggregate, so
the server itself is trusted), its noise assumes an unweighted mean of ``n`` replies (our
strategies weight by examples, trim, run Krum or FedAdam, whose sensitivities differ), its
accountant requires Flower's unmodified ``FedAvg.aggregate_train`` (ours screens replies), and
``fixedclipping_mod`` turns a reply without weights (a client refusing for its privacy budget or
lack of data) into an error, on which the wrapper skips aggregation for the whole round.
"""

from __future__ import annotations

import math

import torch

from privacy import PrivacyError, privatize_update, prv_epsilon


def privatize_base(
    local: dict[str, torch.Tensor],
    received: dict[str, torch.Tensor],
    *,
    clip: float,
    noise_multiplier: float,
    seed: int,
) -> tuple[dict[str, torch.Tensor], float]:
    """Return ``received + privatize(local - received)`` and the update norm before clipping.

    Parameters
    ----------
    local
        The base after local training, by name.
    received
        The global base received this round (same names).
    clip
        Clipping norm ``C`` of the update.
    noise_multiplier
        ``σ``: noise std ``σ·C`` per coordinate.
    seed
        Seed of the noise (secret to the customer; never reused).

    Returns
    -------
    tuple
        The base to send (same dtypes as ``local``) and ``‖local - received‖₂`` (not private: for
        local logs only).
    """
    update = {name: local[name].detach() - received[name] for name in local}
    noised, norm = privatize_update(
        update, max_norm=clip, noise_multiplier=noise_multiplier, seed=seed
    )
    out = {name: (received[name] + noised[name]).to(local[name].dtype) for name in local}
    return out, norm


def client_level_epsilon(noise_multiplier: float, releases: int, delta: float) -> float:
    """Return ε at ``delta`` of ``releases`` client-level releases (see the module docstring).

    Each release is a Gaussian mechanism of sensitivity ``2C`` and noise ``σ·C``; ``0.0`` before
    any release, ``inf`` without noise.
    """
    if releases <= 0:
        return 0.0
    if noise_multiplier <= 0.0:
        return math.inf
    try:
        return prv_epsilon([(noise_multiplier / 2.0, 1.0, releases)], delta)
    except PrivacyError:
        return math.inf
