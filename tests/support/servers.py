"""Real HTTP servers for tests: an ASGI app served by uvicorn on 127.0.0.1.

The listening socket is bound before the server thread starts, so a client may connect at once:
the kernel queues the connection until uvicorn accepts it, and no test waits by polling.
"""

import asyncio
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from starlette.types import ASGIApp


def bind_free_socket(port: int = 0) -> socket.socket:
    """Bind 127.0.0.1:`port` (0: any free port); SO_REUSEADDR lets a stopped server's port be bound again."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(2048)
    return sock


@contextmanager
def serve_app(app: ASGIApp, *, lifespan: str = "on", port: int = 0, date_header: bool = True) -> Iterator[str]:
    """Serve `app` in a background thread with its own event loop; yield its base URL.

    The app's lifespan has completed when the first request is accepted, because uvicorn runs
    start-up before it starts accepting on the pre-bound socket. `port` (default: any free one)
    lets a test stop a server and serve again on the same address. `date_header=False` leaves the
    `Date` header to the app (the simulator sends its own clock's).
    """
    sock = bind_free_socket(port)
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        lifespan=lifespan,  # type: ignore[arg-type]
        log_level="warning",
        access_log=False,
        date_header=date_header,
    )
    server = uvicorn.Server(config)
    failure: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(server.serve(sockets=[sock]))
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread, raised there
            failure.append(exc)

    thread = threading.Thread(target=run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
    if failure:
        raise failure[0]
