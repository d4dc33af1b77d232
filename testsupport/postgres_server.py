"""A private PostgreSQL server for tests: its own cluster in a temporary directory.

``initdb`` creates the cluster, ``pg_ctl`` starts it listening on a unix socket inside that
directory (and, if asked, on 127.0.0.1 at a free port), and :meth:`PostgresServer.stop`
stops it and removes the directory. Debian's server refuses to run as root, so when the
tests run as root every server command runs as the ``postgres`` system user
(``runuser -u postgres --``), which then owns the directory.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

from testsupport.components import postgresql_bin_dir

#: The superuser and database every private server has (no password: trust auth).
SUPERUSER = "postgres"
DATABASE = "postgres"

#: Seconds pg_ctl waits for the server to start or stop before it gives up.
PG_CTL_TIMEOUT = 30


class PostgresServerError(RuntimeError):
    """The private server could not be created, started or stopped."""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PostgresServer:
    """One running private server; see :func:`running_postgres_server`."""

    def __init__(self, bin_dir: Path, base_dir: Path, *, tcp: bool) -> None:
        self.bin_dir = bin_dir
        self.base_dir = base_dir
        self.data_dir = base_dir / "data"
        self.socket_dir = base_dir / "socket"
        self.log_file = base_dir / "server.log"
        # Without TCP the port only names the socket file, which no other server shares.
        self.port = _free_port() if tcp else 5432
        self.tcp = tcp
        self._run_as = self._server_user()

    @staticmethod
    def _server_user() -> list[str]:
        if os.geteuid() != 0:
            return []
        try:
            pwd.getpwnam(SUPERUSER)
        except KeyError as exc:
            raise PostgresServerError(
                "running as root, and there is no 'postgres' system user to run the server "
                "as (Debian's postgresql package creates it)"
            ) from exc
        return ["runuser", "-u", SUPERUSER, "--"]

    @property
    def url(self) -> str:
        """A libpq URL: over the unix socket, or over TCP on 127.0.0.1 when started with tcp."""
        if self.tcp:
            return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{DATABASE}"
        host = quote(str(self.socket_dir), safe="")
        return f"postgresql://{SUPERUSER}@/{DATABASE}?host={host}&port={self.port}"

    def psql_command(self, *arguments: str) -> list[str]:
        """``psql`` of the same installation, connected to this server, failing on errors."""
        return [
            str(self.bin_dir / "psql"),
            "--no-psqlrc",
            "--set=ON_ERROR_STOP=1",
            f"--dbname={self.url}",
            *arguments,
        ]

    def _run(self, what: str, command: list[str]) -> None:
        completed = subprocess.run(
            [*self._run_as, *command], capture_output=True, text=True, check=False
        )
        if completed.returncode != 0:
            log = self.log_file.read_text() if self.log_file.exists() else "(no server log)"
            raise PostgresServerError(
                f"{what} failed (exit {completed.returncode}): {' '.join(command)}\n"
                f"{completed.stdout}{completed.stderr}\nserver log {self.log_file}:\n{log}"
            )

    def start(self) -> None:
        self.socket_dir.mkdir()
        if self._run_as:
            for path in (self.base_dir, self.socket_dir):
                shutil.chown(path, SUPERUSER, SUPERUSER)
        self._run(
            "initdb",
            [
                str(self.bin_dir / "initdb"),
                f"--pgdata={self.data_dir}",
                f"--username={SUPERUSER}",
                "--auth=trust",
                "--encoding=UTF8",
                "--no-sync",
            ],
        )
        settings = {
            "listen_addresses": "127.0.0.1" if self.tcp else "",
            "port": str(self.port),
            "unix_socket_directories": str(self.socket_dir),
            # The server is thrown away with its directory; surviving an OS crash is not
            # what these tests check (killed clients are, and they do not depend on fsync).
            "fsync": "off",
        }
        options = " ".join(f"-c {key}='{value}'" for key, value in settings.items())
        self._run(
            "pg_ctl start",
            [
                str(self.bin_dir / "pg_ctl"),
                "start",
                f"--pgdata={self.data_dir}",
                f"--log={self.log_file}",
                f"--options={options}",
                "--wait",
                f"--timeout={PG_CTL_TIMEOUT}",
            ],
        )

    def stop(self) -> None:
        """Stop the server if it runs, then remove its directory."""
        try:
            if (self.data_dir / "postmaster.pid").exists():
                self._run(
                    "pg_ctl stop",
                    [
                        str(self.bin_dir / "pg_ctl"),
                        "stop",
                        f"--pgdata={self.data_dir}",
                        "--mode=fast",
                        "--wait",
                        f"--timeout={PG_CTL_TIMEOUT}",
                    ],
                )
        finally:
            shutil.rmtree(self.base_dir, ignore_errors=True)


@contextmanager
def running_postgres_server(*, tcp: bool = False) -> Iterator[PostgresServer]:
    """Start a private server for the ``with`` block; stopped and removed when it ends.

    ``tcp=True`` also listens on 127.0.0.1 at a free port (then :attr:`PostgresServer.url`
    uses it); otherwise only the unix socket in the server's temporary directory serves.
    """
    bin_dir = postgresql_bin_dir()
    if bin_dir is None:
        raise PostgresServerError(
            "no PostgreSQL server found under /usr/lib/postgresql/*/bin "
            "(install it with: apt-get install -y postgresql)"
        )
    # Not under pytest's tmp_path: its parents are private to root, and the server may run
    # as the postgres user, who must reach the directory.
    server = PostgresServer(bin_dir, Path(tempfile.mkdtemp(prefix="routilux-pg-")), tcp=tcp)
    try:
        server.start()
        yield server
    finally:
        server.stop()
