"""FastAPI dependencies as `Annotated` aliases: the typed start-up state, the caller, the service."""

from typing import Annotated, TypedDict, cast

from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from payment_service.api.auth import Principal, TokenVerifier
from payment_service.domain.errors import AuthenticationFailed
from payment_service.resources import Resources
from payment_service.services.payments import PaymentService
from payment_service.settings import Settings


class AppState(TypedDict):
    """What the lifespan yields; Starlette hands a shallow copy to every request."""

    settings: Settings
    resources: Resources
    payments: PaymentService
    verifier: TokenVerifier


def app_state(request: Request) -> AppState:
    return cast(AppState, request.scope["state"])


_bearer = HTTPBearer(auto_error=False, scheme_name="bearer", description="A JWT whose subject is the customer id.")


async def current_customer(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Principal:
    """The verified caller. Raises: AuthenticationFailed (401) for a missing, invalid or expired token."""
    if credentials is None:
        raise AuthenticationFailed("a bearer token is required")
    return await app_state(request)["verifier"].verify(credentials.credentials)


# Dependencies are coroutines: FastAPI runs plain functions in a thread pool, a costly hop per request.
async def payment_service(request: Request) -> PaymentService:
    return app_state(request)["payments"]


async def settings(request: Request) -> Settings:
    return app_state(request)["settings"]


CurrentCustomer = Annotated[Principal, Depends(current_customer)]
PaymentServiceDep = Annotated[PaymentService, Depends(payment_service)]
SettingsDep = Annotated[Settings, Depends(settings)]
IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        description="Repeat a request safely: the same key and body answer the first response again.",
    ),
]
