"""``starcompactor report`` on a large instance trace: time and peak RSS against reading the same file.

    python benchmarks/report.py                          # 10,000,000 events (generated once: ~1.5 min, 3.1 GB)
    python benchmarks/report.py --events 1000000 --rounds 3
    python benchmarks/report.py --events 1000000,10000000 # peak RSS at two sizes: flat memory

The trace comes from benchmarks/_trace_gen.py (our csv format, checked against the writer). Each run is
its own process, timed with its peak RSS (``wait4``); in every round, one after the other on the same
file (in the page cache after the first run):

* ``wc -l`` — reading the bytes;
* ``pyarrow.csv.read_csv`` of the whole file (all columns, multi-threaded) — parsing it once; it holds
  the whole table in memory, the report does not;
* ``pyarrow.csv.open_csv`` over the whole file (pyarrow's streaming reader: bounded memory, as ours);
* ``starcompactor report TRACE -o … --json …`` — ours: read, aggregate, plot, write.

With ``--formats csv,parquet``, the same trace as Parquet (our writer's schema, converted once with pyarrow and
cached beside it) is timed too, against ``pyarrow.parquet.read_table`` of the whole file.

Ratios are ours / baseline, per round; the table gives each round and the medians.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import List, Sequence, Tuple

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

READ_CSV = "import sys, pyarrow.csv as c; t = c.read_csv(sys.argv[1]); print(t.num_rows, file=sys.stderr)"
STREAM_CSV = (
    "import sys, pyarrow.csv as c; print(sum(b.num_rows for b in c.open_csv(sys.argv[1], "
    "read_options=c.ReadOptions(block_size=16 << 20))), file=sys.stderr)"
)


TO_PARQUET = """
import json, sys, pyarrow as pa, pyarrow.csv as c, pyarrow.parquet as pq
source, target = sys.argv[1], sys.argv[2]
ts, f, s = pa.timestamp("s"), pa.float64(), pa.string()
schema = pa.schema([("INSTANCE_UUID", s), ("EVENT", s), ("START_TIME", ts), ("START_SEC", f), ("FINISH_TIME", ts),
    ("FINISH_SEC", f), ("EVENT_DURATION", f), ("RESULT", s), ("INSTANCE_NAME", s), ("USER_ID", s), ("PROJECT_ID", s),
    ("HOST_NAME (PHYSICAL)", s), ("PROPERTIES", s)])
convert = c.ConvertOptions(column_types=dict(zip(schema.names, schema.types)), strings_can_be_null=True)
with pq.ParquetWriter(target + ".tmp", schema) as out:
    for batch in c.open_csv(source, read_options=c.ReadOptions(block_size=64 << 20), convert_options=convert):
        out.write_batch(batch.select(schema.names).cast(schema))
manifest = json.load(open(source + ".manifest.json"))
manifest["format"] = "parquet"
json.dump(manifest, open(target + ".manifest.json", "w"), indent=2)
import os; os.replace(target + ".tmp", target)
"""
READ_PARQUET = (
    "import sys, pyarrow.parquet as pq; print(pq.read_table(sys.argv[1]).num_rows, file=sys.stderr)"
)


def run(argv: Sequence[str]) -> Tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one command."""
    start = time.perf_counter()
    proc = subprocess.Popen(list(argv), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=REPO)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(argv)} failed: {err[-2000:]}")
    return wall, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", default="10000000", help="comma-separated trace sizes (events)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--formats", default="csv", help="csv, parquet or csv,parquet (default csv)")
    args = parser.parse_args()
    from _trace_gen import trace_path

    print(f"# {platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    summary: List[str] = []
    for events in [int(n) for n in args.events.split(",")]:
        trace = trace_path(events)
        if not trace.exists():  # generated in a child: a fork would inherit this process's peak RSS
            code = f"import sys; sys.path[:0] = [{str(HERE)!r}, {str(REPO)!r}]; import _trace_gen; _trace_gen.ensure_instance_trace({events})"
            subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)
        size = trace.stat().st_size
        print(f"\n{events:,} events, {size / 1e9:.2f} GB: {trace}", flush=True)
        formats = args.formats.split(",")
        if "parquet" in formats:
            summary.append(parquet_rounds(trace, events, args.rounds))
        if "csv" not in formats:
            continue
        rows = []
        with tempfile.TemporaryDirectory(prefix="report-bench-") as tmp:
            page, numbers = Path(tmp) / "report.html", Path(tmp) / "report.json"
            ours = [sys.executable, "-m", "starcompactor", "report", str(trace), "-o", str(page), "--json", str(numbers), "-q"]  # fmt: skip
            for round_ in range(1, args.rounds + 1):
                wc = run(["wc", "-l", str(trace)])
                arrow = run([sys.executable, "-c", READ_CSV, str(trace)])
                stream = run([sys.executable, "-c", STREAM_CSV, str(trace)])
                mine = run(ours)
                rows.append((wc, arrow, stream, mine))
                print(
                    f"round {round_}: wc -l {wc[0]:.1f} s; read_csv {arrow[0]:.1f} s ({arrow[1]:.0f} MB); "
                    f"open_csv {stream[0]:.1f} s ({stream[1]:.0f} MB); report {mine[0]:.1f} s ({mine[1]:.0f} MB)",
                    flush=True,
                )
            page_size = page.stat().st_size
        print(
            "\n| round | wc -l (s) | read_csv (s) | open_csv (s) | report (s) | report / read_csv | "
            "report / open_csv | read_csv RSS (MB) | open_csv RSS (MB) | report RSS (MB) |\n"
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
        )
        for i, (wc, arrow, stream, mine) in enumerate(rows, 1):
            print(
                f"| {i} | {wc[0]:.1f} | {arrow[0]:.1f} | {stream[0]:.1f} | {mine[0]:.1f} | {mine[0] / arrow[0]:.2f} | "
                f"{mine[0] / stream[0]:.2f} | {arrow[1]:.0f} | {stream[1]:.0f} | {mine[1]:.0f} |"
            )
        summary.append(
            f"{events:,} events ({size / 1e9:.2f} GB): report median {statistics.median(r[3][0] for r in rows):.1f} s, "
            f"{statistics.median(r[3][0] / r[1][0] for r in rows):.2f} x read_csv, "
            f"{statistics.median(r[3][0] / r[2][0] for r in rows):.2f} x open_csv; peak RSS "
            f"{max(r[3][1] for r in rows):.0f} MB (read_csv {max(r[1][1] for r in rows):.0f} MB, "
            f"open_csv {max(r[2][1] for r in rows):.0f} MB); page {page_size / 1e6:.2f} MB"
        )
    print()
    for line in summary:
        print(line)


def parquet_rounds(trace: Path, events: int, rounds: int) -> str:
    """The same trace as Parquet: the report against pyarrow reading the whole file."""
    target = trace.with_suffix(".parquet")
    if not target.exists():
        print(f"converting to {target} …", flush=True)
        subprocess.run([sys.executable, "-c", TO_PARQUET, str(trace), str(target)], check=True)
    size = target.stat().st_size
    print(f"\n{events:,} events as Parquet, {size / 1e9:.2f} GB: {target}", flush=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="report-bench-") as tmp:
        ours = [
            sys.executable,
            "-m",
            "starcompactor",
            "report",
            str(target),
            "-o",
            str(Path(tmp) / "r.html"),
            "-q",
        ]
        for round_ in range(1, rounds + 1):
            base = run([sys.executable, "-c", READ_PARQUET, str(target)])
            mine = run(ours)
            rows.append((base, mine))
            print(f"round {round_}: read_table {base[0]:.1f} s ({base[1]:.0f} MB); report {mine[0]:.1f} s "
                  f"({mine[1]:.0f} MB): {mine[0] / base[0]:.2f} x", flush=True)  # fmt: skip
    return (
        f"{events:,} events as Parquet ({size / 1e9:.2f} GB): report median "
        f"{statistics.median(m[0] for _, m in rows):.1f} s, {statistics.median(m[0] / b[0] for b, m in rows):.2f} x "
        f"pyarrow read_table; peak RSS {max(m[1] for _, m in rows):.0f} MB (read_table {max(b[1] for b, _ in rows):.0f} MB)"
    )


if __name__ == "__main__":
    main()
