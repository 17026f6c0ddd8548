"""Events from a big openstack_audit Parquet export: ``machines --audit-dir`` and ``instances --source audit``,
time and peak RSS against ``pyarrow.parquet.read_table`` of the same files in the same run.

    python benchmarks/audit_events.py [--rows 1000000] [--repeat 3] [--only instances]

Writes two exports of ``--rows`` audit rows each, in a child process:

* hosts: ``audit_nova_compute_nodes`` (90 %) and ``audit_nova_services`` (10 %) of 5,000 hosts, from
  the vm fixture's real rows: a backfill, then trigger rows (capacity changes; disable, enable);
* instances: ``audit_nova_instances`` (20 %), ``audit_nova_instance_actions`` (30 %) and
  ``audit_nova_instance_actions_events`` (50 %), from the instance fixture's real rows: each instance
  inserted then updated, each action and event inserted without a finish time and updated with it (as
  Nova writes them), the first tenth backfilled.

Then, each in its own process (median wall time of ``--repeat`` runs; peak RSS is the child's
``ru_maxrss``): ``read_table`` of every file of the export (the baseline: columns decoded, no Python
objects), and the command itself (csv, hmac-sha256) with the export as its only input.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

TEMPLATES = ROOT / "tests" / "fixtures" / "audit" / "instances" / "audit_rows.json"
GROUP = 128 * 1024

from audit_parquet import append_rows  # noqa: E402

HOST_TEMPLATES = ROOT / "tests" / "fixtures" / "audit" / "vm" / "audit_rows.json"
HOSTS = 5000


def generate_hosts(directory: Path, rows: int) -> None:
    """The host tables of an export of ``rows`` rows: 5,000 hosts (compute node ``r<rack>-n<host>``, its
    nova-compute service on ``cmp-<host>``), a backfill of both, then trigger rows in time order — 90 %
    compute node UPDATEs (capacity changes), 10 % service UPDATEs (disable, enable)."""
    import orjson

    templates = json.loads(HOST_TEMPLATES.read_text())
    start = dt.datetime(2024, 1, 1)
    node_sample = next(
        r["data"] for r in templates["nova_compute_nodes"] if r["data"].get("deleted_at") is None
    )
    service_sample = next(
        r["data"] for r in templates["nova_services"] if r["data"]["binary"] == "nova-compute"
    )
    for table, share in (("nova_compute_nodes", 0.9), ("nova_services", 0.1)):
        count = int(rows * share) if table == "nova_compute_nodes" else rows - int(rows * 0.9)
        path = directory / f"openstack_audit.audit_{table}.parquet"
        writer = None
        for offset in range(0, count, GROUP):
            n = min(GROUP, count - offset)
            ids, types, event_times, by, at, data = [], [], [], [], [], []
            for i in range(offset, offset + n):
                host = i % HOSTS
                created = start - dt.timedelta(days=30 + host % 300)
                backfill = i < HOSTS
                when = start + dt.timedelta(seconds=60 * i)
                if table == "nova_compute_nodes":
                    record = dict(node_sample, id=host + 1, host=f"cmp-{host}", vcpus=16 + (i // HOSTS) % 96)
                    record["hypervisor_hostname"] = f"r{host % 40}-n{host:05d}.example"
                else:
                    record = dict(service_sample, id=host + 1, host=f"cmp-{host}", disabled=(i // HOSTS) % 2)
                record["created_at"] = created.isoformat(sep=" ")
                ids.append(host + 1)
                types.append("INSERT" if backfill else "UPDATE")
                event_times.append(created if backfill else when)
                by.append("backfill" if backfill else "nova@10.0.0.5")
                at.append(start if backfill else when)
                data.append(orjson.dumps(record).decode())
            writer = append_rows(writer, path, offset, ids, types, event_times, by, at, data)
        assert writer is not None
        writer.close()


def generate_instances(directory: Path, rows: int) -> None:
    """The instance tables of an export of ``rows`` rows (see the module's docstring)."""
    import orjson

    templates = json.loads(TEMPLATES.read_text())
    start = dt.datetime(2024, 1, 1)
    shares = {"nova_instances": 0.2, "nova_instance_actions": 0.3, "nova_instance_actions_events": 0.5}
    counts = {t: int(rows * s) for t, s in shares.items()}
    counts["nova_instance_actions_events"] += rows - sum(counts.values())
    instances = counts["nova_instances"] // 2
    actions = counts["nova_instance_actions"] // 2
    for table, count in counts.items():
        sample = templates[table][-1]["data"]
        path = directory / f"openstack_audit.audit_{table}.parquet"
        writer = None
        for offset in range(0, count, GROUP):
            n = min(GROUP, count - offset)
            ids, types, event_times, by, at, data = [], [], [], [], [], []
            for i in range(offset, offset + n):
                row_id, second = i // 2 + 1, i % 2  # an INSERT, then its UPDATE
                when = start + dt.timedelta(seconds=20 * row_id + 10 * second)
                record = dict(sample)
                record["id"] = row_id
                if table == "nova_instances":
                    record["uuid"] = f"{row_id:08x}-1111-4222-8333-{row_id:012x}"
                    record["hostname"] = f"vm-{row_id}"
                    record["node"] = None if second == 0 else f"r{row_id % 40}-n{row_id % 5000:05d}.example"
                    record["host"] = None if second == 0 else f"cmp-{row_id % 5000}"
                elif table == "nova_instance_actions":
                    owner = row_id % instances + 1
                    record["instance_uuid"] = f"{owner:08x}-1111-4222-8333-{owner:012x}"
                    record["created_at"] = record["start_time"] = when.isoformat(sep=" ")
                    record["finish_time"] = (
                        (when + dt.timedelta(seconds=30)).isoformat(sep=" ") if second else None
                    )
                else:
                    record["action_id"] = row_id % actions + 1
                    record["start_time"] = when.isoformat(sep=" ")
                    record["finish_time"] = (
                        (when + dt.timedelta(seconds=9)).isoformat(sep=" ") if second else None
                    )
                    record["result"] = "Success" if second else None
                backfill = i < count // 10
                ids.append(row_id)
                types.append("UPDATE" if second else "INSERT")
                event_times.append(when)
                by.append("backfill" if backfill else "nova@10.0.0.5")
                at.append(start + dt.timedelta(days=400) if backfill else when)
                data.append(orjson.dumps(record).decode())
            writer = append_rows(writer, path, offset, ids, types, event_times, by, at, data)
        assert writer is not None
        writer.close()


def read_table(directory: str) -> None:
    import pyarrow.parquet as pq

    print(sum(pq.read_table(path).num_rows for path in sorted(Path(directory).glob("*.parquet"))))


def timed(args, env=None):
    start = time.perf_counter()
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{args} failed: {err[-2000:]}")
    return time.perf_counter() - start, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", choices=("hosts", "instances"), help="one of the two exports")
    parser.add_argument("--generate", nargs=2, metavar=("KIND", "DIR"), help=argparse.SUPPRESS)
    parser.add_argument("--read-table", metavar="DIR", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.read_table:
        read_table(args.read_table)
        return
    if args.generate:
        kind, target = args.generate
        if kind == "hosts":
            generate_hosts(Path(target), args.rows)
        else:
            generate_instances(Path(target), args.rows)
        return
    env = dict(os.environ, PYTHONPATH=str(ROOT), STARCOMPACTOR_MASKING_KEY="bench", TQDM_DISABLE="1")
    with tempfile.TemporaryDirectory(prefix="sc-audit-events-") as tmp:
        work = Path(tmp)
        commands = {
            "hosts": ["machines", "--audit-dir", str(work / "hosts")],
            "instances": ["instances", "--source", "audit", "--audit-dir", str(work / "instances")],
        }
        print(
            f"{'export':<10} {'run':<28} {'wall s':>8} {'x read_table':>13} {'rows/s':>10} {'peak RSS MB':>12}"
        )
        for kind, command in commands.items():
            if args.only and kind != args.only:
                continue
            (work / kind).mkdir()
            t = time.perf_counter()
            subprocess.run(
                [sys.executable, __file__, "--rows", str(args.rows), "--generate", kind, str(work / kind)],
                check=True,
            )
            size = sum(p.stat().st_size for p in (work / kind).iterdir()) / 1e6
            print(
                f"{kind}: {args.rows:,} rows, {size:.1f} MB of Parquet, written in {time.perf_counter() - t:.1f} s"
            )
            runs = {"read_table": [], "ours": []}
            for _ in range(args.repeat):  # interleaved: the machine is shared
                runs["read_table"].append(timed([sys.executable, __file__, "--read-table", str(work / kind)]))
                out = work / f"{kind}.csv"
                runs["ours"].append(
                    timed([sys.executable, "-m", "starcompactor", *command, "--quiet", str(out)], env)
                )
            base = statistics.median(r[0] for r in runs["read_table"])
            for name, results in runs.items():
                walls = sorted(r[0] for r in results)
                wall = statistics.median(walls)
                label = (
                    "read_table"
                    if name == "read_table"
                    else " ".join(command[:3] if kind == "instances" else command[:2])
                )
                print(
                    f"{kind:<10} {label:<28} {wall:8.2f} {wall / base:13.2f} {args.rows / wall:10,.0f} "
                    f"{max(r[1] for r in results):12.0f}   (range {walls[0]:.2f}–{walls[-1]:.2f})"
                )


if __name__ == "__main__":
    main()
