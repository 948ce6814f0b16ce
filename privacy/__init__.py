"""Differential privacy: DP-SGD (Opacus), the per-customer privacy ledger, client-level DP.

Two layers (design §3): sample-level DP-SGD on each customer, accounted cumulatively over all
rounds in the customer's :class:`PrivacyLedger` (PRV accountant) and enforced against its
:class:`PrivacyBudget`; and client-level clipping and noise of the shared-base update
(:func:`privatize_update`). See :mod:`privacy.client_dp` for which guarantee holds where.
"""

from privacy.accountant import EPS_ERROR, prv_epsilon
from privacy.budget import MAX_NOISE_MULTIPLIER, PrivacyBudget, calibrate_noise
from privacy.client_dp import (
    add_gaussian_noise,
    clip_update,
    noised_norm_bound,
    privatize_update,
    update_norm,
)
from privacy.dp_sgd import (
    GRAD_SAMPLE_MODES,
    DPSGDConfig,
    DPSGDReport,
    dp_parameter_names,
    train_dp_sgd,
)
from privacy.errors import (
    BudgetExhaustedError,
    InvalidPrivacyConfigError,
    LedgerStateError,
    PrivacyError,
)
from privacy.ledger import LEDGER_STATE_VERSION, LedgerEntry, PrivacyLedger
from privacy.padded_net import PaddedAccessNet, dp_lstm, per_example_loss

__all__ = [
    "EPS_ERROR",
    "GRAD_SAMPLE_MODES",
    "LEDGER_STATE_VERSION",
    "MAX_NOISE_MULTIPLIER",
    "BudgetExhaustedError",
    "DPSGDConfig",
    "DPSGDReport",
    "InvalidPrivacyConfigError",
    "LedgerEntry",
    "LedgerStateError",
    "PaddedAccessNet",
    "PrivacyBudget",
    "PrivacyError",
    "PrivacyLedger",
    "add_gaussian_noise",
    "calibrate_noise",
    "clip_update",
    "dp_lstm",
    "dp_parameter_names",
    "noised_norm_bound",
    "per_example_loss",
    "privatize_update",
    "prv_epsilon",
    "train_dp_sgd",
    "update_norm",
]
