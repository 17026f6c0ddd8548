"""A throwaway MariaDB server for tests and fixture scripts: private datadir, private socket.

Used by ``tests/conftest.py`` (the ``mariadb`` session fixture), by the fixture scripts under ``tests/fixtures/``
and by the benchmarks. Nothing here touches a system-wide server.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import List, Optional, Sequence

from .paths import SCHEMAS


def find_server() -> Optional[str]:
    for name in ("mariadbd", "mysqld"):
        path = shutil.which(name) or (f"/usr/sbin/{name}" if os.path.exists(f"/usr/sbin/{name}") else None)
        if path:
            return path
    return None


def find_dump() -> Optional[str]:
    return shutil.which("mariadb-dump") or shutil.which("mysqldump")


def find_client() -> Optional[str]:
    return shutil.which("mariadb") or shutil.which("mysql")


class MariaDB:
    """Start with :meth:`start`, stop with :meth:`stop`; root over the socket, no password."""

    def __init__(self, base: Optional[str] = None, *, server_args: Sequence[str] = ()) -> None:
        self.server = find_server()
        if self.server is None:
            raise RuntimeError("no mariadbd on this machine (apt-get install mariadb-server)")
        self.base = Path(base or tempfile.mkdtemp(prefix="sc-mariadb-"))
        self.datadir = self.base / "data"
        self.socket = str(self.base / "mysqld.sock")
        self.proc: Optional[subprocess.Popen] = None
        #: extra mariadbd options; a ``--port=…`` among them turns networking on (127.0.0.1 only)
        self.server_args = list(server_args)

    def start(self) -> MariaDB:
        install = shutil.which("mariadb-install-db") or shutil.which("mysql_install_db")
        if install is None:
            raise RuntimeError("no mariadb-install-db on this machine")
        self.datadir.mkdir(parents=True, exist_ok=True)
        user = ["--user=root"] if os.geteuid() == 0 else []
        subprocess.run(
            [
                install,
                "--no-defaults",
                f"--datadir={self.datadir}",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
                *user,
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self.proc = subprocess.Popen(
            [
                self.server,
                "--no-defaults",
                f"--datadir={self.datadir}",
                f"--socket={self.socket}",
                *self._network_args(),
                f"--pid-file={self.base / 'mysqld.pid'}",
                f"--log-error={self.base / 'error.log'}",
                "--innodb-buffer-pool-size=64M",
                "--innodb-log-file-size=48M",
                "--innodb-flush-log-at-trx-commit=0",
                "--skip-log-bin",
                "--character-set-server=utf8mb4",
                "--collation-server=utf8mb4_general_ci",
                "--max-allowed-packet=256M",
                *user,
                *self.server_args,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                log = (self.base / "error.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"mariadbd exited: {log}")
            if os.path.exists(self.socket):
                try:
                    self.sql("SELECT 1")
                    return self
                except subprocess.CalledProcessError:
                    pass
            time.sleep(0.1)
        raise RuntimeError("mariadbd did not come up within 60 s")

    def _network_args(self) -> List[str]:
        if any(arg.startswith("--port=") for arg in self.server_args):
            return ["--bind-address=127.0.0.1"]
        return ["--skip-networking"]

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        shutil.rmtree(self.base, ignore_errors=True)

    # -- helpers ----------------------------------------------------------------------------------

    def client_args(self) -> List[str]:
        return [find_client() or "mariadb", "--no-defaults", f"--socket={self.socket}", "-uroot"]

    def sql(self, statements: str, database: Optional[str] = None) -> str:
        """Run SQL through the real client; returns its batch output."""
        args = self.client_args() + ["--batch", "--skip-column-names"]
        if database:
            args.append(database)
        done = subprocess.run(args, input=statements.encode(), capture_output=True, check=False)
        if done.returncode != 0:
            raise subprocess.CalledProcessError(done.returncode, args, done.stdout, done.stderr)
        return done.stdout.decode()

    def load_schema(self, file_name: str, database: Optional[str] = None) -> None:
        """Load one of tests/fixtures/schemas/*.sql, optionally under another database name."""
        text = (SCHEMAS / file_name).read_text()
        original = file_name.rsplit(".", 1)[0]
        if database and database != original:
            text = text.replace(f"`{original}`", f"`{database}`")
        self.sql(text)

    def connect(self, database: Optional[str] = None):
        import pymysql

        return pymysql.connect(
            unix_socket=self.socket, user="root", database=database, charset="utf8mb4", autocommit=True
        )

    def dump(self, options: Sequence[str] = (), databases: Sequence[str] = ()) -> bytes:
        """Run the real mysqldump; ``databases`` empty means ``--all-databases``."""
        dump = find_dump()
        if dump is None:
            raise RuntimeError("no mysqldump on this machine")
        args = [dump, "--no-defaults", f"--socket={self.socket}", "-uroot", *options]
        if databases:
            args += list(databases)
        elif not any(o.startswith("--databases") for o in options):
            args.append("--all-databases")
        done = subprocess.run(args, capture_output=True)
        if done.returncode != 0:
            raise RuntimeError(
                f"{os.path.basename(dump)} {' '.join(options)} exited {done.returncode}: "
                + done.stderr.decode("utf-8", "replace").strip()
            )
        return done.stdout

    def drop_databases(
        self, keep: Sequence[str] = ("mysql", "information_schema", "performance_schema", "sys")
    ) -> None:
        names = [n for n in self.sql("SHOW DATABASES").split() if n not in keep]
        if names:
            self.sql("".join(f"DROP DATABASE `{n}`;" for n in names))
