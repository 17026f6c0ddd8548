"""Extension points share one shape (a named registry): registering, listing and unknown names."""

from __future__ import annotations

import datetime as dt
import gzip

import pytest

from starcompactor.config import check_instance_type
from starcompactor.dump import DumpReader, supported_compressions
from starcompactor.dump.stream import DECOMPRESSORS, register_decompressor, sniff_compression
from starcompactor.errors import ConfigError
from starcompactor.machines import make_machine_trace
from starcompactor.machines.backups import default_name_pattern, list_entries, supported_stores
from starcompactor.parallel import open_executor, supported_executors
from starcompactor.registry import Registry
from starcompactor.traces import default_output, open_writer, supported_formats
from starcompactor.traces.writers import WRITERS, CsvWriter, register_writer

EPOCH = dt.datetime(2015, 9, 17)
DUMP = b"-- MariaDB dump 10.19  Distrib 10.11.6-MariaDB, for debian-linux-gnu (x86_64)\n" + (
    b"USE `nova`;\nCREATE TABLE `t` (\n  `id` int(11) NOT NULL\n);\nINSERT INTO `t` VALUES (1),(2);\n"
    b"-- Dump completed on 2024-01-05  3:00:00\n"
)


def test_registry_lists_refuses_duplicates_and_names_what_it_knows():
    registry: Registry[int] = Registry("colour", "or paint your own")
    registry.register("red", 1)
    registry.register("blue", 2)
    assert registry.names() == ("red", "blue") and "red" in registry and registry.find("green") is None
    with pytest.raises(ValueError, match="already registered"):
        registry.register("red", 3)
    registry.register("red", 3, replace=True)
    assert registry.get("red") == 3
    with pytest.raises(ValueError, match="lowercase"):
        registry.register("Red", 4)
    with pytest.raises(
        ConfigError, match=r"unknown colour 'green' \(choose from red, blue; or paint your own\)"
    ):
        registry.get("green")


def test_a_registered_compression_is_sniffed_read_and_selected_by_suffix(tmp_path, monkeypatch):
    """A compression the reader did not know is one call: magic, opener, suffixes."""
    monkeypatch.setattr(DECOMPRESSORS, "_entries", dict(DECOMPRESSORS._entries))
    register_decompressor("rot", b"ROT1", lambda raw: _Unrot(raw), ("rot",))
    path = tmp_path / "dump.sql.rot"
    path.write_bytes(b"ROT1" + bytes((b + 1) % 256 for b in DUMP))
    assert sniff_compression(path.read_bytes()[:8]) == "rot" and "rot" in supported_compressions()
    assert [row["id"] for _, _, row in DumpReader(str(path), [("nova", "t")])] == [1, 2]
    import re

    assert re.match(default_name_pattern(), "mysqldump-2024-01-05.sql.rot")
    with pytest.raises(ValueError, match="too short"):
        register_decompressor("one", b"x", lambda raw: raw)


class _Unrot:
    def __init__(self, raw):
        raw.read(4)
        self._raw = raw

    def read(self, size):
        return bytes((b - 1) % 256 for b in self._raw.read(size))

    def close(self):
        self._raw.close()


def test_formats_and_default_names_come_from_the_writers(tmp_path, monkeypatch):
    assert supported_formats() == ("csv", "legacy-csv", "jsonl", "parquet")
    assert default_output("machine", "csv") == "machine_events.csv"
    assert default_output("instance", "parquet") == "instance_events.parquet"
    monkeypatch.setattr(WRITERS, "_entries", dict(WRITERS._entries))

    class TsvWriter(CsvWriter):
        format_name = "tsv"
        suffix = ".tsv"

    register_writer(TsvWriter)
    assert "tsv" in supported_formats() and default_output("machine", "tsv") == "machine_events.tsv"
    with open_writer(str(tmp_path / "t.tsv"), "machine", "tsv", EPOCH) as writer:
        assert isinstance(writer, TsvWriter)


def test_unknown_names_are_the_same_config_error_everywhere(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown output format 'xml' \(choose from csv, legacy-csv"):
        open_writer(str(tmp_path / "x"), "machine", "xml", EPOCH)
    with pytest.raises(ConfigError, match=r"unknown instance type 'kvm' \(choose from vm, baremetal\)"):
        check_instance_type("kvm")
    with pytest.raises(ConfigError, match=r"unknown instance type 'kvm'"):
        make_machine_trace(str(tmp_path), str(tmp_path / "o.csv"), instance_type="kvm")
    with pytest.raises(ConfigError, match=r"unknown executor 'mpi'"):
        open_executor("mpi://x")
    assert "process" in supported_executors() and "dask" in supported_executors()
    assert supported_stores() == ("s3",)
    with pytest.raises(ConfigError, match=r"cannot list a gs:// backup directory \(listable: local, s3://\)"):
        list_entries("gs://bucket/prefix")
    assert not list(tmp_path.glob("o.csv*"))


def test_gzip_is_registered_with_its_suffixes():
    assert DECOMPRESSORS.get("gzip").suffixes == ("gz", "gzip")
    assert sniff_compression(gzip.compress(b"x")) == "gzip"
