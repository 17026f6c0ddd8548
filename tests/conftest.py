"""Shared fixtures: a real MariaDB server for the whole session (skipped where none is installed)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.mariadb import MariaDB, find_dump, find_server
from tests.support.paths import FIXTURES, SCHEMAS

#: In CI (CI=true, as .ci/run runs) or with STARCOMPACTOR_REQUIRE_MARIADB=1, a test that would skip for
#: want of MariaDB fails instead: .ci/run installs it, so a skip there would hide a broken setup.
REQUIRE_MARIADB = (
    os.environ.get("STARCOMPACTOR_REQUIRE_MARIADB") == "1" or os.environ.get("CI", "").lower() == "true"
)


def _no_mariadb(reason: str):
    if REQUIRE_MARIADB:
        pytest.fail(f"{reason}, but STARCOMPACTOR_REQUIRE_MARIADB=1")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def mariadb():
    """A throwaway MariaDB (private datadir and socket), shared by the session's tests."""
    if find_server() is None or find_dump() is None:
        _no_mariadb("no mariadbd/mysqldump installed (apt-get install mariadb-server)")
    if not SCHEMAS.is_dir():
        _no_mariadb(f"no OpenStack schemas at {SCHEMAS}")
    # its own temporary directory, not pytest's: a second pytest run on the machine removes the oldest of
    # pytest's directories when it starts, which pulled this server's datadir away mid-run (twice)
    server = MariaDB().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    return FIXTURES


@pytest.fixture(autouse=True)
def _private_key_home(tmp_path_factory, monkeypatch):
    """No test may create or read the real user's masking key file."""
    if "XDG_CONFIG_HOME" not in os.environ or not os.environ["XDG_CONFIG_HOME"].startswith(
        str(tmp_path_factory.getbasetemp())
    ):
        monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.mktemp("xdg")))
    monkeypatch.delenv("STARCOMPACTOR_MASKING_KEY", raising=False)


@pytest.fixture(scope="session")
def s3_endpoint():
    """A local S3 (moto's server mode on 127.0.0.1) for the session; tests use their own buckets."""
    moto_server = pytest.importorskip("moto.server")
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()
