"""Fixtures of the live-server tests: a second MariaDB that speaks TLS on 127.0.0.1."""

from __future__ import annotations

import socket

import pytest

from tests.support.mariadb import MariaDB
from tests.support.tls import self_signed

#: The database and table the TLS server holds (those of test_packets).
DB = "mr_rows"
TABLE = f"""
CREATE TABLE `{DB}`.t (
  id INT PRIMARY KEY,
  s VARCHAR(300) CHARACTER SET utf8mb4,
  b VARBINARY(300),
  long_text MEDIUMTEXT CHARACTER SET utf8mb4,
  n BIGINT,
  d DATETIME,
  blob_ LONGBLOB
)"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def certificate(tmp_path_factory):
    """A self-signed certificate (and key) for 127.0.0.1."""
    made = self_signed(tmp_path_factory.mktemp("cert"))
    if made is None:
        pytest.skip("no openssl to make a certificate")
    return made


@pytest.fixture(scope="session")
def tls_server(mariadb, certificate, tmp_path_factory):
    """A second MariaDB listening on 127.0.0.1 with a self-signed certificate and a user that needs TLS."""
    cert, key = certificate
    base = tmp_path_factory.mktemp("tls")
    port = free_port()
    server = MariaDB(
        str(base / "db"),
        server_args=[f"--port={port}", f"--ssl-cert={cert}", f"--ssl-key={key}", f"--ssl-ca={cert}"],
    ).start()
    server.sql(
        f"CREATE DATABASE `{DB}`; {TABLE}; CREATE USER 'tls'@'127.0.0.1' IDENTIFIED BY 'pw' REQUIRE SSL; "
        f"GRANT ALL ON `{DB}`.* TO 'tls'@'127.0.0.1';"
    )
    yield server, port, cert
    server.stop()
