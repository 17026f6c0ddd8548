"""Remote dumps for real: an S3 bucket served by moto's server and a plain HTTP server, both on 127.0.0.1."""

from __future__ import annotations

import functools
import http.server
import threading

import pytest

from starcompactor.dump import DumpReader, read_info
from starcompactor.errors import TruncatedDumpError
from tests.support.paths import READER_FIXTURES
from tests.support.s3 import s3_client

READER = READER_FIXTURES
NOVA = [("nova", "compute_nodes"), ("nova", "services")]


def _counts(reader: DumpReader) -> dict:
    counts: dict = {}
    for db, table, _ in reader:
        counts[(db, table)] = counts.get((db, table), 0) + 1
    return counts


@pytest.fixture(scope="module")
def s3(s3_endpoint):
    client = s3_client(s3_endpoint)
    client.create_bucket(Bucket="backups")
    for name in (
        "all-mariadb.sql.gz",
        "all-mysql8.sql.bz2",
        "nova-single.sql.zst",
        "truncated-in-table.sql.gz",
    ):
        # names lie about the compression on purpose: the content decides
        client.put_object(Bucket="backups", Key=f"nightly/{name}.bin", Body=(READER / name).read_bytes())
    return client


@pytest.mark.parametrize("name", ["all-mariadb.sql.gz", "all-mysql8.sql.bz2", "nova-single.sql.zst"])
def test_s3(s3, name):
    reader = DumpReader(f"s3://backups/nightly/{name}.bin", NOVA, transport_params={"client": s3})
    assert _counts(reader) == {("nova", "compute_nodes"): 13, ("nova", "services"): 14}
    assert reader.info.path == f"s3://backups/nightly/{name}.bin"
    local = DumpReader(READER / name, NOVA)
    _counts(local)
    assert reader.info.compression == local.info.compression
    assert reader.info.bytes_read == local.info.bytes_read


def test_s3_truncated(s3):
    with pytest.raises(TruncatedDumpError, match="s3://backups/nightly/truncated-in-table"):
        list(
            DumpReader(
                "s3://backups/nightly/truncated-in-table.sql.gz.bin", NOVA, transport_params={"client": s3}
            )
        )


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep the test output clean
        pass


@pytest.fixture(scope="module")
def http_url():
    handler = functools.partial(_Quiet, directory=str(READER))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("name", ["all-mariadb.sql.gz", "all-mysql8-crlf.sql.xz", "nova-compact.sql"])
def test_http(http_url, name):
    reader = DumpReader(f"{http_url}/{name}", NOVA)
    counts = _counts(reader)
    assert sorted(counts.values()) == [13, 14]
    assert reader.info.compression == {"gz": "gzip", "xz": "xz", "sql": "plain"}[name.rsplit(".", 1)[1]]


def test_http_metadata_of_whole_dump(http_url):
    info = read_info(f"{http_url}/all-mysql8.sql.bz2")
    assert info.flavor == "MySQL" and info.ended_cleanly is True
    assert info.databases == ["keystone", "nova", "nova_cell0", "sc_extra"]
