"""The openstack_audit Parquet reader on a big export: time and peak RSS against pyarrow in the same run.

    python benchmarks/audit_parquet.py [--rows 1000000] [--repeat 3] [--batch-rows 16384]

Writes an export of ``--rows`` audit rows (``openstack_audit.audit_nova_compute_nodes.parquet`` with 90 %
of them, ``audit_nova_services`` with the rest) whose ``data`` values are the real rows of the vm fixture
(tests/fixtures/audit/vm/audit_rows.json) with fresh ids, times and capacities; row groups of 128 Ki
rows, naive nanosecond timestamps (as pandas writes them), zstd. Then, each in its own process:

* ``ours``: ``read_parquet_log(dir)`` and every row of every table through ``AuditLog.batches`` — typed
  :class:`AuditRow` with ``data`` parsed;
* ``ours-summary``: ``AuditLog.summary()`` (row counts, backfill runs: two columns only);
* ``read_table`` (baseline): ``pyarrow.parquet.read_table`` of each file — columns decoded, no Python
  objects;
* ``read_table+rows``: the straightforward way: ``read_table(...).to_pylist()`` and ``orjson.loads`` of
  each ``data`` — the same Python objects as ours, built from a whole table in memory.

Wall time is the median of ``--repeat`` runs; peak RSS is the child's ``ru_maxrss``. Ratios are against
``read_table`` measured in the same run.
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TEMPLATES = ROOT / "tests" / "fixtures" / "audit" / "vm" / "audit_rows.json"
GROUP = 128 * 1024


def append_rows(writer, path: Path, offset: int, ids, types, event_times, by, at, data):
    """Write audit rows ``offset + 1 …`` (the export's columns, naive ns times) as one row group of the
    file at ``path``; returns the writer, made on the first call (``writer`` None)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    batch = pa.table(
        {
            "audit_id": pa.array(range(offset + 1, offset + len(ids) + 1), pa.int64()),
            "id": pa.array(ids, pa.int64()),
            "audit_event_type": pa.array(types, pa.string()),
            "audit_event_time": pa.array(event_times, pa.timestamp("ns")),
            "audit_changed_by": pa.array(by, pa.string()),
            "audit_changed_at": pa.array(at, pa.timestamp("ns")),
            "data": pa.array(data, pa.string()),
        }
    )
    if writer is None:
        writer = pq.ParquetWriter(path, batch.schema, compression="zstd")
    writer.write_table(batch, row_group_size=GROUP)
    return writer


def generate(directory: Path, rows: int) -> None:
    import orjson

    templates = json.loads(TEMPLATES.read_text())
    start = dt.datetime(2024, 1, 1)
    for table, share in (("nova_compute_nodes", 0.9), ("nova_services", 0.1)):
        count = int(rows * share) if table == "nova_compute_nodes" else rows - int(rows * 0.9)
        samples = [r["data"] for r in templates[table]]
        path = directory / f"openstack_audit.audit_{table}.parquet"
        writer = None
        for offset in range(0, count, GROUP):
            n = min(GROUP, count - offset)
            ids, types, event_times, by, at, data = [], [], [], [], [], []
            for i in range(offset, offset + n):
                sample = dict(samples[i % len(samples)])
                host = i % 5000
                sample["id"] = host
                if "vcpus" in sample:
                    sample["vcpus"] = 16 + i % 96
                    sample["hypervisor_hostname"] = f"r{host % 40}-n{host:05d}.example"
                when = start + dt.timedelta(seconds=30 * i)
                backfill = i < 5000
                ids.append(host)
                types.append("INSERT" if i < 5000 else ("UPDATE" if i % 50 else "DELETE"))
                event_times.append(start - dt.timedelta(days=host % 300) if backfill else when)
                by.append("backfill" if backfill else "nova@10.0.0.5")
                at.append(start if backfill else when)
                data.append(orjson.dumps(sample).decode())
            writer = append_rows(writer, path, offset, ids, types, event_times, by, at, data)
        assert writer is not None
        writer.close()


def run(mode: str, directory: str, batch_rows: int) -> None:
    """One measured run (in a child process)."""
    files = sorted(Path(directory).glob("*.parquet"))
    count = 0
    if mode == "ours":
        from starcompactor.audit.parquet import read_parquet_log

        log = read_parquet_log(directory, batch_rows=batch_rows)
        for table in log.tables:
            for batch in log.batches(table):
                count += len(batch)
                assert batch[-1].data  # parsed
    elif mode == "ours-summary":
        from starcompactor.audit.parquet import read_parquet_log

        summary = read_parquet_log(directory).summary()
        count = sum(summary["tables"].values())
    elif mode == "read_table":
        import pyarrow.parquet as pq

        for path in files:
            count += pq.read_table(path).num_rows
    elif mode == "read_table+rows":
        import orjson
        import pyarrow.parquet as pq

        for path in files:
            rows = pq.read_table(path).to_pylist()
            for row in rows:
                row["data"] = orjson.loads(row["data"])
            count += len(rows)
    print(count)


def timed(args):
    start = time.perf_counter()
    proc = subprocess.Popen(args, stdout=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    out = proc.stdout.read().decode().strip() if proc.stdout else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{args} failed")
    return time.perf_counter() - start, usage.ru_maxrss / 1024, int(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--batch-rows", type=int, default=16384)
    parser.add_argument("--run", nargs=2, metavar=("MODE", "DIR"), help=argparse.SUPPRESS)
    parser.add_argument("--generate", metavar="DIR", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        run(args.run[0], args.run[1], args.batch_rows)
        return
    if args.generate:
        generate(Path(args.generate), args.rows)
        return
    with tempfile.TemporaryDirectory(prefix="sc-audit-bench-") as tmp:
        work = Path(tmp)
        t = time.perf_counter()
        # in a child: a big parent's peak RSS would be counted in every child it starts (Linux keeps the
        # pre-exec high-water mark in ru_maxrss)
        subprocess.run(
            [sys.executable, __file__, "--rows", str(args.rows), "--generate", str(work)], check=True
        )
        size = sum(p.stat().st_size for p in work.iterdir()) / 1e6
        print(
            f"export: {args.rows:,} rows, {size:.1f} MB of Parquet, written in {time.perf_counter() - t:.1f} s"
        )
        modes = ["read_table", "ours", "ours-summary", "read_table+rows"]
        results = {}
        for mode in modes:
            runs = [
                timed(
                    [sys.executable, __file__, "--batch-rows", str(args.batch_rows), "--run", mode, str(work)]
                )
                for _ in range(args.repeat)
            ]
            assert all(r[2] == args.rows for r in runs), runs
            results[mode] = (statistics.median(r[0] for r in runs), max(r[1] for r in runs))
        base_time, base_rss = results["read_table"]
        print(
            f"{'run':<18} {'wall s':>8} {'x read_table':>13} {'rows/s':>12} {'peak RSS MB':>12} {'x RSS':>7}"
        )
        for mode in modes:
            wall, rss = results[mode]
            print(
                f"{mode:<18} {wall:8.2f} {wall / base_time:13.2f} {args.rows / wall:12,.0f} {rss:12.0f} "
                f"{rss / base_rss:7.2f}"
            )


if __name__ == "__main__":
    main()
