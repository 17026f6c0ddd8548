"""Make large, realistic ``--all-databases`` Nova dumps for the benchmarks, and cache them.

Generating a gigabyte through a real MariaDB is slow on a small machine, so this works in two steps:

1. *Seed*: load the real OpenStack schemas (keystone, nova, nova_api, nova_cell0, placement from
   ``tests/fixtures/schemas``) into a throwaway MariaDB, insert a few hundred realistic rows in the
   tables that make real Nova dumps big (``instance_extra``, ``instance_system_metadata``,
   ``instance_actions_events``, ``instance_faults``, ``instances`` …, their ``shadow_*`` twins after
   archiving) plus a cloud's worth of ``compute_nodes`` and ``services``, and dump it with the real
   mysqldump (``--single-transaction --all-databases``, as Chameleon's backup job does).
2. *Scale*: copy that dump line by line; each ballast table's rows are replayed until the table reaches
   its share of the requested size, every copy with fresh UUIDs, ids and times (so the result compresses
   like a real dump, not like a repeated block). Rows keep the exact text mysqldump wrote.

Two layouts come out of one pass: ``mariadb`` (what MariaDB's mysqldump writes: ``INSERT INTO `t` VALUES``
alone on a line, then one row per line) and ``mysql`` (MySQL 8: each extended INSERT of up to
``net_buffer_length`` = 1 MB on one line, with a MySQL header).

Files are cached in ``benchmarks/data/`` keyed by layout, size and generator version.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DATA = HERE / "data"
SCHEMAS = REPO / "tests" / "fixtures" / "schemas"
GEN_VERSION = 2  #: bump when the content changes, to invalidate the cache
NET_BUFFER_LENGTH = 1 << 20  #: mysqldump's default: where it starts a new extended INSERT
SEED_ID = 9_100_000  #: seed rows get ids from here; the scaler recognises and renumbers them

#: Share of the dump's bytes per ballast table, as seen in production Nova databases.
#: Order does not matter here: the dump keeps mysqldump's alphabetical order, in which the big
#: ``nova.instance_*`` tables come after ``nova.compute_nodes`` and before ``nova.services``.
WEIGHTS: Dict[Tuple[str, str], float] = {
    ("keystone", "assignment"): 0.5,
    ("keystone", "local_user"): 0.3,
    ("keystone", "project"): 0.4,
    ("keystone", "revocation_event"): 1.5,
    ("keystone", "user"): 0.3,
    ("nova", "block_device_mapping"): 4.0,
    ("nova", "instance_actions"): 5.0,
    ("nova", "instance_actions_events"): 11.0,
    ("nova", "instance_extra"): 14.0,
    ("nova", "instance_faults"): 6.0,
    ("nova", "instance_info_caches"): 7.0,
    ("nova", "instance_metadata"): 1.0,
    ("nova", "instance_system_metadata"): 12.0,
    ("nova", "instances"): 8.0,
    ("nova", "migrations"): 2.0,
    ("nova", "shadow_instance_actions"): 1.5,
    ("nova", "shadow_instance_actions_events"): 3.5,
    ("nova", "shadow_instance_extra"): 3.0,
    ("nova", "shadow_instance_system_metadata"): 3.0,
    ("nova", "shadow_instances"): 2.0,
    ("nova_api", "instance_mappings"): 1.0,
    ("nova_api", "request_specs"): 5.0,
    ("nova_cell0", "instance_extra"): 0.6,
    ("nova_cell0", "instance_faults"): 0.8,
    ("nova_cell0", "instance_system_metadata"): 0.6,
    ("nova_cell0", "instances"): 0.4,
    ("placement", "allocations"): 1.0,
    ("placement", "consumers"): 0.5,
}
SEED_ROWS = 300
COMPUTE_HOSTS = 240  #: rows of nova.compute_nodes (a few soft-deleted among them)

# -- realistic values -------------------------------------------------------------------------------

_EVENTS = [
    "compute__do_build_and_run_instance",
    "compute_terminate_instance",
    "compute_reboot_instance",
    "compute_stop_instance",
    "compute_start_instance",
    "conductor_schedule_and_build_instances",
    "compute_resize_instance",
    "compute_finish_resize",
    "compute_live_migration",
    "compute_snapshot_instance",
    "conductor_migrate_server",
    "compute_prep_resize",
    "compute_shelve_instance",
    "compute_unshelve_instance",
]
_ACTIONS = [
    "create",
    "delete",
    "reboot",
    "stop",
    "start",
    "resize",
    "confirmResize",
    "live-migration",
    "createImage",
    "shelve",
    "unshelve",
    "rebuild",
    "attach_interface",
    "detach_volume",
]
_TRACEBACK = (
    'Traceback (most recent call last):\n  File "/var/lib/kolla/venv/lib/python3.9/site-packages/nova/'
    'compute/manager.py", line {line}, in _do_build_and_run_instance\n    self._build_and_run_instance(context, '
    'instance, image, request_spec,\n  File "/var/lib/kolla/venv/lib/python3.9/site-packages/nova/compute/'
    'manager.py", line 2637, in _build_and_run_instance\n    raise exception.RescheduledException(\n'
    "nova.exception.RescheduledException: Build of instance {uuid} was re-scheduled: internal error: "
    "qemu unexpectedly closed the monitor: {host} 2023-{mm}-{dd}T{hh}:12:44.318431Z qemu-kvm: "
    "-device vfio-pci,host=0000:{bus}:00.0: 'Device or resource busy'\n"
)
_IMAGE_KEYS = [
    ("image_base_image_ref", None),
    ("image_container_format", "bare"),
    ("image_disk_format", "qcow2"),
    ("image_min_disk", "40"),
    ("image_min_ram", "0"),
    ("image_os_distro", "ubuntu"),
    ("image_hw_rng_model", "virtio"),
    ("image_build-os", "ubuntu-jammy"),
    ("image_build-tag", None),
    ("image_build-variant", "base"),
    ("image_owner_specified.openstack.md5", None),
    ("image_owner_specified.openstack.object", None),
    ("image_owner_specified.openstack.sha256", None),
    ("clean_attempts", "1"),
    ("boot_roles", "member,reader"),
    ("owner_project_name", None),
    ("owner_user_name", None),
]


class Values:
    """Random but plausible values for Nova/Keystone/Placement columns (deterministic for a seed)."""

    def __init__(self, seed: int = 7) -> None:
        self.r = random.Random(seed)
        self.projects = [self.hex32() for _ in range(60)]
        self.users = [self.hex32() for _ in range(300)]
        self.hosts = [f"c{1 + i // 40:02d}-{1 + i % 40:02d}" for i in range(COMPUTE_HOSTS)]
        self.nodes = [f"{h}.kvm.tacc.chameleoncloud.org" for h in self.hosts]
        self.images = [self.uuid() for _ in range(40)]
        templates = json.loads((SCHEMAS / "nova_blob_templates.json").read_text())
        # nova's own serialisations, stored as they are (JSON text)
        self.numa = _as_text(templates["numa_topology"])
        self.pci_stats = _as_text(templates["pci_stats"])

    def uuid(self) -> str:
        return str(uuid.UUID(int=self.r.getrandbits(128), version=4))

    def hex32(self) -> str:
        return f"{self.r.getrandbits(128):032x}"

    def time(self, start: int = 2019, end: int = 2024) -> dt.datetime:
        a = dt.datetime(start, 1, 1).timestamp()
        b = dt.datetime(end, 12, 31).timestamp()
        return dt.datetime.fromtimestamp(self.r.uniform(a, b)).replace(microsecond=0)

    def seed_id(self, n: int = SEED_ROWS) -> int:
        return SEED_ID + self.r.randrange(n)

    def flavor(self) -> str:
        vcpus, ram, disk = self.r.choice(
            [(1, 2048, 20), (2, 4096, 40), (4, 8192, 40), (8, 16384, 80), (16, 32768, 160), (48, 196608, 240)]
        )
        name = {
            1: "m1.small",
            2: "m1.medium",
            4: "m1.large",
            8: "m1.xlarge",
            16: "m1.xxlarge",
            48: "m1.huge",
        }[vcpus]

        def flv(n: str) -> dict:
            return {
                "nova_object.name": "Flavor",
                "nova_object.namespace": "nova",
                "nova_object.version": "1.2",
                "nova_object.data": {
                    "id": vcpus,
                    "name": n,
                    "memory_mb": ram,
                    "vcpus": vcpus,
                    "root_gb": disk,
                    "ephemeral_gb": 0,
                    "flavorid": str(self.r.randrange(1, 60)),
                    "swap": 0,
                    "rxtx_factor": 1.0,
                    "vcpu_weight": 0,
                    "disabled": False,
                    "is_public": True,
                    "extra_specs": {"hw:cpu_policy": "shared", "quota:disk_read_bytes_sec": "209715200"},
                    "description": None,
                    "created_at": "2021-03-02T17:23:11Z",
                    "updated_at": None,
                    "deleted_at": None,
                    "deleted": False,
                },
                "nova_object.changes": ["extra_specs"],
            }

        return json.dumps({"cur": flv(name), "old": None, "new": None})

    def vcpu_model(self) -> str:
        return json.dumps(
            {
                "nova_object.name": "VirtCPUModel",
                "nova_object.namespace": "nova",
                "nova_object.version": "1.0",
                "nova_object.data": {
                    "arch": None,
                    "vendor": None,
                    "topology": {
                        "nova_object.name": "VirtCPUTopology",
                        "nova_object.namespace": "nova",
                        "nova_object.version": "1.0",
                        "nova_object.data": {
                            "sockets": 1,
                            "cores": self.r.choice([1, 2, 4, 8]),
                            "threads": 1,
                        },
                    },
                    "features": [],
                    "mode": "host-model",
                    "model": None,
                    "match": "exact",
                },
                "nova_object.changes": ["mode", "model", "features", "match", "topology", "vendor"],
            }
        )

    def keypairs(self) -> str:
        key = "".join(
            self.r.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
            for _ in range(372)
        )
        return json.dumps(
            {
                "nova_object.name": "KeyPairList",
                "nova_object.namespace": "nova",
                "nova_object.version": "1.3",
                "nova_object.data": {
                    "objects": [
                        {
                            "nova_object.name": "KeyPair",
                            "nova_object.namespace": "nova",
                            "nova_object.version": "1.4",
                            "nova_object.data": {
                                "id": self.r.randrange(1, 9000),
                                "name": "laptop",
                                "user_id": self.r.choice(self.users),
                                "fingerprint": ":".join(f"{self.r.randrange(256):02x}" for _ in range(16)),
                                "public_key": f"ssh-rsa AAAAB3NzaC1yc2E{key} user@laptop\n",
                                "type": "ssh",
                                "created_at": "2022-10-11T15:02:33Z",
                                "updated_at": None,
                                "deleted_at": None,
                                "deleted": False,
                            },
                        }
                    ]
                },
            }
        )

    def network_info(self) -> str:
        mac = ":".join(f"{self.r.randrange(256):02x}" for _ in range(3))
        ip = f"10.{self.r.randrange(140, 150)}.{self.r.randrange(256)}.{self.r.randrange(2, 254)}"
        return json.dumps(
            [
                {
                    "id": self.uuid(),
                    "address": f"fa:16:3e:{mac}",
                    "network": {
                        "id": self.uuid(),
                        "bridge": "br-int",
                        "label": "sharednet1",
                        "subnets": [
                            {
                                "cidr": "10.140.80.0/22",
                                "dns": [],
                                "gateway": {
                                    "address": "10.140.80.1",
                                    "type": "gateway",
                                    "version": 4,
                                    "meta": {},
                                },
                                "ips": [
                                    {
                                        "address": ip,
                                        "type": "fixed",
                                        "version": 4,
                                        "meta": {},
                                        "floating_ips": [],
                                    }
                                ],
                                "routes": [],
                                "version": 4,
                                "meta": {"enable_dhcp": True, "dhcp_server": "10.140.80.2"},
                            }
                        ],
                        "meta": {
                            "injected": False,
                            "tenant_id": self.r.choice(self.projects),
                            "mtu": 1500,
                            "physical_network": "physnet1",
                            "tunneled": False,
                        },
                    },
                    "type": "ovs",
                    "details": {
                        "connectivity": "l2",
                        "port_filter": True,
                        "ovs_hybrid_plug": True,
                        "datapath_type": "system",
                        "bridge_name": "br-int",
                    },
                    "devname": f"tap{self.uuid()[:11]}",
                    "ovs_interfaceid": self.uuid(),
                    "qbh_params": None,
                    "qbg_params": None,
                    "active": True,
                    "vnic_type": "normal",
                    "profile": {},
                    "preserve_on_delete": False,
                    "delegate_create": True,
                    "meta": {},
                }
            ]
        )

    def request_spec(self, instance_uuid: str) -> str:
        return json.dumps(
            {
                "nova_object.name": "RequestSpec",
                "nova_object.namespace": "nova",
                "nova_object.version": "1.14",
                "nova_object.data": {
                    "image": {
                        "nova_object.name": "ImageMeta",
                        "nova_object.data": {
                            "id": self.r.choice(self.images),
                            "name": "CC-Ubuntu22.04",
                            "status": "active",
                            "container_format": "bare",
                            "disk_format": "qcow2",
                            "min_ram": 0,
                            "min_disk": 0,
                            "size": self.r.randrange(10**9, 5 * 10**9),
                            "properties": {
                                "nova_object.name": "ImageMetaProps",
                                "nova_object.data": {"hw_rng_model": "virtio", "os_distro": "ubuntu"},
                            },
                        },
                    },
                    "numa_topology": None,
                    "pci_requests": {
                        "nova_object.name": "InstancePCIRequests",
                        "nova_object.data": {"requests": []},
                    },
                    "project_id": self.r.choice(self.projects),
                    "user_id": self.r.choice(self.users),
                    "availability_zone": "nova",
                    "flavor": json.loads(self.flavor())["cur"],
                    "num_instances": 1,
                    "ignore_hosts": None,
                    "force_hosts": None,
                    "force_nodes": None,
                    "retry": None,
                    "limits": {
                        "nova_object.name": "SchedulerLimits",
                        "nova_object.data": {
                            "numa_topology": None,
                            "vcpu": None,
                            "disk_gb": None,
                            "memory_mb": None,
                        },
                    },
                    "instance_group": None,
                    "scheduler_hints": {},
                    "instance_uuid": instance_uuid,
                    "security_groups": {
                        "nova_object.name": "SecurityGroupList",
                        "nova_object.data": {
                            "objects": [
                                {"nova_object.name": "SecurityGroup", "nova_object.data": {"name": "default"}}
                            ]
                        },
                    },
                    "is_bfv": False,
                },
            }
        )


def _as_text(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _column_value(v: Values, table: str, col: str, ctype: str, i: int) -> object:
    """A plausible value for one column, from its name and type."""
    r = v.r
    if col == "id" and ctype.startswith("int"):
        return SEED_ID + i
    if col in ("deleted",):
        return 0
    if col == "deleted_at":
        return None if r.random() < 0.7 else v.time()
    if "uuid" in col and ("varchar(36)" in ctype or "char(36)" in ctype):
        return v.uuid()
    if ctype.startswith("datetime"):
        return v.time() if col != "updated_at" or r.random() < 0.8 else None
    if ctype.startswith("date"):
        return v.time().date()
    if col == "project_id":
        return v.r.choice(v.projects) if "varchar" in ctype else r.randrange(1, 60)
    if col in ("user_id", "actor_id", "default_project_id", "target_id"):
        return v.r.choice(v.users) if "varchar" in ctype else r.randrange(1, 300)
    if col in ("host", "source_compute", "dest_compute", "dest_host", "launched_on"):
        return r.choice(v.hosts)
    if col in ("node", "source_node", "dest_node", "hypervisor_hostname"):
        return r.choice(v.nodes)
    if col == "request_id":
        return f"req-{v.uuid()}"
    if col.endswith("_id") and ctype.startswith(("int", "bigint")):
        return v.seed_id()
    if col == "id" or col.endswith("_id"):
        return v.hex32()
    if ctype.startswith("tinyint(1)"):
        return r.randrange(2)
    if ctype.startswith(("int", "bigint", "smallint")):
        return r.randrange(0, 100)
    if ctype.startswith("float"):
        return 1.0
    if ctype.startswith("enum"):
        return re.findall(r"'([^']*)'", ctype)[0]
    if ctype.startswith("varchar"):
        n = int(re.search(r"\((\d+)\)", ctype).group(1))
        return None if r.random() < 0.5 else f"{col}-{r.randrange(10**6)}"[:n]
    return None  # text columns we know nothing about: NULL, as most of them are


def _table_row(
    v: Values, db: str, table: str, i: int, columns: Sequence[Tuple[str, str]]
) -> Dict[str, object]:
    row = {c: _column_value(v, table, c, t, i) for c, t in columns}
    r = v.r
    base = table[len("shadow_") :] if table.startswith("shadow_") else table
    if table.startswith("shadow_") and "deleted" in row:
        row["deleted"] = row.get("id", 1)
        row["deleted_at"] = v.time()
    if base == "instances":
        flavor = json.loads(v.flavor())["cur"]["nova_object.data"]
        row.update(
            vcpus=flavor["vcpus"],
            memory_mb=flavor["memory_mb"],
            root_gb=flavor["root_gb"],
            ephemeral_gb=0,
            image_ref=r.choice(v.images),
            hostname=f"vm-{r.choice(['dev', 'ci', 'exp', 'lab'])}-{i}",
            display_name=f"vm-{r.choice(['dev', 'ci', 'exp', 'lab'])}-{i}",
            vm_state=r.choice(["active", "active", "deleted", "stopped", "error"]),
            power_state=r.choice([1, 4, 0]),
            task_state=None,
            availability_zone="nova",
            key_name="laptop",
            os_type=None,
            architecture=None,
            reservation_id=f"r-{r.getrandbits(32):08x}",
            root_device_name="/dev/vda",
            config_drive="",
            launch_index=0,
            locked=0,
            progress=0,
            cleaned=1,
            hidden=0,
            kernel_id="",
            ramdisk_id="",
            user_data=None,
            key_data="ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC" + v.hex32() * 8 + " user@laptop",
            launched_on=r.choice(v.hosts),
            instance_type_id=r.randrange(1, 20),
            access_ip_v4=None,
            access_ip_v6=None,
            cell_name=None,
            vm_mode=None,
            default_ephemeral_device=None,
            default_swap_device=None,
        )
    elif base == "instance_system_metadata":
        key, value = _IMAGE_KEYS[i % len(_IMAGE_KEYS)]
        row.update(
            key=key, value=value if value is not None else (r.choice(v.images) if "ref" in key else v.hex32())
        )
    elif base == "instance_metadata":
        row.update(key=r.choice(["lease_id", "reservation_id", "purpose"]), value=v.uuid())
    elif base == "instance_actions":
        row.update(action=r.choice(_ACTIONS), message=None if r.random() < 0.9 else "Error")
    elif base == "instance_actions_events":
        error = r.random() < 0.05
        row.update(
            event=r.choice(_EVENTS),
            result="Error" if error else "Success",
            details=None,
            traceback=_TRACEBACK.format(
                line=r.randrange(2000, 2700),
                uuid=v.uuid(),
                host=r.choice(v.hosts),
                mm=f"{r.randrange(1, 13):02d}",
                dd=f"{r.randrange(1, 29):02d}",
                hh=f"{r.randrange(24):02d}",
                bus=f"{r.randrange(256):02x}",
            )
            if error
            else None,
        )
    elif base == "instance_faults":
        row.update(
            code=r.choice([500, 500, 400]),
            message=r.choice(
                [
                    "No valid host was found. There are not enough hosts available.",
                    "RescheduledException",
                    "Build of instance aborted: Volume did not finish being created",
                ]
            ),
            details=_TRACEBACK.format(
                line=r.randrange(2000, 2700),
                uuid=v.uuid(),
                host=r.choice(v.hosts),
                mm=f"{r.randrange(1, 13):02d}",
                dd=f"{r.randrange(1, 29):02d}",
                hh=f"{r.randrange(24):02d}",
                bus=f"{r.randrange(256):02x}",
            )
            * r.randrange(1, 3),
        )
    elif base == "instance_extra":
        row.update(
            numa_topology=None,
            pci_requests='{"nova_object.name": "InstancePCIRequests", "nova_object.data": '
            '{"requests": []}, "nova_object.version": "1.1", "nova_object.namespace": "nova"}',
            flavor=v.flavor(),
            vcpu_model=v.vcpu_model(),
            keypairs=v.keypairs(),
            migration_context=None,
            device_metadata=None,
            trusted_certs=None,
            vpmems=None,
            resources=None,
        )
    elif base == "instance_info_caches":
        row.update(network_info=v.network_info())
    elif base == "block_device_mapping":
        row.update(
            device_name="/dev/vda",
            source_type="image",
            destination_type="local",
            boot_index=0,
            delete_on_termination=1,
            device_type="disk",
            disk_bus=None,
            guest_format=None,
            no_device=0,
            volume_id=None,
            snapshot_id=None,
            image_id=r.choice(v.images),
            connection_info=None,
            volume_size=None,
            tag=None,
            attachment_id=None,
            encrypted=0,
            encryption_secret_uuid=None,
            encryption_format=None,
            encryption_options=None,
            volume_type=None,
        )
    elif base == "migrations":
        row.update(
            status=r.choice(["completed", "confirmed", "error", "failed"]),
            migration_type=r.choice(["migration", "resize", "live-migration", "evacuation"]),
        )
    elif table == "request_specs":
        row.update(spec=v.request_spec(row["instance_uuid"]))
    elif table == "revocation_event":
        row.update(
            domain_id=None,
            role_id=None,
            trust_id=None,
            consumer_id=None,
            access_token_id=None,
            audit_id=v.hex32()[:22],
            audit_chain_id=None,
        )
    elif table == "project":
        row.update(
            name=f"CHI-{r.randrange(100000, 999999)}",
            domain_id="default",
            parent_id="default",
            is_domain=0,
            extra="{}",
            description="Chameleon project: "
            + " ".join(
                r.choice(["cloud", "edge", "ML", "HPC", "storage", "network", "study", "of", "the"])
                for _ in range(20)
            ),
        )
    elif table in ("user", "local_user"):
        row.update(domain_id="default", name=f"user{r.randrange(10**6)}@example.edu", extra="{}")
    elif table == "assignment":
        row.update(type="UserProject", role_id=v.hex32(), inherited=0)
    return {c: row[c] for c, _ in columns}


def _compute_node(v: Values, i: int) -> Dict[str, object]:
    r = v.r
    created = v.time(2019, 2021)
    gone = i % 37 == 5
    return {
        "created_at": created,
        "updated_at": v.time(2024, 2024),
        "deleted_at": v.time(2022, 2023) if gone else None,
        "id": i + 1,
        "service_id": None,
        "vcpus": 48,
        "memory_mb": 196608,
        "local_gb": 240,
        "vcpus_used": r.randrange(48),
        "memory_mb_used": r.randrange(196608),
        "local_gb_used": r.randrange(240),
        "hypervisor_type": "QEMU",
        "hypervisor_version": 6002000,
        "cpu_info": json.dumps(
            {
                "arch": "x86_64",
                "model": "Cascadelake-Server-noTSX",
                "vendor": "Intel",
                "topology": {"cells": 2, "sockets": 1, "cores": 24, "threads": 2},
                "features": ["sse4.2", "avx2", "avx512f", "vmx", "pdpe1gb"],
            }
        ),
        "disk_available_least": 200,
        "free_ram_mb": 100000,
        "free_disk_gb": 180,
        "current_workload": 0,
        "running_vms": r.randrange(20),
        "hypervisor_hostname": v.nodes[i],
        "deleted": i + 1 if gone else 0,
        "host_ip": f"10.52.{i // 200}.{i % 200 + 10}",
        "supported_instances": '[["x86_64", "kvm", "hvm"]]',
        "pci_stats": v.pci_stats,
        "metrics": "[]",
        "extra_resources": None,
        "stats": '{"failed_builds": "0"}',
        "numa_topology": v.numa,
        "host": v.hosts[i],
        "ram_allocation_ratio": 1.0,
        "cpu_allocation_ratio": 4.0,
        "uuid": v.uuid(),
        "disk_allocation_ratio": 1.0,
        "mapped": 1,
    }


def _services(v: Values) -> List[Dict[str, object]]:
    rows = [("nova-compute", "compute", host, i % 19 == 3) for i, host in enumerate(v.hosts)]
    for n in range(3):
        rows += [
            ("nova-scheduler", "scheduler", f"ctl{n + 1:02d}", False),
            ("nova-conductor", "conductor", f"ctl{n + 1:02d}", False),
        ]
    return [
        {
            "created_at": v.time(2019, 2020),
            "updated_at": v.time(2024, 2024),
            "deleted_at": None,
            "id": i + 1,
            "host": host,
            "binary": binary,
            "topic": topic,
            "report_count": v.r.randrange(10**6, 10**7),
            "disabled": int(disabled),
            "deleted": 0,
            "disabled_reason": "maintenance" if disabled else None,
            "last_seen_up": v.time(2024, 2024),
            "forced_down": 0,
            "version": 66,
            "uuid": v.uuid(),
        }
        for i, (binary, topic, host, disabled) in enumerate(rows)
    ]


def seed_dump(log: Callable[[str], None] = print) -> bytes:
    """Load the real schemas into a throwaway MariaDB, insert seed rows, return the real mysqldump output."""
    sys.path.insert(0, str(REPO))
    from tests.support.mariadb import MariaDB

    server = MariaDB().start()
    try:
        for name in ("keystone", "nova", "nova_api", "nova_cell0", "placement"):
            server.load_schema(f"{name}.sql")
        v = Values()
        conn = server.connect()
        with conn.cursor() as cur:
            cur.execute("SET SESSION foreign_key_checks = 0")  # seed rows reference other seed copies

            def insert(db: str, table: str, rows: List[Dict[str, object]]) -> None:
                cols = list(rows[0])
                sql = (
                    f"INSERT IGNORE INTO `{db}`.`{table}` ({', '.join(f'`{c}`' for c in cols)}) "
                    f"VALUES ({', '.join(['%s'] * len(cols))})"
                )
                cur.executemany(sql, [tuple(r[c] for c in cols) for r in rows])

            for db, table in WEIGHTS:
                cur.execute(
                    "SELECT column_name, column_type FROM information_schema.columns "
                    "WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position",
                    (db, table),
                )
                columns = [(c, t.lower()) for c, t in cur.fetchall()]
                n = SEED_ROWS * (2 if table.endswith("system_metadata") else 1)
                insert(db, table, [_table_row(v, db, table, i, columns) for i in range(n)])
            insert("nova", "compute_nodes", [_compute_node(v, i) for i in range(COMPUTE_HOSTS)])
            insert("nova", "services", _services(v))
        conn.close()
        log("seed rows inserted; running mysqldump")
        return server.dump(["--single-transaction"])
    finally:
        server.stop()


# -- scaling ----------------------------------------------------------------------------------------

_MUTABLE = re.compile(
    rb"(?P<u>[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})"
    rb"|(?P<t>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)"
    rb"|(?<![0-9.])(?P<i>91\d{5})(?![0-9.])"
)
_INSERT_LINE = re.compile(rb"INSERT INTO `([^`]+)` VALUES$")


class _Mutator:
    """Rewrite one seed row for copy ``k``: fresh UUIDs (consistent within a copy), ids and clock times."""

    def __init__(self, seed: int = 11) -> None:
        self.r = random.Random(seed)
        self.clock = [
            f"{h:02d}:{m:02d}:{s:02d}".encode() for h in range(24) for m in range(60) for s in range(60)
        ]
        self.uuids: Dict[bytes, bytes] = {}
        self.offset = 0

    def start_copy(self, k: int, stride: int) -> None:
        self.uuids.clear()
        self.offset = k * stride

    def _sub(self, m: re.Match) -> bytes:
        u = m.group("u")
        if u is not None:
            new = self.uuids.get(u)
            if new is None:
                new = str(uuid.UUID(int=self.r.getrandbits(128), version=4)).encode()
                self.uuids[u] = new
            return new
        t = m.group("t")
        if t is not None:
            return t[:11] + self.clock[self.r.randrange(86400)]
        return str(int(m.group("i")) - SEED_ID + 1 + self.offset).encode()

    def rows(self, row: bytes) -> bytes:
        return _MUTABLE.sub(self._sub, row)


class _Writers:
    """Write the same logical dump in both layouts at once."""

    def __init__(self, paths: Dict[str, Path]) -> None:
        self.files = {style: open(path, "wb") for style, path in paths.items()}  # noqa: SIM115

    def line(self, style: Optional[str], data: bytes) -> None:
        for s, f in self.files.items():
            if style is None or s == style:
                f.write(data)

    def table_rows(self, table: bytes, rows: Iterator[bytes]) -> int:
        """Write rows (each ``(…)`` without separator) as extended INSERTs in each layout; returns bytes."""
        head_maria = b"INSERT INTO `" + table + b"` VALUES\n"
        head_mysql = b"INSERT INTO `" + table + b"` VALUES "
        maria = self.files.get("mariadb")
        mysql = self.files.get("mysql")
        written = 0
        pending: List[bytes] = []
        size = 0
        for row in rows:
            pending.append(row)
            size += len(row) + 1
            if size >= NET_BUFFER_LENGTH:
                written += self._flush(pending, head_maria, head_mysql, maria, mysql)
                pending, size = [], 0
        if pending:
            written += self._flush(pending, head_maria, head_mysql, maria, mysql)
        return written

    @staticmethod
    def _flush(rows: List[bytes], head_maria: bytes, head_mysql: bytes, maria, mysql) -> int:  # noqa: ANN001
        n = 0
        if maria is not None:
            block = head_maria + b",\n".join(rows) + b";\n"
            maria.write(block)
            n = len(block)
        if mysql is not None:
            block = head_mysql + b",".join(rows) + b";\n"
            mysql.write(block)
            n = n or len(block)
        return n

    def close(self) -> None:
        for f in self.files.values():
            f.close()


def _mysql_header(line: bytes) -> Optional[bytes]:
    """The MySQL 8 spelling of MariaDB-only header lines (None drops the line)."""
    if line.startswith(b"/*M!999999") or line.startswith(b"/*!999999"):
        return None
    if line.startswith(b"-- MariaDB dump"):
        return b"-- MySQL dump 10.13  Distrib 8.0.36, for Linux (x86_64)\n"
    if line.startswith(b"-- Server version"):
        return b"-- Server version\t8.0.36\n"
    return line


def scale(seed: bytes, target_bytes: int, paths: Dict[str, Path], log: Callable[[str], None] = print) -> None:
    """Write ``seed`` scaled so that its ballast tables total about ``target_bytes``, in each layout."""
    total_weight = sum(WEIGHTS.values())
    mut = _Mutator()
    out = _Writers(paths)
    db: Optional[bytes] = None
    lines = iter(seed.splitlines(keepends=True))
    try:
        for line in lines:
            if line.startswith(b"USE `"):
                db = line[5 : line.index(b"`", 5)]
            if line.startswith((b"-- MariaDB dump", b"-- Server version", b"/*M!999999", b"/*!999999")):
                out.line("mariadb", line)
                mysql_line = _mysql_header(line)
                if mysql_line is not None:
                    out.line("mysql", mysql_line)
                continue
            m = _INSERT_LINE.match(line.rstrip(b"\r\n"))
            if m is None:
                out.line(None, line)
                continue
            table = m.group(1)
            rows: List[bytes] = []
            for row_line in lines:
                row = row_line.rstrip(b"\r\n")
                rows.append(row[:-1])  # drop the ',' or ';'
                if row.endswith(b";"):
                    break
            key = ((db or b"").decode(), table.decode())
            weight = WEIGHTS.get(key)
            if weight is None:
                out.table_rows(table, iter(rows))
                continue
            want = int(target_bytes * weight / total_weight)
            written = out.table_rows(table, _replay(rows, want, mut))
            log(f"  {key[0]}.{key[1]}: {written / 1e6:.1f} MB")
    finally:
        out.close()


def _replay(rows: List[bytes], want: int, mut: _Mutator) -> Iterator[bytes]:
    """The seed rows as they are, then mutated copies, until about ``want`` bytes were produced."""
    produced = 0
    for row in rows:
        produced += len(row) + 2
        yield row
    k = 1
    while produced < want:
        mut.start_copy(k, len(rows))
        for row in rows:
            new = mut.rows(row)
            produced += len(new) + 2
            yield new
            if produced >= want:
                break
        k += 1


# -- cache ------------------------------------------------------------------------------------------

COMPRESSORS = {
    "gz": ["gzip", "-6", "-c"],  # Chameleon's backup job pipes mysqldump into plain gzip
    "bz2": ["bzip2", "-9", "-c"],  # the original tool's mysql_backup_*.sql.bz2
    "zst": ["zstd", "-3", "-q", "-c"],
    "xz": ["xz", "-1", "-T2", "-c"],
}


def dump_path(style: str, size_mb: int, ext: str = "") -> Path:
    name = f"nova-{style}-{size_mb}MB-v{GEN_VERSION}.sql"
    return DATA / (name + ("." + ext if ext else ""))


def ensure_dumps(
    size_mb: int, styles: Sequence[str], compressions: Sequence[str], log: Callable[[str], None] = print
) -> Dict[Tuple[str, str], Path]:
    """Generate (or reuse) the plain dumps and their compressed copies; returns {(style, ext): path}."""
    DATA.mkdir(parents=True, exist_ok=True)
    plain = {s: dump_path(s, size_mb) for s in styles}
    missing = {s: p for s, p in plain.items() if not p.exists()}
    if missing:
        seed_file = DATA / f"seed-v{GEN_VERSION}.sql"
        if not seed_file.exists():
            log("seeding a throwaway MariaDB with the real OpenStack schemas …")
            tmp = seed_file.with_suffix(".tmp")
            tmp.write_bytes(seed_dump(log))
            tmp.rename(seed_file)
        log(f"scaling to {size_mb} MB: {', '.join(str(p) for p in missing.values())}")
        tmp_paths = {s: p.with_suffix(".sql.tmp") for s, p in missing.items()}
        scale(seed_file.read_bytes(), size_mb * 1_000_000, tmp_paths, log)
        for s, p in missing.items():
            tmp_paths[s].rename(p)
    result: Dict[Tuple[str, str], Path] = {}
    jobs: List[Tuple[subprocess.Popen, Path, Path]] = []
    for style in styles:
        for ext in compressions:
            target = dump_path(style, size_mb, ext)
            result[(style, ext)] = target
            if target.exists():
                continue
            if shutil.which(COMPRESSORS[ext][0]) is None:
                raise SystemExit(f"{COMPRESSORS[ext][0]} is not installed")
            tmp = target.with_name(target.name + ".tmp")
            log(f"compressing {target.name} ({' '.join(COMPRESSORS[ext])})")
            with open(plain[style], "rb") as src, open(tmp, "wb") as dst:
                jobs.append((subprocess.Popen(COMPRESSORS[ext], stdin=src, stdout=dst), tmp, target))
            if len(jobs) >= (os.cpu_count() or 1):
                _finish(jobs.pop(0))
    for job in jobs:
        _finish(job)
    return result


def _finish(job: Tuple[subprocess.Popen, Path, Path]) -> None:
    proc, tmp, target = job
    if proc.wait() != 0:
        raise SystemExit(f"compressing {target} failed")
    tmp.rename(target)
