"""``--cache``: a re-run reads only new or changed dumps and writes the trace a cold run writes.

The safety cases: a changed configuration, a truncated or corrupt entry, two runs at once, a changed
dump, and dumps on S3 (the local server of the ``s3_endpoint`` fixture).
"""

from __future__ import annotations

import gzip
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from starcompactor.config import Config
from starcompactor.dump.cache import DumpCache, dump_identity, entry_key
from starcompactor.machines import make_machine_trace
from tests.support.paths import REPO
from tests.support.s3 import s3_client, use_s3_endpoint

EXAMPLES = REPO / "examples" / "chameleon-kvm"


@pytest.fixture()
def history(tmp_path) -> Path:
    target = tmp_path / "dumps"
    shutil.copytree(EXAMPLES, target)
    return target


def run(history: Path, out: Path, cache: Path, **options):
    return make_machine_trace(str(history), str(out), cache=str(cache), **options)


def test_a_rerun_reads_only_the_new_dump_and_writes_the_same_trace(history, tmp_path):
    newest = sorted(history.iterdir())[-1]
    held_back = tmp_path / newest.name
    newest.rename(held_back)
    cache = tmp_path / "cache"
    first = run(history, tmp_path / "first.csv", cache)
    assert first.manifest["cache"]["hits"] == 0
    held_back.rename(newest)
    again = run(history, tmp_path / "again.csv", cache)
    cold = make_machine_trace(str(history), str(tmp_path / "cold.csv"))
    assert again.manifest["cache"] == {"directory": str(cache), "hits": 8, "misses": 1}
    assert (tmp_path / "again.csv").read_bytes() == (tmp_path / "cold.csv").read_bytes()
    assert again.manifest["inputs"] == cold.manifest["inputs"]


def test_a_changed_config_does_not_use_old_entries(history, tmp_path):
    cache = tmp_path / "cache"
    run(history, tmp_path / "a.csv", cache)
    config = Config()
    config.hypervisor_hostname_regex = r"(\w)\w*-(\d+)"
    config.rack_extract_group = 1
    changed = run(history, tmp_path / "b.csv", cache, config=config)
    assert changed.manifest["cache"]["hits"] == 0
    cold = make_machine_trace(str(history), str(tmp_path / "cold.csv"), config=config)
    assert (tmp_path / "b.csv").read_bytes() == (tmp_path / "cold.csv").read_bytes()
    assert (tmp_path / "b.csv").read_bytes() != (tmp_path / "a.csv").read_bytes()
    assert cold.event_count


def test_a_changed_dump_is_read_again(history, tmp_path):
    cache = tmp_path / "cache"
    run(history, tmp_path / "a.csv", cache)
    victim = sorted(history.iterdir())[3]
    stat = victim.stat()
    # same size and modification time, other content in the first MiB: the edge hash tells
    data = bytearray(gzip.decompress(victim.read_bytes()))
    replaced = gzip.compress(bytes(data), 9)
    victim.write_bytes(replaced)
    os.utime(victim, (stat.st_atime, stat.st_mtime))
    again = run(history, tmp_path / "b.csv", cache)
    assert again.manifest["cache"]["misses"] == 1


@pytest.mark.parametrize("damage", ["truncate", "flip", "garbage", "other-key"])
def test_a_damaged_entry_is_ignored_said_once_and_rebuilt(history, tmp_path, caplog, damage):
    cache = tmp_path / "cache"
    run(history, tmp_path / "a.csv", cache)
    entries = sorted((cache / "snapshot").glob("*.json"))
    assert len(entries) == 9
    victim = entries[0]
    data = victim.read_bytes()
    if damage == "truncate":
        victim.write_bytes(data[: len(data) // 2])
    elif damage == "flip":
        i = len(data) // 2
        victim.write_bytes(data[:i] + bytes([data[i] ^ 0x01]) + data[i + 1 :])
    elif damage == "garbage":
        victim.write_bytes(b"\x80\x04\x95 not json at all")
    else:
        other = entries[1].read_bytes()
        victim.write_bytes(other)
    with caplog.at_level(logging.WARNING, logger="starcompactor"):
        again = run(history, tmp_path / "b.csv", cache)
    assert again.manifest["cache"] == {"directory": str(cache), "hits": 8, "misses": 1}
    assert (tmp_path / "b.csv").read_bytes() == (tmp_path / "a.csv").read_bytes()
    warnings = [r for r in caplog.records if "unusable" in r.getMessage()]
    assert len(warnings) == 1 and victim.name in warnings[0].getMessage()
    third = run(history, tmp_path / "c.csv", cache)  # rebuilt
    assert third.manifest["cache"]["hits"] == 9


def test_two_runs_at_once_share_a_cache(history, tmp_path):
    cache = tmp_path / "cache"
    env = dict(os.environ, TQDM_DISABLE="1", STARCOMPACTOR_MASKING_KEY="k")
    cmd = [
        sys.executable,
        "-m",
        "starcompactor",
        "machines",
        "--backup-dir",
        str(history),
        "--cache",
        str(cache),
        "-q",
    ]
    procs = [
        subprocess.Popen([*cmd, "--workers", "1", str(tmp_path / f"run{i}.csv")], env=env, cwd=tmp_path)
        for i in range(3)
    ]
    assert [p.wait(120) for p in procs] == [0, 0, 0]
    subprocess.run([*cmd, str(tmp_path / "cold.csv")], env=dict(env), check=True, cwd=tmp_path)
    cold = make_machine_trace(str(history), str(tmp_path / "nocache.csv"))
    outputs = {(tmp_path / f"run{i}.csv").read_bytes() for i in range(3)} | {
        (tmp_path / "cold.csv").read_bytes()
    }
    assert len(outputs) == 1
    assert not list((cache / "snapshot").glob(".*.tmp"))  # no temporary file left behind
    assert cold.event_count
    for entry in (cache / "snapshot").glob("*.json"):
        assert DumpCache(str(cache)).get("snapshot", entry.stem) is not None


def test_entries_are_json_never_pickle(history, tmp_path):
    cache = tmp_path / "cache"
    run(history, tmp_path / "a.csv", cache)
    for entry in (cache / "snapshot").glob("*.json"):
        head = entry.read_bytes().split(b"\n", 1)[0]
        assert head.startswith(b'{"format":"starcompactor-cache"')


def test_the_identity_reads_the_ends_only(tmp_path):
    big = tmp_path / "big.sql"
    big.write_bytes(b"a" * (3 << 20))
    before = dump_identity(str(big), big.stat().st_size, "t")
    with open(big, "r+b") as f:  # the middle changes: not seen (a dump is written once)
        f.seek(3 << 19)
        f.write(b"b")
    assert dump_identity(str(big), big.stat().st_size, "t") == before
    with open(big, "r+b") as f:
        f.seek(-10, 2)
        f.write(b"b")
    assert dump_identity(str(big), big.stat().st_size, "t") != before
    assert dump_identity(str(big), big.stat().st_size, "other stamp") != before
    assert entry_key("x", 1) != entry_key("x", 2)


def test_s3_dumps_are_cached_by_etag(history, tmp_path, s3_endpoint, monkeypatch):
    client = s3_client(s3_endpoint)
    client.create_bucket(Bucket="cache-dumps")
    for path in sorted(history.iterdir()):
        client.upload_file(str(path), "cache-dumps", f"nightly/{path.name}")
    use_s3_endpoint(monkeypatch, s3_endpoint)
    cache = tmp_path / "cache"
    first = make_machine_trace("s3://cache-dumps/nightly", str(tmp_path / "a.csv"), cache=str(cache))
    second = make_machine_trace("s3://cache-dumps/nightly", str(tmp_path / "b.csv"), cache=str(cache))
    assert first.manifest["cache"]["hits"] == 0 and second.manifest["cache"]["hits"] == 9
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
    # an object replaced under the same name has another ETag: read again
    client.put_object(
        Bucket="cache-dumps",
        Key="nightly/" + sorted(history.iterdir())[0].name,
        Body=sorted(history.iterdir())[1].read_bytes(),
    )
    third = make_machine_trace("s3://cache-dumps/nightly", str(tmp_path / "c.csv"), cache=str(cache))
    assert third.manifest["cache"]["misses"] == 1


AUDIT_VM = REPO / "tests" / "fixtures" / "audit" / "vm" / "dumps"


def test_a_stitched_rerun_reads_the_newest_dump_for_its_log_and_writes_the_same_trace(tmp_path):
    """The dumps hold the openstack_audit log: the newest is read again for it (a cached snapshot holds no
    log), the others come from the cache, and the stitched trace is the cold run's byte for byte."""
    history = tmp_path / "dumps"
    shutil.copytree(AUDIT_VM, history)
    cache = tmp_path / "cache"
    first = run(history, tmp_path / "first.csv", cache)
    assert first.manifest["sources"] == ["snapshots", "audit-log"]
    again = run(history, tmp_path / "again.csv", cache)
    cold = make_machine_trace(str(history), str(tmp_path / "cold.csv"))
    count = len(list(history.iterdir()))
    assert again.manifest["cache"] == {"directory": str(cache), "hits": count - 1, "misses": 1}
    assert (tmp_path / "again.csv").read_bytes() == (tmp_path / "cold.csv").read_bytes()
    assert again.manifest["audit_log"] == cold.manifest["audit_log"]
    assert again.manifest["events_by_source"] == cold.manifest["events_by_source"]


def test_a_rerun_without_a_log_reads_no_dump(history, tmp_path):
    """Dumps without the log: the newest, read once for its log and found to hold none, is not read again."""
    cache = tmp_path / "cache"
    run(history, tmp_path / "first.csv", cache)
    again = run(history, tmp_path / "again.csv", cache)
    count = len(list(history.iterdir()))
    assert again.manifest["cache"] == {"directory": str(cache), "hits": count, "misses": 0}
    assert (tmp_path / "again.csv").read_bytes() == (tmp_path / "first.csv").read_bytes()


def test_every_field_of_a_host_survives_the_cache():
    """A field added to HostState or Snapshot and not stored would make a cached run differ from a cold one."""
    import dataclasses
    import datetime as dt

    from starcompactor.machines.backups import BackupFile
    from starcompactor.machines.snapcache import snapshot_from_json, snapshot_to_json
    from starcompactor.machines.state import HostState, Snapshot

    t = dt.datetime(2024, 3, 1, 3, 0, 0)
    host = HostState(
        host="c01",
        created_at=t,
        updated_at=t + dt.timedelta(seconds=1),
        properties=(("vcpus", 48), ("rack", "r1"), ("ratio", 1.5), ("gpu", None)),
        enabled=False,
        status_at=t + dt.timedelta(seconds=2),
        deleted_at=t + dt.timedelta(seconds=3),
        identity=("17", t),
        link="c01-svc",
    )
    defaults = {f.name for f in dataclasses.fields(HostState) if getattr(host, f.name) == f.default}
    assert not defaults, f"set every field in this test: {defaults}"
    backup = BackupFile("/d/x.sql", "x.sql", 10, t, t)
    snapshot = Snapshot("/d/x.sql", "x.sql", t, "name", (host,), 10, {"cells": ["nova"]})
    data = snapshot_to_json(snapshot)
    assert data is not None
    back = snapshot_from_json(orjson_round_trip(data), backup)
    for f in dataclasses.fields(HostState):
        assert getattr(back.hosts[0], f.name) == getattr(host, f.name), f.name
    for f in dataclasses.fields(Snapshot):
        if f.name != "audit":
            assert getattr(back, f.name) == getattr(snapshot, f.name), f.name


def orjson_round_trip(data):
    import orjson

    return orjson.loads(orjson.dumps(data))


def test_the_cache_is_private(history, tmp_path):
    """Entries hold host names unmasked: the directories are the owner's only, the files 0600."""
    cache = tmp_path / "cache"
    run(history, tmp_path / "a.csv", cache)
    assert cache.stat().st_mode & 0o077 == 0
    entries = [p for p in cache.rglob("*")]
    assert entries and all(p.stat().st_mode & 0o077 == 0 for p in entries)


@pytest.mark.parametrize("damage", ["none", "flip in a part", "flip in the header's stretch", "segment cut"])
def test_an_entry_made_of_parts_is_checked_stretch_by_stretch(tmp_path, caplog, damage):
    """Entries joined from files other processes wrote (each with its CRC) read as one; any damaged
    stretch makes the entry unusable."""
    from starcompactor.dump.cache import PartWriter

    cache = DumpCache(str(tmp_path / "cache"))
    parts = []
    for i, records in enumerate([[[1, "a"], [2, "b"]], [], [[3, "c"]]]):
        writer = PartWriter(str(tmp_path / f"part-{i}"))
        writer.add(records)
        writer.close()
        parts.append(writer)
    with cache.writer("kind", "key") as entry:
        entry.add([[0, "header's"]])
        for writer in parts:
            entry.add_part(writer.path, *writer.totals)
        entry.add([[4, "after"]])
    path = cache.path("kind", "key")
    data = bytearray(path.read_bytes())
    if damage == "flip in a part":
        data[data.index(b'"b"') + 1] ^= 1
    elif damage == "flip in the header's stretch":
        data[data.index(b"header's")] ^= 1
    elif damage == "segment cut":
        data = data.replace(b'"segments":[[', b'"segments":[[1')
    path.write_bytes(bytes(data))
    fresh = DumpCache(str(tmp_path / "cache"))
    with caplog.at_level(logging.WARNING, logger="starcompactor"):
        if damage == "none":
            assert list(fresh.records("kind", "key")) == [
                [0, "header's"],
                [1, "a"],
                [2, "b"],
                [3, "c"],
                [4, "after"],
            ]
            assert b'"segments"' in path.read_bytes()
        else:
            assert not fresh.check("kind", "key")
            assert "its checksum does not match" in caplog.text
