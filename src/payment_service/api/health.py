"""Liveness (`/healthz`), readiness (`/readyz`: the store, the db-service, Kafka when present) and `/metrics`."""

import asyncio
from typing import Any, Final, Literal

import orjson
import structlog
from fastapi import APIRouter, Request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field
from starlette.responses import Response

from payment_service.api.bodies import EdgeRoute
from payment_service.api.dependencies import app_state
from payment_service.api.openapi import NOT_A_PROBLEM
from payment_service.domain.errors import PaymentServiceError
from payment_service.resources import ReadinessCheck

log = structlog.get_logger(__name__)

router = APIRouter(tags=["operations"], route_class=EdgeRoute)

READINESS_TIMEOUT_S: Final = 2.0


@router.get("/healthz", summary="The process is up")
async def healthz() -> Response:
    return Response(b'{"status":"ok"}', media_type="application/json")


async def _run_check(check: ReadinessCheck) -> str:
    try:
        async with asyncio.timeout(READINESS_TIMEOUT_S):
            await check()
    except TimeoutError:
        return "timeout"
    except PaymentServiceError as exc:
        return exc.code
    except Exception as exc:  # noqa: BLE001 - a readiness probe reports any failure instead of failing itself
        log.warning("readiness.check_failed", error=type(exc).__name__)
        return "error"
    return "ok"


class ReadinessResponse(BaseModel):
    status: Literal["ready", "unavailable"]
    checks: dict[str, str] = Field(description='Each dependency\'s state: "ok", "timeout" or an error code.')


@router.get(
    "/readyz",
    summary="The service can take payments",
    response_model=ReadinessResponse,
    responses={
        503: {
            "description": "A dependency is not usable; `checks` names it.",
            "model": ReadinessResponse,
            NOT_A_PROBLEM: True,
        }
    },
)
async def readyz(request: Request) -> Response:
    checks = app_state(request)["resources"].readiness_checks
    names = list(checks)
    results = await asyncio.gather(*(_run_check(checks[name]) for name in names))
    report: dict[str, Any] = dict(zip(names, results, strict=True))
    ready = all(result == "ok" for result in results)
    body = orjson.dumps({"status": "ready" if ready else "unavailable", "checks": report})
    return Response(body, status_code=200 if ready else 503, media_type="application/json")


@router.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
async def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
