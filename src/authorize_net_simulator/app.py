"""The simulator's ASGI application: the gateway endpoint, the `/_sim/` test surface and `/healthz`."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.routing import Route

from authorize_net_simulator.api import GatewayEndpoint
from authorize_net_simulator.clock import Clock, system_clock
from authorize_net_simulator.control import router as control_router
from authorize_net_simulator.settings import SimulatorSettings
from authorize_net_simulator.state import SimulatorState

API_PATH = "/xml/v1/request.api"


def create_app(settings: SimulatorSettings | None = None, *, clock: Clock | None = None) -> FastAPI:
    """A fresh simulator with empty state. `clock` (aware UTC) replaces the system clock in tests."""
    state = SimulatorState(settings or SimulatorSettings(), clock or system_clock)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await state.webhooks.aclose()

    app = FastAPI(
        title="Authorize.Net simulator",
        lifespan=lifespan,
        docs_url="/_sim/docs",
        openapi_url="/_sim/openapi.json",
        redoc_url=None,
    )
    app.state.simulator = state
    # A raw ASGI route: the hot path skips request/response object overhead.
    app.router.routes.append(Route(API_PATH, endpoint=GatewayEndpoint(state), methods=["POST"]))
    app.include_router(control_router)

    @app.exception_handler(RequestValidationError)
    async def invalid_body(request: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's default echoes the input, which may be a card number: keep location and message only.
        errors = [
            {"loc": list(error.get("loc", ())), "msg": error.get("msg", ""), "type": error.get("type", "")}
            for error in exc.errors()
        ]
        return JSONResponse({"detail": errors}, status_code=422)

    @app.get("/healthz", include_in_schema=False)
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app
