"""A fake MySQL server that speaks just enough of the client/server protocol to test how a client behaves
when the server misbehaves: it greets, offers TLS or not, asks for ``mysql_clear_password`` through an
auth switch, or stalls (before greeting, or when a SELECT arrives).

It listens on 127.0.0.1 (a free port) or on a Unix socket, serves each connection in a thread of its
own, and records every byte a client sent it (after TLS, if TLS was used), so that a test can check
what reached the server: a password, a query. Run as a script (``python -m tests.support.fake_mysql
--socket PATH``) it serves a socket in a process of its own, e.g. as another user.
"""

from __future__ import annotations

import argparse
import os
import socket
import ssl
import struct
import threading
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

# capability flags (MySQL protocol)
LONG_PASSWORD = 0x1
CONNECT_WITH_DB = 0x8
PROTOCOL_41 = 0x200
SSL = 0x800
TRANSACTIONS = 0x2000
SECURE_CONNECTION = 0x8000
MULTI_RESULTS = 0x20000
PLUGIN_AUTH = 0x80000
STATUS_AUTOCOMMIT = 0x0002

SALT = b"abcdefghijklmnopqrst"  # 20 bytes, as a real server sends


@dataclass
class Received:
    """What one connection sent and how it went."""

    data: bytearray = field(default_factory=bytearray)
    tls: bool = False
    queries: List[bytes] = field(default_factory=list)


class FakeMySQL:
    """Start with :meth:`start`, stop with :meth:`stop`.

    ``auth``: ``"ok"`` (any credentials are accepted); ``"clear"``, ``"dialog"``, ``"sha256"`` (an auth
    switch to ``mysql_clear_password``, PAM's ``dialog`` or ``sha256_password``, then accept);
    ``"sha256-greeting"`` (the greeting names ``sha256_password``, then the same switch); ``"sha2-full"``
    (the greeting names ``caching_sha2_password`` and the server asks for full authentication). ``tls``: ``(certfile, keyfile)`` to offer TLS, else it is not offered. ``stall``:
    ``"greeting"`` (never greet), ``"select"`` (never answer a SELECT) or None.
    """

    def __init__(
        self,
        *,
        auth: str = "ok",
        tls: Optional[Tuple[str, str]] = None,
        stall: Optional[str] = None,
        unix_socket: Optional[str] = None,
    ) -> None:
        self.auth = auth
        self.tls = tls
        self.stall = stall
        self.unix_socket = unix_socket
        self.connections: List[Received] = []
        self._stop = threading.Event()
        if unix_socket:
            self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self._listener.bind(unix_socket)
        else:
            self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(8)
        self._listener.settimeout(0.2)
        self.port = None if unix_socket else self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._open: List[socket.socket] = []

    def start(self) -> FakeMySQL:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        for conn in self._open:
            try:
                conn.close()
            except OSError:
                pass
        self._listener.close()

    def __enter__(self) -> FakeMySQL:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def received(self) -> bytes:
        """Every byte every client sent, in order."""
        return b"".join(bytes(c.data) for c in self.connections)

    # -- serving ------------------------------------------------------------------------------------

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self._open.append(conn)
            record = Received()
            self.connections.append(record)
            threading.Thread(target=self._serve_one, args=(conn, record), daemon=True).start()

    def _serve_one(self, conn: socket.socket, record: Received) -> None:
        try:
            self._session(conn, record)
        except (OSError, ConnectionError, ssl.SSLError, IndexError, struct.error):
            pass
        finally:
            if self.stall is None:
                try:
                    conn.close()
                except OSError:
                    pass

    def _wait(self) -> None:
        """Say nothing until the test ends (the connection stays open: a server that stopped talking)."""
        self._stop.wait()

    def _session(self, conn: socket.socket, record: Received) -> None:
        conn.settimeout(30)
        if self.stall == "greeting":
            self._wait()
            return
        reader = _Packets(conn, record)
        reader.send(0, self._greeting())
        seq, payload = reader.read()
        flags = struct.unpack("<I", payload[:4])[0]
        if flags & SSL and self.tls and len(payload) == 32:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*self.tls)
            reader.wrap(context.wrap_socket(conn, server_side=True))
            record.tls = True
            seq, payload = reader.read()
        seq += 1
        switch = _SWITCHES.get(self.auth)
        if switch is not None:
            reader.send(seq, switch)
            seq, payload = reader.read()
            seq += 1
        elif self.auth == "sha2-full":
            reader.send(seq, b"\x01\x04")  # caching_sha2_password: "full authentication needed"
            seq, payload = reader.read()
            seq += 1
            if payload == b"\x02":  # the client asks for the server's public key
                reader.send(seq, b"\x01-----BEGIN PUBLIC KEY-----\nnot a key\n-----END PUBLIC KEY-----\n")
                seq, payload = reader.read()
                seq += 1
        reader.send(seq, _ok())
        while True:
            seq, payload = reader.read()
            command, body = payload[:1], payload[1:]
            if command == b"\x01":  # COM_QUIT
                return
            if command != b"\x03":  # anything but COM_QUERY
                reader.send(1, _ok())
                continue
            record.queries.append(body)
            if body.lstrip().upper().startswith(b"SELECT") and self.stall == "select":
                self._wait()
                return
            reader.send(1, _ok())

    def _greeting(self) -> bytes:
        caps = (
            LONG_PASSWORD
            | CONNECT_WITH_DB
            | PROTOCOL_41
            | TRANSACTIONS
            | SECURE_CONNECTION
            | MULTI_RESULTS
            | PLUGIN_AUTH
            | (SSL if self.tls else 0)
        )
        return (
            b"\x0a"
            + b"5.7.99-fake\x00"
            + struct.pack("<I", 7)
            + SALT[:8]
            + b"\x00"
            + struct.pack("<H", caps & 0xFFFF)
            + b"\x2d"  # utf8mb4_general_ci
            + struct.pack("<H", STATUS_AUTOCOMMIT)
            + struct.pack("<H", caps >> 16)
            + bytes([len(SALT) + 1])
            + b"\x00" * 10
            + SALT[8:]
            + b"\x00"
            + _GREETING_PLUGINS.get(self.auth, b"mysql_native_password")
            + b"\x00"
        )


#: auth → the auth switch request sent after the client's login packet.
_SWITCHES = {
    "clear": b"\xfemysql_clear_password\x00",
    "dialog": b"\xfedialog\x00\x05Password: ",  # PAM's prompt: last question, answer not echoed
    "sha256": b"\xfesha256_password\x00" + SALT + b"\x00",
    "sha256-greeting": b"\xfesha256_password\x00" + SALT + b"\x00",
}

#: auth → the plugin the greeting names (else mysql_native_password).
_GREETING_PLUGINS = {"sha2-full": b"caching_sha2_password", "sha256-greeting": b"sha256_password"}


def _ok() -> bytes:
    return b"\x00\x00\x00" + struct.pack("<HH", STATUS_AUTOCOMMIT, 0)


class _Packets:
    """Reads and writes MySQL packets on a socket, recording what was read."""

    def __init__(self, conn: socket.socket, record: Received) -> None:
        self.conn = conn
        self.record = record

    def wrap(self, conn: socket.socket) -> None:
        self.conn = conn

    def _exactly(self, n: int) -> bytes:
        data = bytearray()
        while len(data) < n:
            chunk = self.conn.recv(n - len(data))
            if not chunk:
                raise ConnectionError("client closed the connection")
            data += chunk
        self.record.data += data
        return bytes(data)

    def read(self) -> Tuple[int, bytes]:
        header = self._exactly(4)
        length = header[0] | header[1] << 8 | header[2] << 16
        return header[3], self._exactly(length)

    def send(self, seq: int, payload: bytes) -> None:
        self.conn.sendall(struct.pack("<I", len(payload))[:3] + bytes([seq & 0xFF]) + payload)


def main() -> None:
    """Serve a Unix socket until killed; what clients sent is appended to ``--record``."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--socket", required=True)
    parser.add_argument("--auth", default="ok")
    parser.add_argument("--record", required=True)
    args = parser.parse_args()
    server = FakeMySQL(auth=args.auth, unix_socket=args.socket).start()
    print("ready", flush=True)
    try:
        while True:
            threading.Event().wait(0.2)
            with open(args.record, "wb") as handle:
                handle.write(server.received())
    finally:
        server.stop()
        os.unlink(args.socket)


if __name__ == "__main__":
    main()
