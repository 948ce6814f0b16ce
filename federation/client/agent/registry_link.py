"""The agent's link to the adoption API: polling for versions, downloading, reporting.

:class:`RegistryLink` does all network work on its own thread, never on the serving path:

* every ``registry_poll_seconds`` it asks the API for the newest model version; a version it
  has not seen is downloaded, verified (Ed25519 signature by a trusted key, sha256 of every
  file — :meth:`RegistryClient.download`) and materialized as a candidate model directory
  (:func:`.registry_candidates.materialize_candidate`) in
  ``<state_dir>/registry/candidates/<version>``, where the adoption flow picks it up at its
  next checkpoint like any other candidate; an artifact that fails verification is refused,
  logged, and handed to the agent to record;
* it sends the reports the agent hands it (:mod:`.registry_reports`), oldest first, and hands
  back the API's answers, which the agent records;
* it watches the customer's adoption history for **operator directives** — a change of champion
  made through the API by someone else than an agent (an admin's rollback, say; agents' own
  records carry ids starting ``agent-``) — downloads the named version if needed and hands the
  newest one to the agent, which makes it the champion without a test.

When the API cannot be reached the link backs off exponentially (with jitter, up to
``registry_max_backoff`` seconds) and tries again; reports wait (they are derived from the
store, so nothing is lost even if the agent is killed meanwhile). A report the API refuses
for good (4xx other than 429) is answered ``rejected`` with the error and not sent again.

The agent's thread talks to the link only through :meth:`sync` (hand over reports, take
answers and refusals) and :meth:`candidate_dirs`; every database write stays on that thread.
"""

from __future__ import annotations

import logging
import random
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from customer_models import KeyEncoder
from federation.client.agent.errors import CandidateRefusedError
from federation.client.agent.private_files import ensure_private_dir
from federation.client.agent.records import Directive, RegistryAnswer
from federation.client.agent.registry_candidates import materialize_candidate
from federation.client.agent.registry_reports import REPORT_PREFIX, Report

if TYPE_CHECKING:
    from federation.server.api import RegistryClient

_log = logging.getLogger(__name__)

#: Folder under the state directory for everything the link writes.
REGISTRY_DIR = "registry"


class _AuthError(Exception):
    """The API refused the agent's credentials (retried with backoff, never fatal)."""


@dataclass(frozen=True)
class Refusal:
    """A registry version the agent refused to download or use, and why."""

    version: str
    error: str


@dataclass(frozen=True)
class LinkStatus:
    """What the link knows about the API right now (for metrics and the summary)."""

    reachable: bool | None
    consecutive_failures: int
    last_error: str | None
    reports_waiting: int
    versions_seen: tuple[str, ...]
    directives_waiting: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Return the status as JSON-able values."""
        return {
            "reachable": self.reachable,
            "consecutive_failures": self.consecutive_failures,
            "last_error": self.last_error,
            "reports_waiting": self.reports_waiting,
            "versions_seen": list(self.versions_seen),
            "directives_waiting": self.directives_waiting,
        }


class RegistryLink:
    """Background polling, downloading and reporting (see the module docstring).

    Parameters
    ----------
    client
        Builds the API client (called on the link's thread; may raise on bad settings).
    state_dir
        The agent's state directory (``registry/`` is created under it, mode 0700).
    encoder
        The customer's key encoder (candidates carry its fingerprint).
    customer_id
        Whose reports are sent.
    known_refused
        Versions refused before (not downloaded again).
    last_directive
        Registry record id of the newest directive already handled (older ones are ignored).
    poll_seconds
        Seconds between polls for new versions.
    max_backoff
        Cap of the delay after consecutive failures, in seconds.
    """

    def __init__(
        self,
        client: Callable[[], RegistryClient],
        state_dir: Path,
        encoder: KeyEncoder,
        customer_id: str,
        *,
        known_refused: set[str] | None = None,
        last_directive: int = 0,
        poll_seconds: float = 60.0,
        max_backoff: float = 300.0,
    ) -> None:
        if poll_seconds <= 0 or max_backoff <= 0:
            raise ValueError("poll_seconds and max_backoff must be positive")
        self._make_client = client
        self._client: RegistryClient | None = None
        root = ensure_private_dir(state_dir / REGISTRY_DIR)
        self.candidates = ensure_private_dir(root / "candidates")
        self._downloads = ensure_private_dir(root / "downloads")
        self._encoder = encoder
        self._customer = customer_id
        self._poll = poll_seconds
        self._max_backoff = max_backoff
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._outbox: list[Report] = []
        self._answers: list[RegistryAnswer] = []
        self._refusals: list[Refusal] = []
        self._refused = set(known_refused or ())
        self._last_directive = last_directive
        self._directives: list[Directive] = []
        self._reachable: bool | None = None
        self._failures = 0
        self._last_error: str | None = None
        self._next_poll = 0.0
        for stale in self.candidates.iterdir():
            if stale.name.startswith(".staging-"):
                shutil.rmtree(stale, ignore_errors=True)

    def __repr__(self) -> str:
        return f"RegistryLink(customer={self._customer!r}, reachable={self._reachable})"

    # -- the agent's side ----------------------------------------------------------------------

    def start(self) -> None:
        """Start the link's thread (a daemon: it never keeps the process alive)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="registry-link", daemon=True)
            self._thread.start()

    def stop(self, *, flush_seconds: float = 0.0) -> None:
        """Stop the thread, after up to ``flush_seconds`` of trying to send what waits."""
        if self._thread is None:
            return
        deadline = time.monotonic() + flush_seconds
        while flush_seconds > 0 and time.monotonic() < deadline:
            with self._lock:
                if not self._outbox or self._reachable is False:
                    break
            self._wake.set()
            time.sleep(0.05)
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=60)
        self._thread = None
        if self._client is not None:
            self._client.close()
            self._client = None

    def sync(self, reports: list[Report] | None) -> tuple[list[RegistryAnswer], list[Refusal]]:
        """Hand over the unanswered reports; take the answers and refusals since the last call.

        ``reports`` replaces the waiting ones (the agent recomputes them from its store when
        it has committed new records, minus what is answered); ``None`` keeps them. The
        caller records what this returns.
        """
        with self._lock:
            answered = {a.report_id for a in self._answers}
            if reports is not None:
                self._outbox = [r for r in reports if r.report_id not in answered]
            answers, self._answers = self._answers, []
            refusals, self._refusals = self._refusals, []
        if self._outbox:
            self._wake.set()
        return answers, refusals

    def take_directives(self) -> list[Directive]:
        """Return the operator directives found since the last call (newest last)."""
        with self._lock:
            taken, self._directives = self._directives, []
        return taken

    def candidate_dirs(self) -> list[Path]:
        """Return the candidate directories materialized so far, oldest version first."""
        return sorted(
            (p for p in self.candidates.iterdir() if p.is_dir() and not p.name.startswith(".")),
            key=lambda p: (p.stat().st_mtime, p.name),
        )

    def status(self) -> LinkStatus:
        """Return the link's view of the API."""
        with self._lock:
            return LinkStatus(
                reachable=self._reachable,
                consecutive_failures=self._failures,
                last_error=self._last_error,
                reports_waiting=len(self._outbox),
                versions_seen=tuple(sorted(p.name for p in self.candidate_dirs())),
                directives_waiting=len(self._directives),
            )

    # -- the link's thread ---------------------------------------------------------------------

    def _loop(self) -> None:
        while not self._stop.is_set():
            delay = self.step()
            self._wake.wait(timeout=delay)
            self._wake.clear()

    def step(self) -> float:
        """Poll if due and send what waits; return the seconds until the next step is due.

        Called by the link's thread; tests call it directly (without :meth:`start`).
        """
        from federation.server.api import RegistryUnavailableError

        try:
            if time.monotonic() >= self._next_poll:
                self._poll_versions()
                self._next_poll = time.monotonic() + self._poll
            self._send()
        except (RegistryUnavailableError, _AuthError) as exc:
            with self._lock:
                self._reachable = False
                self._failures += 1
                self._last_error = str(exc)
                failures = self._failures
            delay = random.uniform(0.5, 1.0) * min(
                self._max_backoff, self._poll * 2.0 ** (failures - 1)
            )
            _log.warning("adoption API unreachable (%s); next try in %.0f s", exc, delay)
            self._next_poll = time.monotonic() + delay
            return delay
        except Exception as exc:  # a bug or bad settings must not kill the agent
            _log.exception("registry link step failed")
            with self._lock:
                self._failures += 1
                self._last_error = f"{type(exc).__name__}: {exc}"
            return self._poll
        with self._lock:
            self._reachable = True
            self._failures = 0
            self._last_error = None
        return max(0.0, self._next_poll - time.monotonic())

    def _api(self) -> RegistryClient:
        if self._client is None:
            self._client = self._make_client()
        return self._client

    def _poll_versions(self) -> None:
        page = self._call(lambda api: api.list_versions(limit=1))
        items = page.get("items") or []
        if not items:
            return
        self._ensure(str(items[0]["version"]))
        self._poll_directives()

    def _poll_directives(self) -> None:
        from federation.server.api import RegistryClientError

        try:
            state = self._call(lambda api: api.adoption(self._customer))
        except RegistryClientError as exc:
            if exc.status == 404:
                return  # the registry has no records of this customer yet
            raise
        items = (state.get("history") or {}).get("items") or []
        newer = [r for r in items if int(r["id"]) > self._last_directive]
        if not newer:
            return
        self._last_directive = max(int(r["id"]) for r in newer)
        operator = [r for r in newer if not str(r.get("client_id") or "").startswith(REPORT_PREFIX)]
        if not operator:
            return
        record = max(operator, key=lambda r: int(r["id"]))
        version = record.get("version")
        if version is not None:
            self._ensure(str(version))
        directive = Directive(
            record_id=int(record["id"]),
            action=str(record["action"]),
            version=None if version is None else str(version),
            reason=str(record.get("reason") or ""),
            actor=str(record.get("actor") or ""),
        )
        _log.info(
            "operator directive %d: %s to %s (%s)",
            directive.record_id,
            directive.action,
            directive.version or "the baseline",
            directive.reason,
        )
        with self._lock:
            self._directives.append(directive)

    def _call(self, request: Callable[[RegistryClient], dict[str, Any]]) -> dict[str, Any]:
        """Run one API request; a refused token becomes :class:`_AuthError` (retried later)."""
        from federation.server.api import RegistryClientError

        try:
            return request(self._api())
        except RegistryClientError as exc:
            if exc.status in (401, 403):
                # A bad or foreign token is not the request's fault: keep everything, back off.
                raise _AuthError(f"the API refused the agent's token: {exc}") from None
            raise

    def _ensure(self, version: str) -> None:
        """Download and materialize ``version`` unless it is here already or was refused."""
        if version not in self._refused and not (self.candidates / version).exists():
            self._fetch(version)

    def _fetch(self, version: str) -> None:
        from privacy import ArtifactVerificationError

        folder = self._downloads / version
        try:
            manifest = self._api().download(version, self._downloads)
            materialize_candidate(folder, manifest, self.candidates / version, self._encoder)
        except (ArtifactVerificationError, CandidateRefusedError) as exc:
            self._refuse(version, str(exc))
            return
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        _log.info("registry version %s downloaded and verified; it will be A/B-tested", version)

    def _refuse(self, version: str, error: str) -> None:
        _log.warning("registry version %s refused: %s (the champion keeps running)", version, error)
        with self._lock:
            self._refused.add(version)
            self._refusals.append(Refusal(version, error))

    def _send(self) -> None:
        from federation.server.api import RegistryClientError

        while not self._stop.is_set():
            with self._lock:
                if not self._outbox:
                    return
                report = self._outbox[0]
            try:
                self._post(report)
                answer = RegistryAnswer(
                    report.report_id, report.kind, report.request_index, report.version, "sent"
                )
            except RegistryClientError as exc:
                _log.warning("the adoption API refused report %s: %s", report.report_id, exc)
                answer = RegistryAnswer(
                    report.report_id,
                    report.kind,
                    report.request_index,
                    report.version,
                    "rejected",
                    str(exc),
                )
            with self._lock:
                self._answers.append(answer)
                if self._outbox and self._outbox[0].report_id == report.report_id:
                    self._outbox.pop(0)

    def _post(self, report: Report) -> None:
        if report.kind == "ab_result":
            self._call(lambda api: api.post_ab_result(self._customer, **report.body))
        else:
            self._call(lambda api: api.post_adoption(self._customer, **report.body))
