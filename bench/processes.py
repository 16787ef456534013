"""Processes the benchmarks start and measure: free ports, services started and stopped, CPU time from /proc.

The benchmarks run as `.venv/bin/python bench/<script>.py`, which puts `bench/` on `sys.path`, so they
import this module as `processes`.
"""

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import IO

import httpx

VENV_BIN = Path(sys.executable).parent

Output = int | IO[bytes] | None  # what `subprocess.Popen` takes for stdout and stderr


def free_ports(count: int) -> list[int]:
    """`count` distinct ports free on 127.0.0.1 (all bound at once, so no two are the same)."""
    with ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in socks]


def free_port() -> int:
    (port,) = free_ports(1)
    return port


def user_and_system_seconds(pid: int) -> tuple[float, float]:
    """User and system CPU time of a process so far (Linux /proc), to tell where the CPU goes."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # After the command name: state is field 3, utime 14 and stime 15 (1-based, counting pid and comm).
    ticks = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / ticks, int(fields[12]) / ticks


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process so far (Linux /proc)."""
    user_s, system_s = user_and_system_seconds(pid)
    return user_s + system_s


def resident_bytes(pid: int) -> int:
    """Resident set size of a process now (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def venv_command(name: str) -> str:
    """A console script of this virtualenv (the one running the benchmark), else `name` from PATH."""
    return shutil.which(name, path=str(VENV_BIN)) or name


def stop(process: subprocess.Popen[bytes], *, stop_signal: int = signal.SIGTERM, timeout_s: float = 10.0) -> None:
    """Ask a process to exit, and kill it when it has not within `timeout_s`."""
    process.send_signal(stop_signal)
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def started(
    command: list[str],
    *,
    env: Mapping[str, str] | None = None,
    stdout: Output = subprocess.DEVNULL,
    stderr: Output = subprocess.DEVNULL,
    cwd: Path | None = None,
    stop_signal: int = signal.SIGTERM,
    stop_timeout_s: float = 10.0,
) -> Iterator[subprocess.Popen[bytes]]:
    """A process running `command` (with the whole environment `env`, default this one's), stopped on exit."""
    process = subprocess.Popen(command, env=env, stdout=stdout, stderr=stderr, cwd=cwd)
    try:
        yield process
    finally:
        stop(process, stop_signal=stop_signal, timeout_s=stop_timeout_s)


def wait_until_healthy(base_url: str, process: subprocess.Popen[bytes], *, deadline_s: float = 30.0) -> None:
    """Return once `GET {base_url}/healthz` answers 200; raise when the process exits or the deadline passes."""
    deadline = time.monotonic() + deadline_s
    while True:
        if process.poll() is not None:
            stderr = process.stderr.read().decode(errors="replace") if process.stderr else ""
            raise RuntimeError(f"process for {base_url} exited with {process.returncode}: {stderr}")
        try:
            if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"process for {base_url} not healthy after {deadline_s:.0f} s")
        time.sleep(0.05)  # another process: readiness can only be observed by asking


class RawHttpClient:
    """A minimal keep-alive HTTP/1.1 client: one connection per worker, bodies pre-encoded.

    It costs the load generator far less CPU than httpx, so on a small machine the figure measures
    the server rather than the client. It sends the headers the payment service sends.
    """

    def __init__(self, host: str, port: int, *, service_headers: bool = True) -> None:
        self.host, self.port = host, port
        self.streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        self.sent = 0
        self.service_headers = service_headers  # X-Request-ID and traceparent, as one service calls another

    async def send(self, method: str, path: str, body: bytes | None, extra: Mapping[str, str] | None = None) -> int:
        if self.streams is None:
            self.streams = await asyncio.open_connection(self.host, self.port)
        reader, writer = self.streams
        self.sent += 1
        head = f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\nAccept: application/json\r\n"
        if self.service_headers:
            head += (
                f"X-Request-ID: bench-{id(self):x}-{self.sent}\r\n"
                f"traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b71{self.sent:08x}-01\r\n"
            )
        for header, text in (extra or {}).items():
            head += f"{header}: {text}\r\n"
        if body is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        writer.write(f"{head}\r\n".encode() + (body or b""))
        status_line, _, headers = (await reader.readuntil(b"\r\n\r\n")).partition(b"\r\n")
        length = 0
        for line in headers.split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        await reader.readexactly(length)
        return int(status_line.split()[1])

    async def close(self) -> None:
        if self.streams is not None:
            self.streams[1].close()
            await self.streams[1].wait_closed()
