"""Sampling a service with py-spy while a benchmark measures it, and printing the frames with the most samples."""

import collections
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from processes import started, venv_command


@contextmanager
def profiling(pid: int, output: Path | None) -> Iterator[None]:
    """py-spy samples process `pid` into `output` (raw collapsed stacks) meanwhile; nothing when `output` is None."""
    if output is None:
        yield
        return
    args = [venv_command("py-spy"), "record", "--pid", str(pid), "--rate", "250", "--format", "raw"]
    with started(
        [*args, "--output", str(output), "--nonblocking"],
        stderr=subprocess.PIPE,
        stop_signal=signal.SIGINT,  # py-spy writes its file on SIGINT
        stop_timeout_s=30,
    ):
        time.sleep(1.0)  # py-spy attaches asynchronously; it has no readiness signal
        yield


def print_profile(collapsed: Path, *, subject: str, top: int) -> None:
    """The `top` frames by own time and including callees, in percent of the samples of `subject`."""
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        total += count
        frames = [_short_frame(frame) for frame in stack.split(";")]
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    if not total:
        print("profile: no samples")
        return
    print(f"profile: {total} samples of {subject} ({collapsed})")
    for title, counter in (("own time (the frame itself)", own), ("including callees", inclusive)):
        print(f"  {title}:")
        for frame, count in counter.most_common(top):
            print(f"    {100 * count / total:5.1f}%  {frame}")


def _short_frame(frame: str) -> str:
    # py-spy raw frames: "function (path/to/module.py:line)"; group by function and module, not line.
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    for marker in ("site-packages/", "src/", "lib/python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{name} ({path})"
