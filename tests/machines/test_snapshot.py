"""Rows → host states (SPEC §1.2), and reading one dump into a snapshot."""

from __future__ import annotations

import datetime as dt
import shutil

import pytest

from starcompactor.errors import MissingTableError
from starcompactor.machines.backups import BackupFile, list_backups
from starcompactor.machines.blazar import (
    BLAZAR_CHAMELEON,
    BLAZAR_OLD,
    BLAZAR_UPSTREAM,
    baremetal_host_states,
    blazar_schema,
)
from starcompactor.machines.snapshot import rack_of, read_snapshot, vm_host_states
from starcompactor.machines.state import SnapshotSettings
from tests.support.paths import MACHINE_FIXTURES, TESTS

HERE = TESTS
MACHINES = MACHINE_FIXTURES
D = dt.datetime
VM = SnapshotSettings("vm", ("nova", "nova_cell0", "nova_cell1"), r"^(r\d+)-n\d+", 1, ())
BM = SnapshotSettings("baremetal", baremetal_properties=("node_type", "placement.rack"))


def cn(id, host, name, deleted=False, **kw):
    row = {
        "id": id,
        "host": host,
        "hypervisor_hostname": name,
        "created_at": D(2024, 1, 1),
        "updated_at": None,
        "deleted_at": D(2024, 1, 2) if deleted else None,
        "deleted": id if deleted else 0,
        "vcpus": 8,
        "memory_mb": 1024,
        "local_gb": 10,
    }
    row.update(kw)
    return row


def svc(id, host, binary="nova-compute", disabled=0, deleted=False, updated=None):
    return {
        "id": id,
        "host": host,
        "binary": binary,
        "disabled": disabled,
        "deleted": id if deleted else 0,
        "deleted_at": D(2024, 1, 2) if deleted else None,
        "updated_at": updated,
        "created_at": D(2023, 1, 1),
    }


def test_rack_of():
    import re

    assert rack_of("r10-n02.x", re.compile(r"^(r\d+)-"), 1) == "r10"
    assert rack_of("other", re.compile(r"^(r\d+)-"), 1) == "UNKNOWN"
    assert rack_of("r10-n02.x", None, 1) == "UNKNOWN"
    assert rack_of("r10-n02.x", re.compile(r"^(r\d+)-"), None) == "UNKNOWN"


def test_vm_join_keeps_nova_compute_services_only():
    nodes = [cn(1, "cmp-a", "r1-n1"), cn(2, "ctl", "r1-n2"), cn(3, "cmp-x", "r1-n3")]
    services = [
        svc(1, "cmp-a", updated=D(2024, 1, 3)),
        svc(2, "cmp-a", "nova-conductor", disabled=1),
        svc(3, "ctl", "nova-scheduler"),
    ]
    states = vm_host_states(nodes, services, VM)
    assert [(s.host, s.enabled, s.status_at) for s in states] == [("r1-n1", True, D(2024, 1, 3))]
    assert states[0].properties == (
        ("rack", "r1"),
        ("vcpu_capability", 8),
        ("memory_capability_mb", 1024),
        ("disk_capability_gb", 10),
    )


def test_vm_live_service_is_preferred_over_a_deleted_one():
    nodes = [cn(1, "h", "r1-n1")]
    services = [svc(2, "h", disabled=1, deleted=True, updated=D(2024, 1, 5)), svc(3, "h", disabled=0)]
    assert vm_host_states(nodes, services, VM)[0].enabled is True


def test_vm_soft_deleted_row_beside_live_row():
    nodes = [cn(1, "h", "r1-n1", deleted=True), cn(2, "h", "r1-n1", vcpus=16)]
    states = vm_host_states(nodes, [svc(1, "h")], VM)
    assert [(s.deleted_at, dict(s.properties)["vcpu_capability"]) for s in states] == [
        (D(2024, 1, 2), 8),
        (None, 16),
    ]


def test_vm_soft_deleted_node_tells_the_state_of_its_own_service():
    """SPEC §2: a deleted row tells its last state — its own (deleted) service's, disabled at 22:21 before
    both were deleted at 00:21, not that of the service registered after it under the same host."""
    gone_at = D(2024, 1, 2, 0, 21)
    nodes = [
        cn(1, "h", "r1-n1", deleted=True, deleted_at=gone_at),
        cn(2, "h", "r1-n1", created_at=D(2024, 1, 2, 9)),
    ]
    services = [
        {**svc(5, "h", disabled=1, deleted=True, updated=D(2024, 1, 1, 22, 21)), "deleted_at": gone_at},
        svc(4, "h", disabled=0, deleted=True, updated=D(2023, 6, 1)),  # an older registration
        svc(6, "h", disabled=0, updated=D(2024, 1, 3)),
    ]
    old, new = vm_host_states(nodes, services, VM)
    assert (old.deleted_at, old.enabled, old.status_at) == (gone_at, False, D(2024, 1, 1, 22, 21))
    assert (new.deleted_at, new.enabled, new.status_at) == (None, True, D(2024, 1, 3))
    assert (old.identity, new.identity) == (("1", D(2024, 1, 1)), ("2", D(2024, 1, 2, 9)))
    # a deleted node whose service lives on has no state of its own
    (alone,) = vm_host_states([nodes[0]], [services[2]], VM)
    assert alone.deleted_at == gone_at and alone.enabled is None


def test_vm_values_as_text_are_coerced():
    """Rows typed as text (a dump without CREATE TABLE) give the same state."""
    typed = vm_host_states([cn(1, "h", "r1-n1")], [svc(1, "h", updated=D(2024, 1, 3))], VM)
    text = vm_host_states(
        [{k: (str(v) if v is not None else None) for k, v in cn(1, "h", "r1-n1").items()}],
        [{k: (str(v) if v is not None else None) for k, v in svc(1, "h", updated=D(2024, 1, 3)).items()}],
        VM,
    )
    assert text == typed


@pytest.mark.parametrize(
    "columns, schema",
    [
        (("id", "computehost_id", "capability_name", "capability_value"), BLAZAR_OLD),
        (("id", "computehost_id", "capability_value", "capability_id", "deleted"), BLAZAR_CHAMELEON),
        (("id", "computehost_id", "capability_value", "property_id"), BLAZAR_UPSTREAM),
        (("id", "computehost_id"), None),
    ],
)
def test_blazar_schema_detection(columns, schema):
    assert blazar_schema(columns) == schema


def test_baremetal_join_and_soft_deleted_capabilities():
    nodes = [
        {"uuid": "n1", "maintenance": 1, "updated_at": D(2024, 1, 2), "created_at": D(2024, 1, 1)},
        {"uuid": "n9", "maintenance": 0, "updated_at": None, "created_at": D(2024, 1, 1)},
    ]
    hosts = [
        {"id": "h1", "hypervisor_hostname": "n1", "created_at": D(2024, 1, 1, 5), "deleted": None},
        {"id": "h2", "hypervisor_hostname": "not-a-node", "created_at": D(2024, 1, 1)},
    ]
    caps = [
        {
            "computehost_id": "h1",
            "capability_id": "p1",
            "capability_value": "gpu",
            "created_at": D(2024, 1, 1, 5),
            "updated_at": D(2024, 1, 3),
            "deleted": None,
        },
        {
            "computehost_id": "h1",
            "capability_id": "p2",
            "capability_value": "7",
            "created_at": D(2024, 1, 1, 5),
            "updated_at": None,
            "deleted": "c2",
            "deleted_at": D(2024, 1, 4),
        },
        {
            "computehost_id": "h1",
            "capability_id": "p3",
            "capability_value": "x",
            "created_at": D(2024, 1, 6),
            "updated_at": None,
            "deleted": None,
        },
    ]
    names = {"p1": "node_type", "p2": "placement.rack", "p3": "not_configured"}
    (state,) = baremetal_host_states(nodes, hosts, caps, names, BLAZAR_CHAMELEON, BM)
    assert state.host == "n1" and state.enabled is False and state.status_at == D(2024, 1, 2)
    assert state.identity == ("h1", D(2024, 1, 1, 5))
    assert state.properties == (("node_type", "gpu"),)
    assert state.updated_at == D(2024, 1, 4)  # the removal of placement.rack is the latest change


def _one(name: str, index: int = 0) -> BackupFile:
    return list_backups(str(MACHINES / name))[index]


def test_read_snapshot_vm_cells_and_compressions():
    for index, compression in ((0, "gzip"), (2, "bzip2"), (4, "xz"), (6, "plain"), (7, "zstd")):
        backups = sorted(list_backups(str(MACHINES / "vm")), key=lambda b: b.name_time)
        snap = read_snapshot(backups[index], VM)
        assert snap.detail["compression"] == compression
        assert snap.detail["cells"] == ["nova", "nova_cell0", "nova_cell1"]
        assert snap.time == D(2024, 1, index + 1, 3) and snap.time_source == "name"
    live = sorted(h.host for h in snap.hosts if not h.deleted)
    assert live == [
        "r10-n02.vm.example",
        "r10-n04.vm.example",
        "r2-n01.vm.example",
        "r2-n05.vm.example",
        "r9-n03.vm.example",
    ]


def test_absent_cell_is_fine_when_another_has_compute_nodes():
    settings = SnapshotSettings("vm", ("nova", "nova_cell9"), None, None, ())
    snap = read_snapshot(_one("vm"), settings)
    assert snap.detail["cells"] == ["nova"]
    assert all(dict(h.properties)["rack"] == "UNKNOWN" for h in snap.hosts)


def test_dump_without_the_needed_tables_is_a_missing_table_error():
    with pytest.raises(
        MissingTableError, match="mysqldump-2024-01-10T03:00:00Z.mysql.gz.*compute_nodes.*keystone"
    ):
        read_snapshot(_one("bad"), VM)
    with pytest.raises(MissingTableError, match="ironic"):
        read_snapshot(_one("bad"), BM)
    with pytest.raises(MissingTableError, match="ironic"):
        read_snapshot(_one("vm"), BM)


def test_name_without_time_reads_the_whole_dump_for_its_trailer(tmp_path):
    src = sorted((MACHINES / "bm_chameleon").iterdir())[3]
    dst = tmp_path / "nightly.mysql.gz"
    shutil.copy(src, dst)
    snap = read_snapshot(list_backups(str(tmp_path))[0], BM)
    assert (snap.time, snap.time_source) == (D(2024, 1, 4, 3), "trailer")
    assert snap.detail["stopped_early"] is False


@pytest.mark.mariadb
def test_live_dump_without_create_table_gives_the_same_snapshot(mariadb, tmp_path):
    """A dump made now with --no-create-info --complete-insert --hex-blob (columns typed as text, names
    from the INSERT's column list) reads to the same host states as the checked-in S1 of the vm history."""
    import gzip

    from tests.fixtures.machines.make_machine_fixtures import _replace_rows, vm_state

    db = "mt_nova_live"
    mariadb.sql(f"DROP DATABASE IF EXISTS `{db}`")
    mariadb.load_schema("nova.sql", db)
    try:
        conn = mariadb.connect()
        state = vm_state(1)
        for table in ("compute_nodes", "services"):
            _replace_rows(conn, db, table, state[("nova", table)])
        conn.close()
        dump = mariadb.dump(
            [
                "--no-create-info",
                "--complete-insert",
                "--hex-blob",
                "--skip-extended-insert",
                "--databases",
                db,
            ]
        )
    finally:
        mariadb.sql(f"DROP DATABASE IF EXISTS `{db}`")
    path = tmp_path / "mysqldump-2024-01-01T03:00:00Z.sql.gz"
    path.write_bytes(gzip.compress(dump))
    live = read_snapshot(
        list_backups(str(tmp_path))[0], SnapshotSettings("vm", (db,), r"^(r\d+)-n\d+", 1, ())
    )
    first = min(list_backups(str(MACHINES / "vm")), key=lambda b: b.name_time)
    fixture = read_snapshot(first, SnapshotSettings("vm", ("nova",), r"^(r\d+)-n\d+", 1, ()))
    assert live.hosts == fixture.hosts
    assert len(live.hosts) == 3  # A, B, E in cell nova; X has no nova-compute service
