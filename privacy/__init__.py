"""Differential privacy: DP-SGD (Opacus), the per-customer privacy ledger, client-level DP.

Two layers (design §3): sample-level DP-SGD on each customer, accounted cumulatively over all
rounds in the customer's :class:`PrivacyLedger` (PRV accountant) and enforced against its
:class:`PrivacyBudget`; and client-level clipping and noise of the shared-base update
(:func:`privatize_update`). See :mod:`privacy.client_dp` for which guarantee holds where.

The names load lazily (PEP 562): signing and PKI users (the registry, the adoption API,
``predis-fl certs``) do not pull in Opacus and torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from privacy.accountant import (
        EPS_ERROR,
        prv_epsilon,
    )
    from privacy.budget import (
        MAX_NOISE_MULTIPLIER,
        PrivacyBudget,
        calibrate_noise,
    )
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
    from privacy.ledger import (
        LEDGER_STATE_VERSION,
        LedgerEntry,
        PrivacyLedger,
    )
    from privacy.padded_net import (
        PaddedAccessNet,
        dp_lstm,
        per_example_loss,
    )
    from privacy.pki import (
        CA_CERT_FILE,
        CA_KEY_FILE,
        DEFAULT_SANS,
        NODE_KEY_SUFFIX,
        NODE_PUBLIC_SUFFIX,
        SERVER_CERT_FILE,
        SERVER_KEY_FILE,
        CertificateFiles,
        NodeKeyFiles,
        PKIError,
        create_ca,
        create_node_key,
        create_server_certificate,
        load_ca,
        load_certificate,
        load_node_private_key,
        load_node_public_key,
        parse_sans,
    )
    from privacy.signing import (
        MANIFEST_FILE,
        SIGNATURE_FILE,
        WEIGHTS_FILE,
        ArtifactVerificationError,
        ManifestSignature,
        SigningError,
        TrustedKeys,
        canonical_manifest_bytes,
        file_entry,
        generate_signing_key,
        key_id,
        load_private_key,
        load_public_key,
        manifest_files,
        public_key_pem,
        public_path,
        read_signed_artifact,
        sign_manifest,
        verify_artifact,
        verify_files,
        write_signed_artifact,
    )

_EXPORTS = {
    "ArtifactVerificationError": "privacy.signing",
    "BudgetExhaustedError": "privacy.errors",
    "CA_CERT_FILE": "privacy.pki",
    "CA_KEY_FILE": "privacy.pki",
    "CertificateFiles": "privacy.pki",
    "DEFAULT_SANS": "privacy.pki",
    "DPSGDConfig": "privacy.dp_sgd",
    "DPSGDReport": "privacy.dp_sgd",
    "EPS_ERROR": "privacy.accountant",
    "GRAD_SAMPLE_MODES": "privacy.dp_sgd",
    "InvalidPrivacyConfigError": "privacy.errors",
    "LEDGER_STATE_VERSION": "privacy.ledger",
    "LedgerEntry": "privacy.ledger",
    "LedgerStateError": "privacy.errors",
    "MANIFEST_FILE": "privacy.signing",
    "MAX_NOISE_MULTIPLIER": "privacy.budget",
    "ManifestSignature": "privacy.signing",
    "NODE_KEY_SUFFIX": "privacy.pki",
    "NODE_PUBLIC_SUFFIX": "privacy.pki",
    "NodeKeyFiles": "privacy.pki",
    "PKIError": "privacy.pki",
    "PaddedAccessNet": "privacy.padded_net",
    "PrivacyBudget": "privacy.budget",
    "PrivacyError": "privacy.errors",
    "PrivacyLedger": "privacy.ledger",
    "SERVER_CERT_FILE": "privacy.pki",
    "SERVER_KEY_FILE": "privacy.pki",
    "SIGNATURE_FILE": "privacy.signing",
    "SigningError": "privacy.signing",
    "TrustedKeys": "privacy.signing",
    "WEIGHTS_FILE": "privacy.signing",
    "add_gaussian_noise": "privacy.client_dp",
    "calibrate_noise": "privacy.budget",
    "canonical_manifest_bytes": "privacy.signing",
    "clip_update": "privacy.client_dp",
    "create_ca": "privacy.pki",
    "create_node_key": "privacy.pki",
    "create_server_certificate": "privacy.pki",
    "dp_lstm": "privacy.padded_net",
    "dp_parameter_names": "privacy.dp_sgd",
    "file_entry": "privacy.signing",
    "generate_signing_key": "privacy.signing",
    "key_id": "privacy.signing",
    "load_ca": "privacy.pki",
    "load_certificate": "privacy.pki",
    "load_node_private_key": "privacy.pki",
    "load_node_public_key": "privacy.pki",
    "load_private_key": "privacy.signing",
    "load_public_key": "privacy.signing",
    "manifest_files": "privacy.signing",
    "noised_norm_bound": "privacy.client_dp",
    "parse_sans": "privacy.pki",
    "per_example_loss": "privacy.padded_net",
    "privatize_update": "privacy.client_dp",
    "prv_epsilon": "privacy.accountant",
    "public_key_pem": "privacy.signing",
    "public_path": "privacy.signing",
    "read_signed_artifact": "privacy.signing",
    "sign_manifest": "privacy.signing",
    "train_dp_sgd": "privacy.dp_sgd",
    "update_norm": "privacy.client_dp",
    "verify_artifact": "privacy.signing",
    "verify_files": "privacy.signing",
    "write_signed_artifact": "privacy.signing",
}

__all__ = [
    "CA_CERT_FILE",
    "CA_KEY_FILE",
    "DEFAULT_SANS",
    "EPS_ERROR",
    "GRAD_SAMPLE_MODES",
    "LEDGER_STATE_VERSION",
    "MANIFEST_FILE",
    "MAX_NOISE_MULTIPLIER",
    "NODE_KEY_SUFFIX",
    "NODE_PUBLIC_SUFFIX",
    "SERVER_CERT_FILE",
    "SERVER_KEY_FILE",
    "SIGNATURE_FILE",
    "WEIGHTS_FILE",
    "ArtifactVerificationError",
    "BudgetExhaustedError",
    "CertificateFiles",
    "DPSGDConfig",
    "DPSGDReport",
    "InvalidPrivacyConfigError",
    "LedgerEntry",
    "LedgerStateError",
    "ManifestSignature",
    "NodeKeyFiles",
    "PKIError",
    "PaddedAccessNet",
    "PrivacyBudget",
    "PrivacyError",
    "PrivacyLedger",
    "SigningError",
    "TrustedKeys",
    "add_gaussian_noise",
    "calibrate_noise",
    "canonical_manifest_bytes",
    "clip_update",
    "create_ca",
    "create_node_key",
    "create_server_certificate",
    "dp_lstm",
    "dp_parameter_names",
    "file_entry",
    "generate_signing_key",
    "key_id",
    "load_ca",
    "load_certificate",
    "load_node_private_key",
    "load_node_public_key",
    "load_private_key",
    "load_public_key",
    "manifest_files",
    "noised_norm_bound",
    "parse_sans",
    "per_example_loss",
    "privatize_update",
    "prv_epsilon",
    "public_key_pem",
    "public_path",
    "read_signed_artifact",
    "sign_manifest",
    "train_dp_sgd",
    "update_norm",
    "verify_artifact",
    "verify_files",
    "write_signed_artifact",
]


def __getattr__(name: str) -> Any:
    """Import an exported name from its module on first use."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
