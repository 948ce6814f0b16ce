"""``/v1/customers/{customer_id}/...``: adoption state and changes, A/B results, privacy.

Access: ``admin`` tokens reach every customer; ``server`` tokens read adoption and privacy; a
``customer`` token reaches only its own customer id and gets 404 for any other (as if it did not
exist: another customer's records are never revealed, not even their existence).
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from sqlalchemy.orm import Session

from federation.server.api.dependencies import (
    DEFAULT_LIMIT,
    CustomerIdPath,
    LimitQuery,
    OffsetQuery,
    PrincipalDep,
    in_session,
    json_reply,
    require_customer,
    require_role,
)
from federation.server.api.errors import error_responses
from federation.server.api.schemas import (
    AbResultIn,
    AbResultOut,
    AdoptionChange,
    AdoptionIn,
    AdoptionOut,
    AdoptionPage,
    AdoptionState,
    PrivacyEntryOut,
    PrivacyPage,
    PrivacyState,
)
from federation.server.registry import (
    Role,
    adopt_version,
    adoption_state,
    latest_privacy_entry,
    privacy_entries,
    record_ab_result,
)

router = APIRouter(
    prefix="/v1/customers/{customer_id}",
    tags=["customers"],
    responses=error_responses(400, 401, 403, 404, 422),
)
_READERS = (Role.ADMIN, Role.SERVER, Role.CUSTOMER)
_WRITERS = (Role.ADMIN, Role.CUSTOMER)


@router.get("/adoption", response_model=AdoptionState)
async def get_adoption(
    customer_id: CustomerIdPath,
    request: Request,
    principal: PrincipalDep,
    limit: LimitQuery = DEFAULT_LIMIT,
    offset: OffsetQuery = 0,
) -> Response:
    """Return the customer's current champion and adoption history, newest first."""
    require_role(principal, *_READERS)
    require_customer(principal, customer_id)

    def work(session: Session) -> AdoptionState:
        champion, page = adoption_state(session, customer_id, limit=limit, offset=offset)
        items = [AdoptionOut.of(r, r.ab_result) for r in page.items]
        return AdoptionState(
            customer_id=customer_id,
            champion=champion,
            history=AdoptionPage(
                items=items,
                total=page.total,
                limit=page.limit,
                offset=page.offset,
                next_offset=page.next_offset,
            ),
        )

    return json_reply(await in_session(request, work, read_only=True))


@router.post(
    "/adoption",
    response_model=AdoptionChange,
    status_code=201,
    responses={
        200: {"model": AdoptionChange, "description": "already the champion: nothing changed"},
        **error_responses(409),
    },
)
async def post_adoption(
    customer_id: CustomerIdPath,
    body: AdoptionIn,
    request: Request,
    response: Response,
    principal: PrincipalDep,
) -> AdoptionChange:
    """Adopt ``version`` or roll back to it (a version this customer ran before), with a reason.

    201 with the adoption record when the champion changed; 200 with ``changed: false`` when
    ``version`` already is the champion (so a retry is harmless). Every change is audited.
    """
    require_role(principal, *_WRITERS)
    require_customer(principal, customer_id)

    def work(session: Session) -> AdoptionChange:
        record, customer = adopt_version(
            session,
            customer_id,
            version=body.version,
            action=body.action,
            reason=body.reason,
            ab_result_id=body.ab_result_id,
            client_id=body.id,
            actor=principal.actor,
        )
        out = AdoptionOut.of(record, record.ab_result) if record is not None else None
        return AdoptionChange(
            customer_id=customer_id,
            champion=customer.champion_version,
            changed=record is not None,
            record=out,
        )

    change = await in_session(request, work)
    if change.record is None:
        response.status_code = 200
    else:
        request.app.state.metrics.adoptions.labels(change.record.action).inc()
    return change


@router.post(
    "/ab-results",
    response_model=AbResultOut,
    status_code=201,
    responses={
        200: {"model": AbResultOut, "description": "a retry: the result stored before"},
        **error_responses(409),
    },
)
async def post_ab_result(
    customer_id: CustomerIdPath,
    body: AbResultIn,
    request: Request,
    response: Response,
    principal: PrincipalDep,
) -> AbResultOut:
    """Store an A/B result, idempotent by the client-chosen ``id``.

    201 when stored now; 200 with the same stored result when the same ``id`` and body come
    again (a retry after a lost reply); 409 ``idempotency_conflict`` when the ``id`` was used
    with a different body. A 2xx reply means the result is committed to the database.
    """
    require_role(principal, *_WRITERS)
    require_customer(principal, customer_id)

    def work(session: Session) -> tuple[AbResultOut, bool]:
        row, created = record_ab_result(
            session,
            customer_id,
            client_id=body.id,
            challenger_version=body.challenger_version,
            champion_version=body.champion_version,
            decision=body.decision,
            statistics=body.statistics,
            actor=principal.actor,
        )
        return AbResultOut.of(row), created

    out, created = await in_session(request, work)
    if created:
        request.app.state.metrics.ab_results.inc()
    else:
        response.status_code = 200
    return out


@router.get("/privacy", response_model=PrivacyState)
async def get_privacy(
    customer_id: CustomerIdPath,
    request: Request,
    principal: PrincipalDep,
    limit: LimitQuery = DEFAULT_LIMIT,
    offset: OffsetQuery = 0,
) -> Response:
    """Return ε the customer has spent (its newest ledger entry) and the ledger, newest first."""
    require_role(principal, *_READERS)
    require_customer(principal, customer_id)

    def work(session: Session) -> PrivacyState:
        page = privacy_entries(session, customer_id, limit=limit, offset=offset)
        newest_first = page.items[:1] if offset == 0 else []
        latest = newest_first[0] if newest_first else latest_privacy_entry(session, customer_id)
        return PrivacyState(
            customer_id=customer_id,
            epsilon_spent=latest.epsilon if latest else None,
            delta=latest.delta if latest else None,
            entries=PrivacyPage(
                items=[PrivacyEntryOut.of(r) for r in page.items],
                total=page.total,
                limit=page.limit,
                offset=page.offset,
                next_offset=page.next_offset,
            ),
        )

    return json_reply(await in_session(request, work, read_only=True))
