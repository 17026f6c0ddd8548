"""Machine events end to end over the checked-in fixture histories (tests/fixtures/machines/).

The expected events are written by hand from the scenarios in make_machine_fixtures.py and SPEC §2;
they are not the output of this code. Each SPEC §2 fix has a test here (or in test_diff.py).
"""

from __future__ import annotations

import datetime as dt
import gzip
import os
import shutil
from pathlib import Path
from typing import Any, Dict, List, Tuple

import orjson
import pytest

from starcompactor.config import load_config
from starcompactor.errors import BadDumpError, NoBackupsError, SnapshotTimeError, StarCompactorError
from starcompactor.machines import make_machine_trace
from starcompactor.mask import Masker
from tests.support.paths import MACHINE_FIXTURES, TESTS
from tests.support.s3 import s3_client, use_s3_endpoint

HERE = TESTS
MACHINES = MACHINE_FIXTURES
D = dt.datetime

VM_CONFIG = """\
[default]
nova_databases = nova,nova_cell0,nova_cell1
[kvm]
hypervisor_hostname_regex = ^(r\\d+)-n\\d+
rack_extract_group = 1
"""


@pytest.fixture(autouse=True)
def _private_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("STARCOMPACTOR_MASKING_KEY", raising=False)
    monkeypatch.setenv("TQDM_DISABLE", "1")


@pytest.fixture
def vm_config(tmp_path):
    path = tmp_path / "vm.config"
    path.write_text(VM_CONFIG)
    return load_config(str(path))


def vm(rack: str, vcpus: int, mem: int, disk: int) -> Dict[str, Any]:
    return {"rack": rack, "vcpu_capability": vcpus, "memory_capability_mb": mem, "disk_capability_gb": disk}


A, B, C, Dh, E, F = (
    "r2-n01.vm.example",
    "r10-n02.vm.example",
    "r9-n03.vm.example",
    "r10-n04.vm.example",
    "r2-n05.vm.example",
    "r9-n06.vm.example",
)
PA, PA2 = vm("r2", 48, 196608, 400), vm("r2", 56, 196608, 400)
PB, PC, PD = vm("r10", 32, 131072, 200), vm("r9", 64, 262144, 800), vm("r10", 16, 65536, 100)
PE, PE2, PF = vm("r2", 40, 163840, 500), vm("r2", 24, 98304, 300), vm("r9", 8, 32768, 50)

#: The vm scenario's events (unmasked, racks as extracted), from the scenario table and SPEC §2:
#: every host is first seen enabled, so its ENABLE is at its CREATE (SPEC §2 as revised; before, the hosts
#: that exist before S1 were ENABLEd at S1's service heartbeat, 02:59:30, and E's second row at S7's);
#: E is soft-deleted, then re-registered (a new CREATE and ENABLE); F vanishes in S5 (DELETE at S5's time
#: from the file name).
VM_EXPECTED: List[Tuple[dt.datetime, str, str, Dict[str, Any]]] = [
    (D(2023, 12, 15, 8), A, "CREATE", PA),
    (D(2023, 12, 15, 8), A, "ENABLE", PA),
    (D(2023, 12, 16, 9), B, "CREATE", PB),
    (D(2023, 12, 16, 9), B, "ENABLE", PB),
    (D(2023, 12, 17, 10), C, "CREATE", PC),
    (D(2023, 12, 17, 10), C, "ENABLE", PC),
    (D(2023, 12, 18, 11), E, "CREATE", PE),
    (D(2023, 12, 18, 11), E, "ENABLE", PE),
    (D(2023, 12, 19, 12), F, "CREATE", PF),
    (D(2023, 12, 19, 12), F, "ENABLE", PF),
    (D(2024, 1, 3, 2, 59, 30), B, "DISABLE", PB),
    (D(2024, 1, 3, 15), E, "DELETE", {}),
    (D(2024, 1, 4, 2, 59, 50), Dh, "CREATE", PD),
    (D(2024, 1, 4, 2, 59, 50), Dh, "ENABLE", PD),
    (D(2024, 1, 5, 2, 59), A, "UPDATE", PA2),
    (D(2024, 1, 5, 2, 59, 30), B, "ENABLE", PB),
    (D(2024, 1, 5, 3), F, "DELETE", {}),
    (D(2024, 1, 6, 12), E, "CREATE", PE2),
    (D(2024, 1, 6, 12), E, "ENABLE", PE2),
]


def bm(node_type: str, rack: str, ram: str) -> Dict[str, Any]:
    return {"node_type": node_type, "placement.rack": rack, "main_memory.ram_size": ram}


N1, N2, N3, N4 = (f"{n:08d}-aaaa-4bbb-8ccc-{n:012d}" for n in (1, 2, 3, 4))


def bm_expected(layout: str) -> List[Tuple[dt.datetime, str, str, Dict[str, Any]]]:
    """The bare-metal scenario's events. N2 leaves Blazar at 2024-01-05 11:00: Chameleon's fork keeps a
    soft-deleted row (DELETE at its deleted_at); old and upstream Blazar delete the row, so the DELETE is
    at the first snapshot without it (S6, 2024-01-06 03:00)."""
    p1 = bm("compute_skylake", "2", "196608")
    p2 = bm("compute_haswell", "9", "131072")
    p3 = bm("storage", "10", "65536")
    delete_n2 = D(2024, 1, 5, 11) if layout == "chameleon" else D(2024, 1, 6, 3)
    return [
        (D(2023, 12, 10, 9), N1, "CREATE", p1),
        (D(2023, 12, 10, 9), N1, "ENABLE", p1),  # first seen enabled: at its CREATE (SPEC §2 as revised)
        (D(2023, 12, 11, 9), N2, "CREATE", p2),
        (D(2023, 12, 11, 9), N2, "ENABLE", p2),  # node updated 08:30, before the Blazar host: at CREATE
        (D(2023, 12, 12, 9), N3, "CREATE", p3),  # in maintenance from the start: no ENABLE yet
        (D(2024, 1, 2, 16), N1, "DISABLE", p1),
        (D(2024, 1, 3, 12), N2, "UPDATE", bm("compute_haswell", "9", "262144")),
        (D(2024, 1, 3, 14), N4, "CREATE", p1),
        (D(2024, 1, 3, 14), N4, "ENABLE", p1),
        (D(2024, 1, 4, 20), N1, "ENABLE", p1),
        (delete_n2, N2, "DELETE", {}),
        (D(2024, 1, 6, 10), N1, "UPDATE", bm("compute_skylake", "10", "196608")),
        (D(2024, 1, 7, 9), N3, "ENABLE", p3),
    ]


def expected_sorted(expected, rack_key: str) -> List[Tuple[str, str, str, Dict[str, Any]]]:
    """Expected rows as written: racks replaced by their natural-order rank, sorted by time, host, type."""
    order = {"CREATE": 0, "DELETE": 1, "DISABLE": 2, "ENABLE": 3, "UPDATE": 4}
    racks = sorted({p[rack_key] for *_, p in expected if rack_key in p}, key=lambda r: int(r.strip("r")))
    rank = {r: i for i, r in enumerate(racks)}
    rows = []
    for time, host, event, props in expected:
        props = dict(props)
        if rack_key in props:
            props[rack_key] = rank[props[rack_key]]
        rows.append((time.isoformat(), host, event, props))
    return sorted(rows, key=lambda r: (r[0], r[1], order[r[2]]))


def read_jsonl(path: Path) -> List[Tuple[str, str, str, Dict[str, Any]]]:
    out = []
    for line in path.read_bytes().splitlines():
        rec = orjson.loads(line)
        out.append((rec["EVENT_TIME"], rec["HOST_NAME (PHYSICAL)"], rec["EVENT"], rec["PROPERTIES"]))
    return out


def run(backup_dir, tmp_path, config=None, instance_type="vm", **kwargs):
    out = tmp_path / "trace.jsonl"
    result = make_machine_trace(
        str(backup_dir),
        str(out),
        instance_type=instance_type,
        config=config,
        fmt="jsonl",
        masker=Masker("none"),
        workers=kwargs.pop("workers", 1),
        **kwargs,
    )
    return out, result


def copy_history(name: str, dest: Path, rename=None) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for path in sorted((MACHINES / name).iterdir()):
        shutil.copy2(path, dest / (rename(path.name) if rename else path.name))
    return dest


# -- exact event lists ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def vm_run(tmp_path_factory):
    """One run over the vm history, shared by the tests that only look at its output."""
    tmp = tmp_path_factory.mktemp("vm_run")
    (tmp / "vm.config").write_text(VM_CONFIG)
    old = os.environ.get("XDG_CONFIG_HOME")
    os.environ["XDG_CONFIG_HOME"] = str(tmp / "xdg")
    try:
        return run(MACHINES / "vm", tmp, load_config(str(tmp / "vm.config")), workers=2)
    finally:
        if old is None:
            del os.environ["XDG_CONFIG_HOME"]
        else:
            os.environ["XDG_CONFIG_HOME"] = old


def test_vm_history_gives_the_expected_events(vm_run):
    out, result = vm_run
    assert read_jsonl(out) == expected_sorted(VM_EXPECTED, "rack")
    assert [s.time for s in result.snapshots] == [D(2024, 1, k, 3) for k in range(1, 10)]
    assert {s.detail["compression"] for s in result.snapshots} == {"gzip", "bzip2", "xz", "zstd", "plain"}


def test_vm_history_manifest(vm_run):
    out, result = vm_run
    manifest = orjson.loads(Path(str(out) + ".manifest.json").read_bytes())
    assert manifest["counts"] == {"CREATE": 7, "DELETE": 2, "DISABLE": 1, "ENABLE": 8, "UPDATE": 1}
    assert manifest["time_range"] == {"first": "2023-12-15T08:00:00", "last": "2024-01-06T12:00:00"}
    assert [i["snapshot_time"] for i in manifest["inputs"]] == [
        f"2024-01-0{k}T03:00:00" for k in range(1, 10)
    ]
    assert manifest["masking"] == {"method": "none", "key_fingerprint": None}
    assert manifest["epoch"] == "2015-09-17T00:00:00"
    assert manifest["inputs"][4]["hosts"] == 4  # S5: A, B, C, D live (E only soft-deleted, F gone)


@pytest.mark.parametrize("layout", ["old", "chameleon", "upstream"])
def test_baremetal_history_gives_the_expected_events(tmp_path, layout):
    out, result = run(MACHINES / f"bm_{layout}", tmp_path, instance_type="baremetal")
    assert read_jsonl(out) == expected_sorted(bm_expected(layout), "placement.rack")
    schema = {"old": "capability_name", "chameleon": "extra_capabilities", "upstream": "resource_properties"}
    assert {s.detail["blazar_schema"] for s in result.snapshots} == {schema[layout]}


def test_baremetal_reading_stops_after_the_needed_databases():
    from starcompactor.machines.backups import list_backups
    from starcompactor.machines.snapshot import SnapshotSettings, read_snapshot

    settings = SnapshotSettings.from_config(load_config(None, cwd=str(HERE)), "baremetal")
    for layout in ("old", "chameleon", "upstream"):
        backup = list_backups(str(MACHINES / f"bm_{layout}"))[0]
        snap = read_snapshot(backup, settings)
        assert snap.detail["stopped_early"], layout


# -- SPEC §2 fixes ----------------------------------------------------------------------------------


def test_output_is_sorted_by_time_then_host(vm_run):
    out, _ = vm_run
    rows = read_jsonl(out)
    order = {"CREATE": 0, "DELETE": 1, "DISABLE": 2, "ENABLE": 3, "UPDATE": 4}
    keys = [(t, h, order[e]) for t, h, e, _ in rows]
    assert keys == sorted(keys)
    assert len({(t, h) for t, h, _, _ in rows}) < len(rows)  # ties exist and are ordered by type


def test_snapshot_order_and_delete_time_do_not_come_from_mtime(tmp_path, vm_config):
    history = copy_history("vm", tmp_path / "vm")
    files = sorted(history.iterdir(), key=lambda p: p.name)
    # newest name gets the oldest mtime: the original would have ordered these backwards
    for i, path in enumerate(
        sorted(files, key=lambda p: p.name.replace("mysql_backup_20240103-030000", "mysqldump-2024-01-03T03"))
    ):
        stamp = 1_800_000_000 - i * 86400
        os.utime(path, (stamp, stamp))
    out, result = run(history, tmp_path, vm_config)
    assert read_jsonl(out) == expected_sorted(VM_EXPECTED, "rack")
    assert all(s.time_source == "name" for s in result.snapshots)


def test_snapshot_time_from_trailer_then_mtime(tmp_path):
    """Names without a time: the trailer dates each dump (the --compact one has none: its mtime)."""
    history = tmp_path / "bm"
    for path in sorted((MACHINES / "bm_upstream").iterdir()):
        k = int(path.name[len("mysqldump-2024-01-") :][:2])
        target = history / f"nightly-{chr(ord('z') - k)}.sql.gz"  # name order is the reverse of time order
        history.mkdir(exist_ok=True)
        shutil.copy(path, target)
        stamp = dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc).timestamp() - k * 86400  # reversed too
        if k == 6:  # the --compact dump: no trailer, so its mtime counts; make it right
            stamp = dt.datetime(2024, 1, 6, 3, tzinfo=dt.timezone.utc).timestamp()
        os.utime(target, (stamp, stamp))
    out, result = run(history, tmp_path, instance_type="baremetal")
    assert read_jsonl(out) == expected_sorted(bm_expected("upstream"), "placement.rack")
    sources = [s.time_source for s in result.snapshots]
    assert sources == ["trailer"] * 5 + ["mtime"] + ["trailer"] * 2
    assert [s.time for s in result.snapshots] == [D(2024, 1, k, 3) for k in range(1, 9)]


def test_baremetal_gets_delete_events(tmp_path):
    out, _ = run(MACHINES / "bm_old", tmp_path, instance_type="baremetal")
    assert [(t, h) for t, h, e, _ in read_jsonl(out) if e == "DELETE"] == [("2024-01-06T03:00:00", N2)]


def _truncate_gzip(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_truncated_file_stops_the_run_naming_it(tmp_path, vm_config):
    history = copy_history("vm", tmp_path / "vm")
    bad = history / "mysqldump-2024-01-04T03:00:00Z.mysql.gz"
    _truncate_gzip(bad)
    out = tmp_path / "trace.jsonl"
    with pytest.raises(BadDumpError) as info:
        make_machine_trace(
            str(history), str(out), config=vm_config, fmt="jsonl", masker=Masker("none"), workers=1
        )
    assert "mysqldump-2024-01-04T03:00:00Z.mysql.gz" in str(info.value)
    assert "truncated" in str(info.value) or "ends" in str(info.value)
    assert not out.exists() and not Path(str(out) + ".manifest.json").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".trace")] == []


def test_skip_bad_files_treats_a_bad_snapshot_as_missing_data(tmp_path, vm_config):
    """S4 truncated and skipped: nobody looks deleted; D is first seen in S5, and its ENABLE is still at
    its CREATE (SPEC §2 as revised: before, S5's heartbeat dated it); every event is unchanged."""
    history = copy_history("vm", tmp_path / "vm")
    _truncate_gzip(history / "mysqldump-2024-01-04T03:00:00Z.mysql.gz")
    out, result = run(history, tmp_path, vm_config, skip_bad_files=True)
    assert read_jsonl(out) == expected_sorted(VM_EXPECTED, "rack")
    assert [f.name for f in result.skipped] == ["mysqldump-2024-01-04T03:00:00Z.mysql.gz"]
    manifest = orjson.loads(Path(str(out) + ".manifest.json").read_bytes())
    assert manifest["skipped"][0]["name"] == "mysqldump-2024-01-04T03:00:00Z.mysql.gz"
    assert len(manifest["inputs"]) == 8


def test_skip_bad_files_with_a_vanishing_host_in_the_bad_snapshot(tmp_path, vm_config):
    """S5 (where F is first gone) is unreadable: F's DELETE moves to S6's time, nothing is fabricated."""
    history = copy_history("vm", tmp_path / "vm")
    (history / "mysqldump-2024-01-05T03:00:00Z.mysql.xz").write_bytes(b"\xfd7zXZ\x00garbage")
    out, _ = run(history, tmp_path, vm_config, skip_bad_files=True)
    got = read_jsonl(out)
    deletes = [(t, h) for t, h, e, _ in got if e == "DELETE"]
    assert deletes == [("2024-01-03T15:00:00", E), ("2024-01-06T03:00:00", F)]
    # A's capacity change and B's re-enable are seen in S6 instead of S5
    assert ("2024-01-06T02:59:00", A, "UPDATE", {**PA2, "rack": 0}) in got
    assert ("2024-01-06T02:59:30", B, "ENABLE", {**PB, "rack": 2}) in got


def test_missing_table_is_a_bad_file(tmp_path, vm_config):
    history = copy_history("vm", tmp_path / "vm")
    shutil.copy(MACHINES / "bad" / "mysqldump-2024-01-10T03:00:00Z.mysql.gz", history)
    with pytest.raises(BadDumpError) as info:
        run(history, tmp_path, vm_config)
    message = str(info.value)
    assert "mysqldump-2024-01-10T03:00:00Z.mysql.gz" in message and "compute_nodes" in message
    out, result = run(history, tmp_path, vm_config, skip_bad_files=True)
    assert read_jsonl(out) == expected_sorted(VM_EXPECTED, "rack")  # the bad last dump deletes nobody
    assert len(result.skipped) == 1


def test_a_partial_dump_deletes_nobody(tmp_path, vm_config, caplog):
    """S7 without its `nova_cell1` database (a partial dump): C and D are in S6 and S8 with the same
    compute node rows, so they were never deleted (SPEC §2): a warning names S7, the manifest counts it,
    and the events are those of the whole history (before: C and D ended the trace deleted)."""
    history = copy_history("vm", tmp_path / "vm")
    partial = history / "mysqldump-2024-01-07T03:00:00Z.sql"
    text = partial.read_text()
    start = text.index("-- Current Database: `nova_cell1`")
    partial.write_text(text[:start] + text[text.index("-- Current Database: `placement`") :])
    with caplog.at_level("WARNING"):
        out, result = run(history, tmp_path, vm_config)
    assert read_jsonl(out) == expected_sorted(VM_EXPECTED, "rack")
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and str(partial) in warnings[0] and "2 host(s)" in warnings[0]
    manifest = orjson.loads(Path(str(out) + ".manifest.json").read_bytes())
    assert manifest["incomplete_snapshots"] == [{"name": partial.name, "hosts_lacking": 2}]


def test_two_dumps_of_one_time_are_one_when_identical_and_an_error_when_not(tmp_path, vm_config, caplog):
    history = copy_history("vm", tmp_path / "vm")
    shutil.copy(
        history / "mysqldump-2024-01-05T03:00:00Z.mysql.xz", history / "copy-2024-01-05T03:00:00Z.sql.xz"
    )
    with caplog.at_level("WARNING"):
        out, result = run(history, tmp_path, vm_config)
    assert read_jsonl(out) == expected_sorted(VM_EXPECTED, "rack")
    assert len(result.snapshots) == 9
    assert "copy-2024-01-05T03:00:00Z.sql.xz" in caplog.text and "one snapshot" in caplog.text
    # a different dump (S6's) under S5's time: which of the two was the state at 03:00 cannot be told
    shutil.copy(
        history / "mysqldump-2024-01-06T03:00:00Z.mysql.gz", history / "copy-2024-01-05T03:00:00Z.sql.xz"
    )
    out2 = tmp_path / "out2.jsonl"
    with pytest.raises(SnapshotTimeError) as info:
        make_machine_trace(
            str(history), str(out2), config=vm_config, fmt="jsonl", masker=Masker("none"), workers=1
        )
    message = str(info.value)
    assert (
        "copy-2024-01-05T03:00:00Z.sql.xz" in message and "mysqldump-2024-01-05T03:00:00Z.mysql.xz" in message
    )
    assert not out2.exists()


def test_natural_rack_order(vm_run):
    out, _ = vm_run
    ranks = {h: p["rack"] for t, h, e, p in read_jsonl(out) if e == "CREATE"}
    assert (ranks[A], ranks[C], ranks[B]) == (0, 1, 2)  # r2 < r9 < r10 (the original: r10 < r2 < r9)


def test_empty_backup_dir_is_a_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(NoBackupsError, match="no backup files"):
        make_machine_trace(str(tmp_path / "empty"), str(tmp_path / "out.csv"))
    assert not (tmp_path / "out.csv").exists()


def test_plain_sql_input_works(tmp_path, vm_config):
    history = tmp_path / "plain"
    history.mkdir()
    for k, src in (
        (1, "mysqldump-2024-01-01T03:00:00Z.mysql.gz"),
        (2, "mysqldump-2024-01-02T03:00:00Z.mysql.gz"),
    ):
        (history / f"mysql_backup_2024010{k}-030000.sql").write_bytes(
            gzip.decompress((MACHINES / "vm" / src).read_bytes())
        )
    out, result = run(history, tmp_path, vm_config)
    assert {s.detail["compression"] for s in result.snapshots} == {"plain"}
    early = [r for r in VM_EXPECTED if r[0] < D(2024, 1, 2, 3)]
    assert read_jsonl(out) == expected_sorted(early, "rack")


# -- executors --------------------------------------------------------------------------------------


def test_process_pool_gives_the_same_output(tmp_path, vm_config, vm_run):
    out, _ = run(MACHINES / "vm", tmp_path, vm_config, workers=1)
    assert out.read_bytes() == vm_run[0].read_bytes()  # vm_run used a pool of 2


def test_dask_local_cluster_gives_the_same_output(tmp_path, vm_config, vm_run):
    distributed = pytest.importorskip("distributed")
    import dask.config

    out1 = vm_run[0]
    # The worker's profiler calls sys._current_frames() every 10 ms; on CPython 3.11 a garbage collection
    # inside it can wait for the runtime lock that same call holds, with the GIL held: every thread of
    # this process (the worker lives in it) then stops for good. Seen once here; the profiler is off.
    with (
        dask.config.set({"distributed.worker.profile.enabled": False}),
        distributed.LocalCluster(
            n_workers=1,
            threads_per_worker=2,
            processes=False,
            dashboard_address=None,
            protocol="tcp",
            scheduler_port=0,
            host="127.0.0.1",
        ) as cluster,
    ):
        address = cluster.scheduler_address.replace("tcp://", "dask://")
        out2, _ = run(MACHINES / "vm", tmp_path, vm_config, executor=address)
    assert out1.read_bytes() == out2.read_bytes()


def test_dask_executor_without_distributed_says_how_to_install(monkeypatch):
    import builtins

    from starcompactor.errors import MissingDependencyError
    from starcompactor.parallel import open_executor

    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name == "distributed" or name.startswith("distributed."):
            raise ImportError("no distributed")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    with (
        pytest.raises(MissingDependencyError, match=r"pip install 'starcompactor\[dask\]'"),
        open_executor("dask://127.0.0.1:1"),
    ):
        pass


def test_unknown_executor_is_a_clear_error():
    from starcompactor.parallel import open_executor

    with pytest.raises(StarCompactorError, match="unknown executor"):
        open_executor("spark://x")


# -- s3 ---------------------------------------------------------------------------------------------


@pytest.fixture
def s3_server(s3_endpoint, monkeypatch):
    use_s3_endpoint(monkeypatch, s3_endpoint)
    return s3_client(s3_endpoint)


def test_s3_backup_dir(tmp_path, s3_server, vm_config):
    s3_server.create_bucket(Bucket="machine-backups")
    for path in (MACHINES / "vm").iterdir():
        s3_server.put_object(Bucket="machine-backups", Key=f"nightly/{path.name}", Body=path.read_bytes())
    s3_server.put_object(Bucket="machine-backups", Key="nightly/README.txt", Body=b"not a dump")
    s3_server.put_object(
        Bucket="machine-backups", Key="other/mysqldump-2024-01-10T03:00:00Z.mysql.gz", Body=b"x"
    )
    out, result = run("s3://machine-backups/nightly", tmp_path, vm_config)
    assert read_jsonl(out) == expected_sorted(VM_EXPECTED, "rack")
    assert result.snapshots[0].uri == "s3://machine-backups/nightly/mysqldump-2024-01-01T03:00:00Z.mysql.gz"


def test_example_history_runs_with_default_config(tmp_path):
    out, result = run(
        HERE.parent / "examples" / "chameleon-kvm", tmp_path, load_config(None, cwd=str(tmp_path))
    )
    rows = read_jsonl(out)
    assert len(result.snapshots) == 9
    assert {p.get("rack") for *_, p in rows if p} == {0, 1, 2}  # c02 < c09 < c10 from the default regex
    assert sum(1 for r in rows if r[2] == "DELETE") == 2
