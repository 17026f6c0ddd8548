"""The audit log's cost: ``machines`` over a history of big dumps that carry ``openstack_audit``, stitched
(the default) against ``--no-audit-log`` (snapshots only) on the same files, in the same run.

    python benchmarks/audit_stitch.py                  # 4 snapshots of a 100 MB dump, 3 rounds
    python benchmarks/audit_stitch.py --size-mb 1100 --snapshots 3 --rounds 3
    python benchmarks/audit_stitch.py --baseline-tree ../main    # main's code in the same rounds

The dump is ``benchmarks/_gen.py``'s (real schemas, real mysqldump, scaled; cached in benchmarks/data/)
with an ``openstack_audit`` database added where ``--all-databases`` puts it (after ``nova_cell0``): the
role's two Nova tables (``CREATE TABLE`` as the real mysqldump wrote them for the vm fixture), a backfill
of every compute node and service of the dump, then ``--changes`` trigger rows per host over the year
before (capacity changes, disable/enable), with the rows' real ``data`` JSON. The history is that file
linked under several snapshot names; only the newest is read for its log (in the same pass as its
snapshot). The two runs alternate, each in its own process; medians and ranges of ``--rounds`` rounds.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Tuple

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO))

FIXTURE_DUMP = (
    REPO / "tests" / "fixtures" / "audit" / "vm" / "dumps" / "mysqldump-2024-03-09T03:00:00Z.mysql.gz"
)
VERSION = 2  #: bump when the section's content changes


def create_tables() -> Dict[str, bytes]:
    """The two audit tables' structure, as the real mysqldump wrote it for the vm fixture."""
    text = gzip.decompress(FIXTURE_DUMP.read_bytes())
    out = {}
    for table in ("audit_nova_compute_nodes", "audit_nova_services"):
        start = text.index(f"DROP TABLE IF EXISTS `{table}`;".encode())
        end = text.index(b"LOCK TABLES", start)
        out[table] = text[start:end]
    return out


def role_columns() -> Dict[str, List[str]]:
    """The columns the role's triggers capture in ``data``, as the vm fixture's rows have them."""
    rows = json.loads((FIXTURE_DUMP.parents[1] / "audit_rows.json").read_text())
    return {f"audit_{table}": list(values[0]["data"]) for table, values in rows.items()}


def sql_text(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'").replace('"', '\\"') + "'"


def audit_section(dump: Path, changes: int) -> Tuple[bytes, int]:
    """The ``openstack_audit`` section for the hosts of ``dump`` (and how many rows it holds)."""
    from starcompactor.dump import DumpReader

    reader = DumpReader(str(dump), [("nova", "compute_nodes"), ("nova", "services")])
    nodes, services = [], []
    for _db, table, row in reader:
        (nodes if table == "compute_nodes" else services).append(row)
    fmt = "%Y-%m-%d %H:%M:%S"

    captured = role_columns()

    def jsonable(row, table):
        """The row as the role's JSON_OBJECT captures it: its configured columns only."""
        return {
            k: (row[k].strftime(fmt) if isinstance(row[k], dt.datetime) else row[k])
            for k in captured[table]
            if k in row and not isinstance(row[k], bytes)
        }

    installed = dt.datetime(2023, 1, 1, 12)
    rows: Dict[str, List[str]] = {"audit_nova_compute_nodes": [], "audit_nova_services": []}
    for table, source in (("audit_nova_compute_nodes", nodes), ("audit_nova_services", services)):
        for row in source:
            data = jsonable(row, table)
            created = row.get("created_at") or installed
            rows[table].append(
                f"{row['id']},'INSERT','{created.strftime(fmt)}','backfill','{installed.strftime(fmt)}',{sql_text(json.dumps(data))})"
            )
    for k in range(changes):
        when = installed + dt.timedelta(days=1 + k * 300 // max(changes, 1), hours=k % 24)
        for i, row in enumerate(nodes if k % 4 == 0 else services):
            table = "audit_nova_compute_nodes" if k % 4 == 0 else "audit_nova_services"
            data = jsonable(row, table)
            stamp = (when + dt.timedelta(minutes=i)).strftime(fmt)
            if k % 4 == 0:
                data["vcpus"] = (data.get("vcpus") or 0) + k
            else:
                data["disabled"] = k % 2
            rows[table].append(
                f"{row['id']},'UPDATE','{stamp}','nova@10.0.0.5','{stamp}',{sql_text(json.dumps(data))})"
            )
    parts = [
        b"\n--\n-- Current Database: `openstack_audit`\n--\n\n"
        b"CREATE DATABASE /*!32312 IF NOT EXISTS*/ `openstack_audit` /*!40100 DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci */;\n\n"
        b"USE `openstack_audit`;\n\n"
    ]
    total = 0
    for table, structure in create_tables().items():
        parts.append(structure)
        parts.append(f"LOCK TABLES `{table}` WRITE;\n".encode())
        values = [f"({i},{v}" for i, v in enumerate(rows[table], 1)]
        total += len(values)
        for start in range(0, len(values), 1000):
            chunk = values[start : start + 1000]
            parts.append(f"INSERT INTO `{table}` VALUES\n".encode() + ",\n".join(chunk).encode() + b";\n")
        parts.append(b"UNLOCK TABLES;\n")
    return b"".join(parts), total


def with_log(size_mb: int, changes: int) -> Tuple[Path, int]:
    """The generated dump with the section, gzip (cached beside it)."""
    from _gen import DATA, ensure_dumps

    plain = ensure_dumps(size_mb, ["mariadb"], ["gz"], log=lambda m: print(m, file=sys.stderr))[
        ("mariadb", "gz")
    ]
    plain = Path(str(plain)[: -len(".gz")])
    target = DATA / f"{plain.stem}-audit{changes}-v{VERSION}.sql.gz"
    meta = target.with_suffix(".rows")
    if target.exists() and meta.exists():
        return target, int(meta.read_text())
    section, rows = audit_section(plain, changes)
    marker = b"\n--\n-- Current Database: `placement`"
    tmp = target.with_name(target.name + ".tmp")
    with (
        open(plain, "rb") as src,
        subprocess.Popen(["gzip", "-6", "-c"], stdin=subprocess.PIPE, stdout=open(tmp, "wb")) as gz,
    ):
        assert gz.stdin is not None
        tail = b""
        inserted = False
        while True:
            chunk = src.read(1 << 24)
            if not chunk:
                break
            data = tail + chunk
            at = data.find(marker) if not inserted else -1
            if at >= 0:
                gz.stdin.write(data[:at] + section + data[at:])
                inserted, tail = True, b""
                continue
            keep = len(marker)
            gz.stdin.write(data[:-keep])
            tail = data[-keep:]
        gz.stdin.write(tail)
        gz.stdin.close()
    if not inserted:
        raise SystemExit("no `placement` database in the generated dump: nowhere to put openstack_audit")
    tmp.rename(target)
    meta.write_text(str(rows))
    return target, rows


def timed(argv, env, cwd) -> Tuple[float, float, float]:
    """Wall time, peak RSS (MB) of the main process, and CPU time (user + system, the worker processes
    included: they are the command's waited-for children) of one run."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=cwd)
    _, status, usage = os.wait4(proc.pid, 0)
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(argv)} failed: {err[-2000:]}")
    return time.perf_counter() - start, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=100)
    parser.add_argument("--snapshots", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--changes", type=int, default=40, help="trigger rows per host")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--baseline-tree",
        type=Path,
        help="another checkout (e.g. of main): its two runs alternate with ours in each round",
    )
    args = parser.parse_args()
    dump, rows = with_log(args.size_mb, args.changes)
    work = Path(tempfile.mkdtemp(prefix="sc-bench-stitch-"))
    try:
        history = work / "history"
        history.mkdir()
        for k in range(1, args.snapshots + 1):
            target = history / f"mysqldump-2024-01-{k:02d}T03:00:00Z.mysql.gz"
            try:
                os.link(dump, target)
            except OSError:
                target.symlink_to(dump)
        trees = {"": REPO}
        if args.baseline_tree is not None:
            trees["baseline "] = args.baseline_tree.resolve()
        base = [
            sys.executable,
            "-m",
            "starcompactor",
            "machines",
            "--backup-dir",
            str(history),
            "--workers",
            str(args.workers),
            "--quiet",
        ]
        runs: Dict[str, List[Tuple[float, float, float]]] = {}
        for _ in range(args.rounds):
            for label, tree in trees.items():
                env = dict(
                    os.environ, PYTHONPATH=str(tree), STARCOMPACTOR_MASKING_KEY="bench", TQDM_DISABLE="1"
                )
                for name, extra in (("--no-audit-log", ["--no-audit-log"]), ("stitched", [])):
                    out = str(work / f"{label.strip() or 'ours'}-{name.strip('-')}.csv")
                    # in the tree: `python -m` puts the working directory first on sys.path
                    runs.setdefault(label + name, []).append(timed([*base, *extra, out], env, tree))
        manifest = json.loads((work / "ours-stitched.csv.manifest.json").read_text())
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(
        f"history: {args.snapshots} × {dump.name} ({os.path.getsize(dump) / 1e6:.0f} MB gzip), openstack_audit: {rows:,} rows"
    )
    print(f"stitched trace: {manifest['events']} events, by source {manifest['events_by_source']}")
    print(
        f"{'run':<25} {'median s':>9} {'range s':>14} {'x --no-audit-log':>17} "
        f"{'CPU s':>6} {'CPU x':>6} {'peak RSS MB':>12}"
    )
    for label in trees:
        plain = runs[label + "--no-audit-log"]
        wall0 = statistics.median(w for w, _, _ in plain)
        cpu0 = statistics.median(c for _, _, c in plain)
        for name in ("--no-audit-log", "stitched"):
            results = runs[label + name]
            walls = sorted(w for w, _, _ in results)
            median, cpu = statistics.median(walls), statistics.median(c for _, _, c in results)
            print(
                f"{label + name:<25} {median:9.2f} {walls[0]:6.2f}–{walls[-1]:<6.2f} {median / wall0:17.3f} "
                f"{cpu:6.2f} {cpu / cpu0:6.3f} {max(r for _, r, _ in results):12.0f}"
            )
        pairs = [s[0] / p[0] for s, p in zip(runs[label + "stitched"], plain)]
        print(f"{label}per round (stitched / snapshots only): {', '.join(f'{r:.3f}' for r in pairs)}")


if __name__ == "__main__":
    main()
