"""FastAPI dependencies as `Annotated` aliases: the typed start-up state, the caller, the service.

`POST /payments/pay` takes the request alone and calls `authenticate` and `idempotency_key_adapter`
itself: solving dependencies cost more CPU per request than the rest of its HTTP layer.
"""

from typing import Annotated, TypedDict, cast

from fastapi import Depends, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import Field, TypeAdapter

from payment_service.api.auth import Principal, TokenVerifier
from payment_service.api.schemas import ID_DESCRIPTION, ID_PATTERN
from payment_service.domain.errors import AuthenticationFailed
from payment_service.messaging.dead_letters import DeadLetterQueue
from payment_service.resources import Resources
from payment_service.services.payments import PaymentService
from payment_service.services.refunds import RefundService
from payment_service.services.resolutions import ResolutionService
from payment_service.services.webhooks import WebhookService
from payment_service.settings import Settings


class AppState(TypedDict):
    """What the lifespan yields; Starlette hands a shallow copy to every request."""

    settings: Settings
    resources: Resources
    payments: PaymentService
    refunds: RefundService
    verifier: TokenVerifier
    webhooks: WebhookService
    resolutions: ResolutionService
    dead_letters: DeadLetterQueue


def app_state(request: Request) -> AppState:
    return cast(AppState, request.scope["state"])


_bearer = HTTPBearer(auto_error=False, scheme_name="bearer", description="A JWT whose subject is the customer id.")


async def current_customer(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Principal:
    """The verified caller. Raises: AuthenticationFailed (401) for a missing, invalid or expired token."""
    return await _verify(request, credentials.credentials if credentials is not None else None)


async def authenticate(request: Request) -> Principal:
    """`current_customer` for a route that takes the request alone (no dependency solving). Raises as it."""
    return await _verify(request, bearer_token(request))


def bearer_token(request: Request) -> str | None:
    """The credentials of an `Authorization: Bearer …` header, read as `HTTPBearer` reads them."""
    scheme, _, credentials = (request.headers.get("authorization") or "").partition(" ")
    credentials = credentials.strip()
    if not (scheme and credentials) or scheme.lower() != "bearer":
        return None
    return credentials


async def _verify(request: Request, token: str | None) -> Principal:
    if token is None:
        raise AuthenticationFailed("a bearer token is required")
    return await app_state(request)["verifier"].verify(token)


# Dependencies are coroutines: FastAPI runs plain functions in a thread pool, a costly hop per request.
async def payment_service(request: Request) -> PaymentService:
    return app_state(request)["payments"]


async def settings(request: Request) -> Settings:
    return app_state(request)["settings"]


CurrentCustomer = Annotated[Principal, Depends(current_customer)]
PaymentServiceDep = Annotated[PaymentService, Depends(payment_service)]
SettingsDep = Annotated[Settings, Depends(settings)]
IDEMPOTENCY_KEY_HEADER = "Idempotency-Key"
IDEMPOTENCY_KEY_DESCRIPTION = "Repeat a request safely: the same key and body answer the first response again."
IdempotencyKey = Annotated[str, Field(min_length=1, max_length=255, description=IDEMPOTENCY_KEY_DESCRIPTION)]
idempotency_key_adapter: TypeAdapter[str] = TypeAdapter(IdempotencyKey)
# A payment id in a path: anything else is refused with 422 before a route runs.
PaymentIdPath = Annotated[str, Path(pattern=ID_PATTERN, max_length=64, description=ID_DESCRIPTION)]
