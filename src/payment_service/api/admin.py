"""Operator routes (role `admin`): payments by status, manual resolutions, the dead-letter topic.

`payment-service payments …` and `payment-service dlq …` call these over HTTP, so operators work
against a running deployment with a token and nothing else.
"""

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Final

import orjson
from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field, model_validator
from starlette.responses import Response

from payment_service.api.auth import Principal
from payment_service.api.bodies import EdgeRoute
from payment_service.api.dependencies import CurrentCustomer, app_state
from payment_service.api.schemas import PaymentResponse, ProblemResponse, payment_dict
from payment_service.domain.dead_letters import DeadLetter, DeadLetterPosition
from payment_service.domain.errors import PermissionDenied
from payment_service.domain.payments import PaymentStatus
from payment_service.services.resolutions import Resolution

JSON: Final = "application/json"


async def admin(principal: CurrentCustomer) -> Principal:
    """The caller, who must hold the admin role. Raises: PermissionDenied (403)."""
    if not principal.is_admin:
        raise PermissionDenied("this needs the admin role")
    return principal


Admin = Annotated[Principal, Depends(admin)]
_ERRORS: Final[dict[int | str, dict[str, Any]]] = {
    401: {"model": ProblemResponse},
    403: {"model": ProblemResponse},
    422: {"model": ProblemResponse},
}

router = APIRouter(prefix="/admin", tags=["operations"], route_class=EdgeRoute)


class ResolveRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    status: Resolution
    reason: str = Field(min_length=1, max_length=500)
    transaction_id: str | None = Field(
        default=None, pattern=r"^[0-9]{1,32}$", description="Required to approve: checked at the gateway."
    )


class ReplayRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    all: bool = False
    positions: list[Annotated[str, Field(pattern=r"^[0-9]{1,9}:[0-9]{1,19}$")]] = Field(
        default_factory=list, max_length=1000, description="PARTITION:OFFSET on the dead-letter topic."
    )

    @model_validator(mode="after")
    def _one_choice(self) -> "ReplayRequest":
        if self.all == bool(self.positions):
            raise ValueError("send either all=true or positions")
        return self


class DeadLetterResponse(BaseModel):
    position: str
    key: str | None
    event_type: str | None
    event_id: str | None
    reason: str | None
    error: str | None
    original_partition: int | None
    original_offset: int | None
    timestamp_ms: int


class ReplayResponse(BaseModel):
    replayed: list[DeadLetterResponse]
    missing: list[str]


def _dead_letter_dict(entry: DeadLetter) -> dict[str, Any]:
    return {
        "position": str(entry.position),
        "key": entry.key,
        "event_type": entry.event_type,
        "event_id": entry.event_id,
        "reason": entry.reason,
        "error": entry.error,
        "original_partition": entry.original_partition,
        "original_offset": entry.original_offset,
        "timestamp_ms": entry.timestamp_ms,
    }


@router.get(
    "/payments",
    summary="Payments in one status, unchanged for at least `older_than_s`, oldest first",
    response_class=Response,
    responses={200: {"model": list[PaymentResponse]}, **_ERRORS},
)
async def list_payments_by_status(
    request: Request,
    _admin: Admin,
    status: PaymentStatus,
    older_than_s: Annotated[float, Query(ge=0, le=366 * 86400)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Response:
    before = datetime.now(UTC) - timedelta(seconds=older_than_s)
    found = await app_state(request)["resolutions"].list_by_status(status, updated_before=before, limit=limit)
    return Response(orjson.dumps([payment_dict(p) for p in found]), media_type=JSON)


@router.post(
    "/payments/{payment_id}/resolution",
    summary="Decide an unknown or held payment by hand (approved needs the gateway's transaction id)",
    response_class=Response,
    responses={
        200: {"model": PaymentResponse},
        404: {"model": ProblemResponse},
        409: {"model": ProblemResponse},
        **_ERRORS,
    },
)
async def resolve_payment(
    request: Request, payment_id: Annotated[str, Path(max_length=64)], body: ResolveRequest, principal: Admin
) -> Response:
    payment = await app_state(request)["resolutions"].resolve(
        payment_id,
        status=body.status,
        reason=body.reason,
        actor=principal.customer_id,
        transaction_id=body.transaction_id,
    )
    return Response(orjson.dumps(payment_dict(payment)), media_type=JSON)


@router.get(
    "/dlq",
    summary="Entries on the dead-letter topic",
    response_class=Response,
    responses={200: {"model": list[DeadLetterResponse]}, **_ERRORS},
)
async def list_dead_letters(request: Request, _admin: Admin) -> Response:
    entries = await app_state(request)["dead_letters"].fetch()
    return Response(orjson.dumps([_dead_letter_dict(e) for e in entries]), media_type=JSON)


@router.post(
    "/dlq/replay",
    summary="Put dead-lettered payment events back on the payments topic",
    response_class=Response,
    responses={200: {"model": ReplayResponse}, **_ERRORS},
)
async def replay_dead_letters(request: Request, body: ReplayRequest, _admin: Admin) -> Response:
    wanted = None if body.all else {DeadLetterPosition.parse(text) for text in body.positions}
    replayed = await app_state(request)["dead_letters"].replay(wanted)
    done = {entry.position for entry in replayed}
    missing = sorted(str(p) for p in (wanted or set()) - done)
    answer = {"replayed": [_dead_letter_dict(e) for e in replayed], "missing": missing}
    return Response(orjson.dumps(answer), media_type=JSON)
