"""`coherence` command line: run everything on one machine, or one process of a deployment.

    coherence run       embedded (or configured) Postgres + Redis, migrations, API and one worker
    coherence migrate   apply the database migrations
    coherence api       the HTTP API (uvicorn) in this process
    coherence worker    one scoring worker (arq) in this process
    coherence token     print the operator token (location on stderr)

Configuration comes from the environment (and `.env`), see `coherence_core.settings`. Every
command logs through `coherence_core.logging` (JSON lines on stderr unless it is a terminal); the
API and worker that `run` starts inherit its stderr and its environment, so they log the same way.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from types import FrameType

from coherence_core import devstack
from coherence_core.logging import configure_from_settings, get_logger
from coherence_core.settings import Settings, get_settings

ADMIN_TOKEN = "admin-token"
SECRET_KEY = "secret-key"
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)

log = get_logger("coherence_core.cli")


def _say(message: str) -> None:
    log.info(message)


def _state_dir(settings: Settings) -> Path:
    return settings.state_dir.expanduser().resolve()


def _secret(settings: Settings, name: str) -> tuple[str, str]:
    """(value, where it comes from) for a secret that is configured or kept in the state folder."""
    configured = settings.admin_token if name == ADMIN_TOKEN else settings.secret_key
    if configured:
        return configured, f"${devstack.secret_env_var(name)}"
    state_dir = _state_dir(settings)
    return devstack.ensure_secret(state_dir, name), str(devstack.secret_path(state_dir, name))


def _migrate(owner_url: str, app_url: str) -> None:
    """Migrate as the owner, granting the role of `app_url` (when it is another) what it needs."""
    from coherence_core.db.migrate import upgrade
    from coherence_core.db.roles import app_role_of

    upgrade(owner_url, app_role=app_role_of(owner_url, app_url))


def _embedded_app_url(superuser_url: str) -> str:
    """The embedded Postgres's application role (created if missing), as a URL: the API and the
    worker run as it, under row-level security; the superuser owns the schema."""
    import asyncio

    from coherence_core.db.roles import APP_ROLE, ensure_login_role, url_for_role

    asyncio.run(ensure_login_role(superuser_url, APP_ROLE))
    return url_for_role(superuser_url, APP_ROLE)


# ------------------------------------------------------------------------------------------- run


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _ignore_while_stopping(signum: int, frame: FrameType | None) -> None:
    _say("still stopping…")


def _port_in_use(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False


def _wait_for_port(host: str, port: int, alive: Callable[[], bool], timeout: float) -> bool:
    target = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and alive():
        with contextlib.suppress(OSError), socket.create_connection((target, port), timeout=0.5):
            return True
        time.sleep(0.2)
    return False


def _stop_children(children: dict[str, subprocess.Popen[bytes]], grace: float) -> None:
    """SIGTERM every child, wait up to `grace` seconds for all of them, then SIGKILL the rest."""
    for proc in children.values():
        if proc.poll() is None:
            proc.terminate()
    deadline = time.monotonic() + grace
    for name, proc in children.items():
        try:
            proc.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            _say(f"{name} did not stop within {grace:.0f}s; killing it")
            proc.kill()
            proc.wait()


def cmd_run(args: argparse.Namespace) -> int:
    settings = get_settings()
    host, port = args.host or settings.host, args.port or settings.port
    if _port_in_use(host, port):
        _say(f"{host}:{port} is already in use; set COHERENCE_PORT or pass --port")
        return 1
    try:
        lock = devstack.lock_state_dir(_state_dir(settings))
    except devstack.StateDirBusy as error:
        _say(f"{error}; stop it first or set COHERENCE_STATE_DIR")
        return 1
    previous = {sig: signal.signal(sig, _raise_interrupt) for sig in STOP_SIGNALS}
    try:
        with lock, ExitStack() as stack:
            try:
                return _run(stack, settings, host, port, args.grace)
            finally:  # stopping children and embedded servers must not be interrupted
                for sig in previous:
                    signal.signal(sig, _ignore_while_stopping)
                _say("stopping…")
    except KeyboardInterrupt:  # during startup
        _say("interrupted")
        return 130
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        _say("stopped")


def _run(stack: ExitStack, settings: Settings, host: str, port: int, grace: float) -> int:
    """Start services and children (cleanups go on `stack`), then wait for a signal or a death."""
    state_dir = _state_dir(settings)
    if settings.database_url:
        database_url, database_note = settings.database_url, "from $DATABASE_URL"
        owner_url = settings.owner_url or database_url
    else:
        _say(f"starting embedded Postgres (data in {state_dir / 'postgres'})")
        owner_url = stack.enter_context(devstack.embedded_postgres(state_dir))
        database_url = _embedded_app_url(owner_url)
        database_note = f"embedded, data in {state_dir / 'postgres'} (API and worker as an "
        database_note += "application role, under row-level security)"
    if settings.redis_url:
        redis_url, redis_note = settings.redis_url, "from $REDIS_URL"
    else:
        _say(f"starting embedded Redis (data in {state_dir / 'redis'})")
        redis_url = stack.enter_context(devstack.embedded_redis(state_dir))
        redis_note = f"embedded, data in {state_dir / 'redis'}"
    _say("applying migrations")
    _migrate(owner_url, database_url)
    token, token_source = _secret(settings, ADMIN_TOKEN)
    secret_key, _ = _secret(settings, SECRET_KEY)

    env = dict(os.environ)
    env.update(
        DATABASE_URL=database_url,
        COHERENCE_OWNER_DATABASE_URL=owner_url,
        REDIS_URL=redis_url,
        COHERENCE_HOST=host,
        COHERENCE_PORT=str(port),
        COHERENCE_STATE_DIR=str(state_dir),
        COHERENCE_ADMIN_TOKEN=token,
        COHERENCE_SECRET_KEY=secret_key,
    )
    # The children stay in our process group, so Ctrl-C in a terminal reaches them as well.
    children: dict[str, subprocess.Popen[bytes]] = {}
    stack.callback(_stop_children, children, grace)
    for role in ("api", "worker"):
        command = [sys.executable, "-m", "coherence_core.cli", role]
        children[role] = subprocess.Popen(command, env=env)

    def dead() -> list[str]:
        return [role for role, proc in children.items() if proc.poll() is not None]

    listening = _wait_for_port(host, port, lambda: not dead(), timeout=60)
    if dead():
        _say(f"could not start: the {' and '.join(dead())} process exited")
        return 1
    if not listening:
        _say(f"could not start: nothing listens on {host}:{port} after 60s")
        return 1
    url = f"http://{'localhost' if host in ('0.0.0.0', '::') else host}:{port}"
    print(
        f"\nCoherence is running.\n"
        f"  API docs        {url}/docs\n"
        f"  operator token  {token}\n"
        f"                  (from {token_source}; send as 'Authorization: Bearer <token>')\n"
        f"  database        {database_note}\n"
        f"  redis           {redis_note}\n"
        f"Press Ctrl-C to stop.\n",
        flush=True,
    )
    try:
        while True:
            for role in dead():
                _say(f"the {role} process exited with status {children[role].returncode}")
                return 1
            time.sleep(0.5)
    except KeyboardInterrupt:
        return 0


# --------------------------------------------------------------------------- single-process roles


def cmd_migrate(args: argparse.Namespace) -> int:
    settings = get_settings()
    if settings.database_url:
        _migrate(settings.owner_url or settings.database_url, settings.database_url)
    else:
        with devstack.embedded_postgres(_state_dir(settings)) as superuser_url:
            _migrate(superuser_url, _embedded_app_url(superuser_url))
    _say("migrations applied")
    return 0


def _require(value: str | None, name: str) -> str:
    if not value:
        raise SystemExit(f"{name} is not set (use `coherence run` for the embedded services)")
    return value


def cmd_api(args: argparse.Namespace) -> int:
    import uvicorn

    settings = get_settings()
    _require(settings.database_url, "DATABASE_URL")
    _require(settings.redis_url, "REDIS_URL")
    uvicorn.run(
        "coherence_api.app:create_app",
        factory=True,
        host=args.host or settings.host,
        port=args.port or settings.port,
        log_level=settings.log_level,
        log_config=None,  # uvicorn's loggers propagate to ours (configured in `main`)
        access_log=False,  # coherence_api.request_log writes the access line, with the request id
    )
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from coherence_scoring.worker import create_worker

    settings = get_settings()
    _require(settings.database_url, "DATABASE_URL")
    _require(settings.redis_url, "REDIS_URL")
    create_worker(settings).run()
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    token, source = _secret(get_settings(), ADMIN_TOKEN)
    _say(f"operator token from {source}")
    print(token)
    return 0


# ------------------------------------------------------------------------------------------ main


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="coherence",
        description="Coherence: run it all locally, or one process of a deployment.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="run everything on this machine (embedded by default)")
    run.add_argument("--host", help="listen address (default $COHERENCE_HOST or 127.0.0.1)")
    run.add_argument("--port", type=int, help="listen port (default $COHERENCE_PORT or 8000)")
    run.add_argument("--grace", type=float, default=10.0, help="seconds to wait for a clean stop")
    run.set_defaults(handler=cmd_run)

    commands.add_parser("migrate", help="apply database migrations").set_defaults(
        handler=cmd_migrate
    )

    api = commands.add_parser("api", help="serve the HTTP API in this process")
    api.add_argument("--host", help="listen address (default $COHERENCE_HOST or 127.0.0.1)")
    api.add_argument("--port", type=int, help="listen port (default $COHERENCE_PORT or 8000)")
    api.set_defaults(handler=cmd_api)

    commands.add_parser("worker", help="run one scoring worker in this process").set_defaults(
        handler=cmd_worker
    )
    commands.add_parser("token", help="print the operator token").set_defaults(handler=cmd_token)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_from_settings(get_settings())
    handler: Callable[[argparse.Namespace], int] = args.handler
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
