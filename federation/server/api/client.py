"""A typed HTTP client of the adoption API for the customer's agent.

:class:`RegistryClient` lists model versions, downloads an artifact and verifies it (Ed25519
signature by a trusted key, then the sha256 of every file) before anything may load it, and
posts A/B results (with a client-chosen idempotency id, so a retry never duplicates a row) and
adoptions. Connection errors, timeouts and 429/502/503/504 replies are retried with exponential
backoff and jitter (honouring ``Retry-After``); when the retries run out it raises
:class:`RegistryUnavailableError`, and the agent keeps the report to send later.
"""

from __future__ import annotations

import json
import random
import shutil
import ssl
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from privacy.signing import (
    MANIFEST_FILE,
    SIGNATURE_FILE,
    ArtifactVerificationError,
    TrustedKeys,
    canonical_manifest_bytes,
    manifest_files,
    verify_artifact,
)

_RETRY_STATUSES = frozenset({429, 502, 503, 504})


class RegistryClientError(Exception):
    """The API refused a request (4xx): ``status`` and the stable error ``code``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        self.status = status
        self.code = code
        super().__init__(f"{status} {code}: {message}")


class RegistryUnavailableError(Exception):
    """The API could not be reached (or kept failing) after every retry."""


class RegistryClient:
    """Client of ``/v1`` for one customer's agent (or any token holder).

    Parameters
    ----------
    base_url
        e.g. ``https://registry.example:8443``.
    token
        Bearer token (``predis-fl api create-token``).
    trusted
        Public keys whose signatures are accepted on downloaded artifacts.
    timeout
        Seconds per request.
    retries
        Further attempts after a failed one (connection error, timeout, 429/502/503/504).
    backoff, max_backoff
        First delay and cap of the exponential backoff, in seconds (full jitter).
    verify
        TLS verification: ``True`` (system roots), an :class:`ssl.SSLContext` (e.g. one that
        trusts a private CA), or ``False`` (never in production).
    transport
        An httpx transport (tests pass an ASGI transport).
    sleep
        Sleep function (tests pass a fake one).
    """

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        trusted: TrustedKeys,
        timeout: float = 10.0,
        retries: int = 5,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        verify: ssl.SSLContext | bool = True,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if retries < 0 or backoff < 0 or max_backoff < backoff:
            raise ValueError("retries and backoff must be >= 0 and max_backoff >= backoff")
        self._http = httpx.Client(
            base_url=base_url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout,
            verify=verify,
            transport=transport,
        )
        self._trusted = trusted
        self._retries = retries
        self._backoff = backoff
        self._max_backoff = max_backoff
        self._sleep = sleep

    def __repr__(self) -> str:
        return f"RegistryClient({str(self._http.base_url)!r})"

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def list_versions(self, *, limit: int = 50, offset: int = 0) -> dict[str, Any]:
        """Return one page of model versions (newest first; see ``next_offset``)."""
        return self._json("GET", "/v1/models", params={"limit": limit, "offset": offset})

    def get_version(self, version: str) -> dict[str, Any]:
        """Return one model version's metadata, manifest and signature."""
        return self._json("GET", f"/v1/models/{version}")

    def download(self, version: str, directory: str | Path) -> dict[str, Any]:
        """Download ``version`` into ``directory/version`` and verify it; return the manifest.

        The files are written to a staging folder, verified (signature by a trusted key, sha256
        of every file) and only then renamed into place; a failed check leaves nothing behind.

        Raises
        ------
        privacy.ArtifactVerificationError
            If the artifact is unsigned, signed by an untrusted key or tampered with.
        """
        meta = self.get_version(version)
        manifest = meta["manifest"]
        target = Path(directory) / version
        staging = Path(directory) / f".download-{version}"
        if staging.exists():
            shutil.rmtree(staging)
        staging.mkdir(parents=True)
        try:
            (staging / MANIFEST_FILE).write_bytes(canonical_manifest_bytes(manifest))
            (staging / SIGNATURE_FILE).write_text(json.dumps(meta["signature"]), "utf-8")
            name = next(iter(manifest_files(manifest)))
            (staging / name).write_bytes(self._request("GET", meta["artifact"]["url"]).content)
            verified = verify_artifact(staging, self._trusted)
        except ArtifactVerificationError:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
        return verified

    def post_ab_result(
        self,
        customer_id: str,
        *,
        result_id: str,
        challenger_version: str,
        decision: str,
        statistics: Mapping[str, Any],
        champion_version: str | None = None,
    ) -> dict[str, Any]:
        """Report an A/B result; ``result_id`` (e.g. a UUID) makes retries safe."""
        body = {
            "id": result_id,
            "challenger_version": challenger_version,
            "champion_version": champion_version,
            "decision": decision,
            "statistics": dict(statistics),
        }
        return self._json("POST", f"/v1/customers/{customer_id}/ab-results", json=body)

    def post_adoption(
        self,
        customer_id: str,
        *,
        version: str | None,
        reason: str,
        action: str = "adopt",
        ab_result_id: str | None = None,
        adoption_id: str | None = None,
    ) -> dict[str, Any]:
        """Report an adoption (or a rollback) of ``version``; repeating it changes nothing.

        A rollback with ``version=None`` goes back to the customer's own baseline (no
        registry version serves). ``adoption_id`` (e.g. a UUID) makes a retry safe even after
        the champion has changed again.
        """
        body = {
            "version": version,
            "action": action,
            "reason": reason,
            "ab_result_id": ab_result_id,
            "id": adoption_id,
        }
        return self._json("POST", f"/v1/customers/{customer_id}/adoption", json=body)

    def adoption(self, customer_id: str) -> dict[str, Any]:
        """Return the customer's champion and adoption history."""
        return self._json("GET", f"/v1/customers/{customer_id}/adoption")

    def _json(self, method: str, url: str, **kwargs: Any) -> dict[str, Any]:
        payload = self._request(method, url, **kwargs).json()
        if not isinstance(payload, dict):
            raise RegistryUnavailableError(f"{method} {url}: expected a JSON object")
        return payload

    def _request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        last = ""
        retry_after: float | None = None
        for attempt in range(self._retries + 1):
            if attempt:
                self._sleep(self._delay(attempt, retry_after))
            retry_after = None
            try:
                response = self._http.request(method, url, **kwargs)
            except httpx.TransportError as exc:
                last = f"{type(exc).__name__}: {exc}"
                continue
            if response.status_code in _RETRY_STATUSES:
                last = f"HTTP {response.status_code}"
                retry_after = _retry_after(response)
                continue
            if response.status_code >= 400:
                raise _client_error(response)
            return response
        raise RegistryUnavailableError(
            f"{method} {url} failed after {self._retries + 1} attempts (last: {last})"
        )

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        cap = min(self._max_backoff, self._backoff * 2 ** (attempt - 1))
        delay = random.uniform(0, cap)
        return max(delay, retry_after or 0.0)


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return float(response.headers.get("Retry-After", ""))
    except ValueError:
        return None


def _client_error(response: httpx.Response) -> RegistryClientError:
    try:
        body = response.json()
        return RegistryClientError(response.status_code, str(body["code"]), str(body["message"]))
    except (ValueError, KeyError, TypeError):
        return RegistryClientError(response.status_code, "http_error", response.text[:200])
