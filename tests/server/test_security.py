"""What a trusted client refuses, and StarCompactor with it: the password in clear to an unknown server,
plain text where the option file demands TLS, and a server that stops talking.

Misbehaving servers are :class:`tests.support.fake_mysql.FakeMySQL` (the real protocol, on 127.0.0.1 or
a private socket); the positive TLS cases use the real MariaDB with a self-signed certificate.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from starcompactor.errors import ConfigError, DatabaseError
from starcompactor.server import settings as settings_module
from starcompactor.server.connect import _peer_uid, connect
from starcompactor.server.settings import DbSettings, resolve_settings, tls_mode
from tests.server.conftest import DB
from tests.support.fake_mysql import FakeMySQL
from tests.support.paths import REPO

PASSWORD = "Sup3r-s3cret-operator-pw"


def option_file(tmp_path: Path, port: int, *lines: str, user: str = "op", password: str = PASSWORD) -> str:
    path = tmp_path / "client.cnf"
    body = "\n".join(lines)
    path.write_text(f"[client]\nhost=127.0.0.1\nport={port}\nuser={user}\npassword={password}\n{body}\n")
    return str(path)


def one_line_error(info) -> str:
    text = str(info.value)
    assert "\n" not in text
    return text


# -- 1. the password in clear ---------------------------------------------------------------------------


def test_clear_text_password_is_refused_over_plain_tcp(tmp_path):
    with FakeMySQL(auth="clear") as server:
        settings = resolve_settings(defaults_file=option_file(tmp_path, server.port))
        with pytest.raises(DatabaseError) as info:
            connect(settings, "nova")
        received = server.received()
    text = one_line_error(info)
    assert text.startswith(
        f"MySQL server 127.0.0.1:{server.port} database nova: refused to send the password"
    )
    assert "mysql_clear_password" in text and PASSWORD not in text
    assert PASSWORD.encode() not in received
    assert server.connections[0].queries == []


def test_clear_text_password_is_refused_over_unverified_tls(tmp_path, certificate):
    """ssl-mode=REQUIRED encrypts, but anyone in between can present a certificate: still refused."""
    cert, key = certificate
    with FakeMySQL(auth="clear", tls=(str(cert), str(key))) as server:
        settings = resolve_settings(defaults_file=option_file(tmp_path, server.port, "ssl-mode=REQUIRED"))
        with pytest.raises(DatabaseError, match="refused to send the password"):
            connect(settings, "nova")
        assert server.connections[0].tls  # it was TLS, and still nothing was sent
        assert PASSWORD.encode() not in server.received()


@pytest.mark.parametrize(
    ("auth", "over_tls"),
    [
        ("dialog", False),
        ("sha256", True),
        ("sha256-greeting", True),
        ("sha2-full", False),
        ("sha2-full", True),
    ],
)
def test_other_exchanges_that_reveal_the_password_are_refused(tmp_path, certificate, auth, over_tls):
    """PAM's dialog (the password in clear), sha256_password and the full caching_sha2_password login
    (the password in clear over TLS, else encrypted with a key the server chose)."""
    cert, key = certificate
    with FakeMySQL(auth=auth, tls=(str(cert), str(key)) if over_tls else None) as server:
        lines = ("ssl-mode=REQUIRED",) if over_tls else ()
        settings = resolve_settings(defaults_file=option_file(tmp_path, server.port, *lines))
        with pytest.raises(DatabaseError) as info:
            connect(settings, "nova")
        assert server.connections[0].tls == over_tls
        received = server.received()
    assert "refused to send the password" in one_line_error(info)
    assert PASSWORD.encode() not in received


def test_clear_text_password_goes_to_a_verified_tls_server(tmp_path, certificate):
    cert, key = certificate
    with FakeMySQL(auth="clear", tls=(str(cert), str(key))) as server:
        cnf = option_file(tmp_path, server.port, f"ssl-ca={cert}", "ssl-mode=VERIFY_IDENTITY")
        conn = connect(resolve_settings(defaults_file=cnf), "nova")
        conn.close()
        record = server.connections[0]
        assert record.tls and PASSWORD.encode() + b"\0" in bytes(record.data)


def _world_traversable_dir() -> Path:
    base = Path(tempfile.mkdtemp(prefix="sc-peer-"))
    base.chmod(0o755)
    return base


def _python_for(uid: int) -> str:
    """An interpreter another user may run (ours may live under a private home)."""
    for candidate in (
        sys.executable,
        os.path.realpath(sys.executable),
        shutil.which("python3"),
        "/usr/bin/python3",
    ):
        try:
            if candidate and subprocess.run([candidate, "-c", "pass"], user=uid, check=False).returncode == 0:
                return candidate
        except OSError:
            continue
    pytest.skip("no Python interpreter that another user may run")


@pytest.mark.skipif(os.geteuid() != 0, reason="serving a socket as another user needs root")
def test_clear_text_password_is_refused_on_a_socket_served_by_another_user():
    """A local user who creates a socket where we look receives nothing: the kernel names the peer."""
    base = _world_traversable_dir()
    try:
        script = base / "fake_mysql.py"  # the repository may sit in a directory only we can read
        shutil.copy(REPO / "tests" / "support" / "fake_mysql.py", script)
        run = base / "run"
        run.mkdir()
        os.chown(run, 65534, 65534)
        sock, record = run / "mysql.sock", run / "received"
        server = subprocess.Popen(
            [
                _python_for(65534),
                str(script),
                "--socket",
                str(sock),
                "--auth",
                "clear",
                "--record",
                str(record),
            ],
            cwd=base,
            user=65534,
            group=65534,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            assert server.stdout.readline().strip() == b"ready", server.stderr.read()
            settings = DbSettings(socket=str(sock), user="op", password=PASSWORD, connect_timeout=5)
            with pytest.raises(DatabaseError, match="refused to send the password"):
                connect(settings, "nova")
            deadline = time.monotonic() + 10  # the server writes what it received every 0.2 s
            while not (record.exists() and record.read_bytes()) and time.monotonic() < deadline:
                time.sleep(0.1)
            assert record.read_bytes()  # it heard the login, not the password
            assert PASSWORD.encode() not in record.read_bytes()
        finally:
            server.terminate()
            server.wait(10)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_default_sockets_are_never_in_a_world_writable_directory(tmp_path, monkeypatch):
    assert all(not path.startswith("/tmp/") for path in settings_module.DEFAULT_SOCKETS)
    open_dir = tmp_path / "tmp"
    open_dir.mkdir()
    open_dir.chmod(0o1777)
    planted = open_dir / "mysql.sock"
    planted.write_text("")
    monkeypatch.setattr(settings_module, "DEFAULT_SOCKETS", (str(planted),))
    assert DbSettings().address() == (None, "localhost", 3306)
    open_dir.chmod(0o755)  # below /tmp, itself open to all: still not taken
    assert DbSettings().address() == (None, "localhost", 3306)
    assert DbSettings(socket=str(planted)).address()[0] == str(planted)  # named by the operator: used


# -- 2. TLS as the option file says ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lines", "mode"),
    [
        ((), "PREFERRED"),
        (("ssl",), "REQUIRED"),
        (("ssl=1",), "REQUIRED"),
        (("ssl-cert=/c.pem", "ssl-key=/k.pem"), "REQUIRED"),
        (("ssl-ca=/ca.pem",), "VERIFY_CA"),
        (("ssl-capath=/etc/ssl/certs",), "VERIFY_CA"),
        (("ssl-verify-server-cert",), "VERIFY_IDENTITY"),
        (("ssl-ca=/ca.pem", "ssl-verify-server-cert"), "VERIFY_IDENTITY"),
        (("ssl-mode=required",), "REQUIRED"),
        (("ssl-mode=VERIFY_CA",), "VERIFY_CA"),
        (("ssl_mode = verify_identity",), "VERIFY_IDENTITY"),
        (("ssl-mode=PREFERRED", "ssl-verify-server-cert"), "VERIFY_IDENTITY"),
        (("ssl-mode=DISABLED",), "DISABLED"),
        (("skip-ssl",), "DISABLED"),
        (("ssl=0",), "DISABLED"),
        (("ssl-ca=/ca.pem", "ssl-verify-server-cert=0"), "VERIFY_CA"),
        (("loose-ssl-mode=REQUIRED",), "REQUIRED"),
    ],
)
def test_tls_mode_is_read_as_the_mysql_client_reads_it(tmp_path, lines, mode):
    settings = resolve_settings(defaults_file=option_file(tmp_path, 3306, *lines))
    assert settings.ssl_mode == mode


def test_timeouts_come_from_option_files_and_flags(tmp_path):
    cnf = option_file(tmp_path, 3306, "connect-timeout=3")
    assert resolve_settings(defaults_file=cnf).connect_timeout == 3
    assert resolve_settings(defaults_file=cnf, connect_timeout=1.5, read_timeout=7).connect_timeout == 1.5
    assert resolve_settings(defaults_file=cnf, read_timeout=7).read_timeout == 7
    with pytest.raises(ConfigError, match="--read-timeout must be more than 0"):
        resolve_settings(defaults_file=cnf, read_timeout=-1)


def test_contradictory_or_unknown_tls_options_are_one_line_errors(tmp_path):
    with pytest.raises(ConfigError, match="ssl-mode 'SOMETIMES' is not one of"):
        resolve_settings(defaults_file=option_file(tmp_path, 3306, "ssl-mode=SOMETIMES"))
    with pytest.raises(ConfigError, match="contradicts"):
        tls_mode({"skip-ssl": None, "ssl-verify-server-cert": None})
    with pytest.raises(ConfigError, match="cannot use the TLS files"):
        connect(
            DbSettings(host="127.0.0.1", ssl={"ca": str(tmp_path / "nope.pem")}, ssl_mode="VERIFY_CA"), "x"
        )


@pytest.mark.parametrize(
    "lines", [("ssl",), ("ssl-mode=REQUIRED",), ("ssl-ca={cert}",), ("ssl-verify-server-cert",)]
)
def test_tls_demanded_but_not_offered_stops_before_any_credential(tmp_path, certificate, lines):
    """The file demands TLS, the server does not offer it: one line, and the server heard nothing but
    the end of the connection (no user name, no password, no query)."""
    cert, _ = certificate
    with FakeMySQL(auth="ok") as server:
        cnf = option_file(tmp_path, server.port, *(line.format(cert=cert) for line in lines))
        with pytest.raises(DatabaseError) as info:
            connect(resolve_settings(defaults_file=cnf), "nova")
        time.sleep(0.1)
        received = server.received()
    assert "SSL is required but the server doesn't support it" in one_line_error(info)
    assert b"op" not in received and PASSWORD.encode() not in received
    assert server.connections[0].queries == []


def test_tls_modes_against_the_real_server(tls_server, tmp_path, certificate):
    """REQUIRED encrypts without checking; VERIFY_IDENTITY checks against the CA; a wrong CA is refused;
    skip-ssl really sends plain text (the server refuses its REQUIRE SSL user)."""
    _, port, cert = tls_server

    def cipher(*lines: str) -> str:
        cnf = option_file(tmp_path, port, *lines, user="tls", password="pw")
        conn = connect(resolve_settings(defaults_file=cnf), DB, unbuffered=False)
        with conn.cursor() as cur:
            cur.execute("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
            value = cur.fetchall()[0][1]
        conn.close()
        return value

    assert cipher("ssl-mode=REQUIRED")
    assert cipher(f"ssl-ca={cert}", "ssl-mode=VERIFY_IDENTITY")
    other = tmp_path / "other"
    other.mkdir()
    from tests.support.tls import self_signed

    wrong_ca, _ = self_signed(other)
    with pytest.raises(DatabaseError, match="CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
        cipher(f"ssl-ca={wrong_ca}", "ssl-mode=VERIFY_CA")
    with pytest.raises(DatabaseError, match="Access denied"):
        cipher("skip-ssl")


# -- 3. timeouts and SIGTERM ----------------------------------------------------------------------------


def test_a_server_that_never_greets_ends_with_the_connect_timeout():
    with FakeMySQL(stall="greeting") as server:
        settings = DbSettings(host="127.0.0.1", port=server.port, user="op", connect_timeout=0.5)
        with pytest.raises(DatabaseError) as info:
            connect(settings, "nova")
    text = one_line_error(info)
    assert "timed out" in text and "no answer within 0.5 s (--connect-timeout)" in text


def instances_cli(tmp_path: Path, port: int, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "xdg"), "TQDM_DISABLE": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "starcompactor", "instances", "--source", "db", "--no-defaults"]
        + ["--db-host", "127.0.0.1", "--db-port", str(port), "--db-user", "op", "--workers", "1"]
        + [*extra, str(tmp_path / "out" / "trace.csv")],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_a_server_that_stops_talking_ends_the_run_with_one_line(tmp_path):
    (tmp_path / "out").mkdir()
    with FakeMySQL(stall="select") as server:
        run = instances_cli(tmp_path, server.port, "--read-timeout", "1")
        try:
            _, err = run.communicate(timeout=120)
        finally:
            run.kill()
        assert any(q.lstrip().startswith(b"SELECT") for q in server.connections[0].queries)
    lines = [line for line in err.splitlines() if "error" in line]
    assert run.returncode == 1 and len(lines) == 1, err
    assert "Traceback" not in err and "--read-timeout" in lines[0] and "1 s" in lines[0]
    assert list((tmp_path / "out").iterdir()) == []


def test_sigterm_removes_the_temporary_output_and_exits_143(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "trace.csv").write_text("the previous trace\n")
    with FakeMySQL(stall="select") as server:
        run = instances_cli(tmp_path, server.port)
        try:
            deadline = time.monotonic() + 60
            while not any(p.name.endswith(".tmp") for p in out.iterdir()) and time.monotonic() < deadline:
                assert run.poll() is None, run.communicate()
                time.sleep(0.05)
            run.send_signal(signal.SIGTERM)
            _, err = run.communicate(timeout=60)
        finally:
            run.kill()
    assert run.returncode == 143, err
    assert "starcompactor: terminated" in err and "Traceback" not in err
    assert [p.name for p in out.iterdir()] == ["trace.csv"]
    assert (out / "trace.csv").read_text() == "the previous trace\n"


def test_peer_check_is_the_kernels_answer(tmp_path):
    """The Unix-socket rule reads SO_PEERCRED: a server run by this user is trusted, as root's is."""
    sock = tmp_path / "s.sock"
    with FakeMySQL(unix_socket=str(sock)):
        import socket

        client = socket.socket(socket.AF_UNIX)
        client.connect(str(sock))
        try:
            assert client.recv(4)  # the greeting
            assert _peer_uid(client, None) == os.getuid()
        finally:
            client.close()
