"""Crafted dumps, built from a real fixture dump, that once cost the reader gigabytes or read wrong.

Each generator takes the vm fixture (``tests/fixtures/machines/vm``, a real ``mariadb-dump
--all-databases`` of Nova's schema) and changes one thing in ``nova``'s ``compute_nodes``:

* :func:`escapes`: one compute node's ``cpu_info`` is 16 MB of ``\\"`` (49 KB gzip): the tokenizer's regex
  kept ~190 bytes of state per escape (1.5 GB);
* :func:`backslashes`: the same with ``\\\\`` (escaped backslashes), which took ``re.sub`` with a function
  (~85 bytes per escape);
* :func:`long_comment`: its ``CREATE TABLE`` has a 20 MB COMMENT (53 KB gzip): sqlparse kept ~150 bytes
  per character (3.2 GB);
* :func:`many_rows`: one ``services`` row 350,000 times over (~0.4 MB gzip): every row was kept (the
  repeats of a primary key are now left out, as a restore leaves them out);
* :func:`many_hosts`: 300,000 distinct compute nodes (4 MB gzip): a snapshot keeps each (measured, not
  bounded: it is what the dump holds);
* :func:`commented_rows`: a fake compute node inside a plain ``/* … */`` comment (not data);
* :func:`duplicate_keys`: a row whose primary key repeats an earlier row's, with another host name.

Files are made at test time (in a temporary directory), never checked in: the generators are the record.
:func:`peak_rss` reads one in a child process, under an address-space limit when asked, the way
``starcompactor machines`` reads it (``read_snapshot``).
"""

from __future__ import annotations

import gzip
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, Optional, Union

from .paths import MACHINE_FIXTURES, REPO

VM_FIXTURE = MACHINE_FIXTURES / "vm" / "mysqldump-2024-01-01T03:00:00Z.mysql.gz"
NOVA_DATABASES = ("nova", "nova_cell0", "nova_cell1")


def base_dump() -> bytes:
    return gzip.decompress(VM_FIXTURE.read_bytes())


def _nova_compute_nodes(dump: bytes, table: bytes = b"compute_nodes") -> int:
    """Offset of nova's (the first) ``INSERT INTO `compute_nodes``` (nova comes before the cells)."""
    head = b"\nINSERT INTO `" + table + b"` VALUES\n"
    return dump.index(head, dump.index(b"-- Current Database: `nova`")) + 1


def _first_row(dump: bytes, table: bytes = b"compute_nodes") -> bytes:
    start = dump.index(b"\n", _nova_compute_nodes(dump, table)) + 1
    return dump[start : dump.index(b"\n", start)]


def escapes(size: int = 16 << 20, escape: bytes = b'\\"') -> bytes:
    dump = base_dump()
    row = _first_row(dump)
    cpu_info = re.search(rb"'\{\\\"arch.*?\}\}'", row)
    assert cpu_info is not None
    crafted = row.replace(cpu_info.group(), b"'" + escape * (size // len(escape)) + b"'")
    return dump.replace(row, crafted, 1)


def backslashes(size: int = 16 << 20) -> bytes:
    return escapes(size, b"\\\\")


def long_comment(size: int = 20 << 20) -> bytes:
    dump = base_dump()
    create = dump.index(b"CREATE TABLE `compute_nodes` (", dump.index(b"-- Current Database: `nova`"))
    end = dump.index(b"\n) ENGINE=", create)
    return dump[:end] + b"\n) COMMENT='" + b"x" * size + b"' ENGINE=" + dump[end + len(b"\n) ENGINE=") :]


def many_rows(count: int = 350_000, per_statement: int = 1000) -> Iterator[bytes]:
    """nova's first ``services`` row ``count`` times over, in extended INSERTs (one primary key).

    Yields the dump in pieces (it is ~40 MB): :func:`write` compresses it as it comes.
    """
    dump = base_dump()
    at = _nova_compute_nodes(dump, b"services")
    end = dump.index(b";\n", at) + 2
    row = _first_row(dump, b"services").rstrip(b",")
    statement = b"INSERT INTO `services` VALUES\n" + b",\n".join([row] * per_statement) + b";\n"
    yield dump[:end]
    for _ in range(count // per_statement):
        yield statement
    yield dump[end:]


def many_hosts(count: int = 300_000, per_statement: int = 1000) -> bytes:
    """``count`` compute nodes (each with its own id, host names and uuid) in extended INSERTs.

    Not bounded by the reader: a snapshot holds each host (~700 bytes a compute node); measured in
    benchmarks/memory.py.
    """
    dump = base_dump()
    at = _nova_compute_nodes(dump)
    end = dump.index(b";\n", at) + 2
    row = _first_row(dump).rstrip(b",")
    template = re.sub(rb"^(\('[^']*','[^']*',NULL,)1,", rb"\g<1>%d,", row)
    template = template.replace(b"'r2-n01.vm.example'", b"'r%d-n%d.vm.example'").replace(
        b"'cmp-a'", b"'cmp-%d'"
    )
    template = template.replace(b"'00000000-0000-4000-8000-000000000001'", b"'00000000-0000-4000-8000-%012d'")
    statements = []
    for first in range(1000, 1000 + count, per_statement):
        rows = [
            template % (i, i // 100, i, i, i) for i in range(first, min(first + per_statement, 1000 + count))
        ]
        statements.append(b"INSERT INTO `compute_nodes` VALUES\n" + b",\n".join(rows) + b";\n")
    return dump[:end] + b"".join(statements) + dump[end:]


#: The host name of the fake compute node hidden in a comment.
FAKE_HOST = b"fake-n99.vm.example"


def commented_rows() -> bytes:
    dump = base_dump()
    at = _nova_compute_nodes(dump)
    fake = _first_row(dump).rstrip(b",").replace(b"'r2-n01.vm.example'", b"'" + FAKE_HOST + b"'")
    fake = re.sub(rb"^(\('[^']*','[^']*',NULL,)1,", rb"\g<1>99,", fake)
    comment = b"/*\nINSERT INTO `compute_nodes` VALUES\n" + fake + b";\n*/\n"
    return dump[:at] + comment + dump[at:]


#: The host name the repeated row (primary key 1) carries.
DUPLICATE_HOST = b"dup-n01.vm.example"


def duplicate_keys() -> bytes:
    dump = base_dump()
    at = _nova_compute_nodes(dump)
    end = dump.index(b";\n", at) + 2
    again = _first_row(dump).rstrip(b",").replace(b"'r2-n01.vm.example'", b"'" + DUPLICATE_HOST + b"'")
    return dump[:end] + b"INSERT INTO `compute_nodes` VALUES\n" + again + b";\n" + dump[end:]


CRAFTED: Dict[str, Callable[[], Union[bytes, Iterator[bytes]]]] = {
    "escapes": escapes,
    "backslashes": backslashes,
    "long-comment": long_comment,
    "many-rows": many_rows,
    "many-hosts": many_hosts,
    "commented-rows": commented_rows,
    "duplicate-keys": duplicate_keys,
}


def write(kind: str, directory: Path) -> Path:
    """The crafted dump ``kind``, gzip-compressed, as a backup file in ``directory``."""
    path = directory / f"mysqldump-2024-01-01T03:00:00Z-{kind}.sql.gz"
    made = CRAFTED[kind]()
    with gzip.GzipFile(path, "wb", compresslevel=1, mtime=0) as out:
        for piece in [made] if isinstance(made, bytes) else made:
            out.write(piece)
    return path


_CHILD = r"""
import json, resource, sys
path, limit = sys.argv[1], int(sys.argv[2])
if limit:
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
from starcompactor.machines.backups import BackupFile
from starcompactor.machines.snapshot import read_snapshot
from starcompactor.machines.state import SnapshotSettings
settings = SnapshotSettings("vm", tuple(sys.argv[3].split(",")))
out = {}
try:
    snapshot = read_snapshot(BackupFile(path, path.rsplit("/", 1)[-1]), settings)
    out["records"] = len(snapshot.hosts)
    out["hosts"] = sorted({r.host for r in snapshot.hosts})
except MemoryError:
    out["error"] = "MemoryError"
except Exception as exc:  # reported, not raised: the parent decides
    out["error"] = f"{type(exc).__name__}: {exc}"[:300]
# VmHWM: this process's own peak (ru_maxrss keeps the forking parent's across exec)
with open("/proc/self/status") as status:
    fields = dict(line.split(":", 1) for line in status if ":" in line)
hwm = [fields.get("VmHWM", "").split()[0]] if "VmHWM" in fields else []
out["vmpeak_kb"] = int(fields["VmPeak"].split()[0]) if "VmPeak" in fields else None
out["maxrss_kb"] = int(hwm[0]) if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps(out))
"""


def peak_rss(
    path: Path, *, limit: int = 0, tree: Optional[Path] = None, timeout: float = 600
) -> Dict[str, Any]:
    """Read ``path`` as a vm snapshot in a child process; its result, error and peak RSS (KB).

    ``limit`` caps the child's address space (``RLIMIT_AS``, bytes); ``tree`` runs another checkout's
    code (e.g. main at the branch point) for a before/after figure.
    """
    tree = tree or REPO
    env = dict(os.environ, PYTHONPATH=str(tree))
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(path), str(limit), ",".join(NOVA_DATABASES)],
        capture_output=True,
        env=env,
        cwd=str(tree),  # ``python -c`` looks in the working directory first
        timeout=timeout,
        check=False,
    )
    lines = done.stdout.decode(errors="replace").strip().splitlines()
    if not lines:
        return {"error": f"child died ({done.returncode}): {done.stderr.decode(errors='replace')[-300:]}"}
    return json.loads(lines[-1])
