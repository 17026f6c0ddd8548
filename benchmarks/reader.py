"""Reader benchmark: time to pull Nova's ``compute_nodes`` + ``services`` out of a big compressed dump,
as a ratio to decompression alone (``gzip -dc``, python-isal's igzip, ``bzip2 -dc``, ``zstd -dc`` …
into /dev/null) measured on the same files in the same run, plus peak RSS.

    python benchmarks/reader.py               # 1100 MB dumps (generated once, cached in benchmarks/data/)
    python benchmarks/reader.py --quick       # 100 MB, for a fast check
    python benchmarks/reader.py --compressions gz,zst --styles mariadb --repeat 5

Every run (ours and the decompressors') is its own subprocess, so its peak RSS is its own (``wait4``).
Requests measured:

* ``cells``: ``compute_nodes`` + ``services`` of ``nova`` and ``nova_cell0`` (the default configuration).
  In ``--all-databases`` order ``nova_cell0`` comes late, so this walks over almost all the ballast;
* ``nova``: the same two tables of ``nova`` only: the reader stops after ``nova.services``;
* ``whole``: a table of a database that is not in the dump: the whole file must be read (the reader
  could stop after ``nova`` for a missing ``nova.no_such_table``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

TIME = "/usr/bin/time" if os.access("/usr/bin/time", os.X_OK) else None  #: GNU time, for peak RSS

REQUESTS: Dict[str, List[Tuple[str, str]]] = {
    "cells": [(db, t) for db in ("nova", "nova_cell0") for t in ("compute_nodes", "services")],
    "nova": [("nova", "compute_nodes"), ("nova", "services")],
    "whole": [("no_such_database", "no_such_table")],
}

DECOMPRESSORS: Dict[str, List[Tuple[str, List[str]]]] = {
    "gz": [
        ("gzip -dc", ["gzip", "-dc"]),
        ("igzip (python-isal)", [sys.executable, "-m", "isal.igzip", "-dc"]),
    ],
    "bz2": [("bzip2 -dc", ["bzip2", "-dc"])],
    "zst": [("zstd -dc", ["zstd", "-dcq"])],
    "xz": [("xz -dc", ["xz", "-dc"])],
}


# -- child: one read, in its own process ------------------------------------------------------------


def child(path: str, request: str, flags: Sequence[str]) -> None:
    if "--no-isal" in flags:
        sys.modules["isal"] = None  # type: ignore[assignment]  # makes "import isal" fail: zlib fallback
    try:
        from starcompactor.dump import DumpReader
    except ImportError:  # a baseline tree from before the dump package (--baseline-tree)
        from starcompactor.statements import DumpReader  # type: ignore[no-redef]

    reader = DumpReader(path, REQUESTS[request])
    counts: Dict[str, int] = {}
    for db, table, _row in reader:
        key = f"{db}.{table}"
        counts[key] = counts.get(key, 0) + 1
    info = reader.info
    json.dump(
        {
            "rows": counts,
            "bytes_read": info.bytes_read,
            "stopped_early": info.stopped_early,
            "trailer": info.has_trailer,
            "vm_hwm": _vm_hwm(),
        },
        sys.stdout,
    )


def _vm_hwm() -> Optional[int]:
    """This process's peak resident set (Linux), in bytes."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return None


# -- parent -----------------------------------------------------------------------------------------


class Run:
    def __init__(
        self,
        label: str,
        argv: List[str],
        stdin: Optional[Path],
        kind: str,
        env: Optional[Dict[str, str]] = None,
    ) -> None:
        self.label = label
        self.env = dict(os.environ, **env) if env else None
        self.argv = argv
        self.stdin = stdin
        self.kind = kind  #: "decompressor" or a request name
        self.wall: List[float] = []
        self.cpu: List[float] = []
        self.rss: List[int] = []
        self.result: Optional[dict] = None

    def once(self) -> None:
        # ru_maxrss of a process started from this (large) Python process starts at our own RSS (Linux
        # carries the high-water mark over fork+exec), so the peak is taken by GNU time, or, failing that,
        # from the child's own VmHWM (our runs only).
        argv = self.argv
        rss_file = None
        if TIME is not None:
            fd, rss_file = tempfile.mkstemp(prefix="sc-bench-rss-")
            os.close(fd)
            argv = [TIME, "-f", "%M", "-o", rss_file, *argv]
        stdin = open(self.stdin, "rb") if self.stdin else subprocess.DEVNULL  # noqa: SIM115
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        try:
            start = time.perf_counter()
            proc = subprocess.Popen(
                argv,
                stdin=stdin,
                env=self.env,
                stdout=subprocess.PIPE if self.kind != "decompressor" else subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            out, err = proc.communicate()
            wall = time.perf_counter() - start
        finally:
            if self.stdin:
                stdin.close()  # type: ignore[union-attr]
        if proc.returncode != 0:
            raise SystemExit(
                f"{self.label} failed ({proc.returncode}): {err.decode(errors='replace')[-2000:]}"
            )
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
        if out:
            self.result = json.loads(out)
        rss = None
        if rss_file is not None:
            text = Path(rss_file).read_text().split()
            os.unlink(rss_file)
            rss = int(text[-1]) * 1024 if text else None
        if rss is None and self.result is not None:
            rss = self.result.get("vm_hwm")
        self.wall.append(wall)
        self.cpu.append(cpu)
        self.rss.append(rss or 0)

    @property
    def median(self) -> float:
        return statistics.median(self.wall)


def machine() -> str:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import importlib.metadata as md

    versions = []
    for dist in ("isal", "zstandard"):
        try:
            versions.append(f"{dist} {md.version(dist)}")
        except md.PackageNotFoundError:
            versions.append(f"{dist} missing")
    return (
        f"{os.cpu_count()} CPUs ({cpu}), Linux {platform.release()}, Python {platform.python_version()}, "
        f"{', '.join(versions)}"
    )


def bench(
    paths: Dict[Tuple[str, str], Path],
    repeat: int,
    requests: Sequence[str],
    variants: Sequence[str],
    baseline_tree: Optional[Path] = None,
) -> List[dict]:
    me = [sys.executable, str(Path(__file__).resolve()), "--child"]
    results = []
    for (style, ext), path in paths.items():
        runs: List[Run] = []
        for label, argv in DECOMPRESSORS[ext]:
            runs.append(Run(label, argv, path, "decompressor"))
        for request in requests:
            runs.append(Run(f"ours: {request}", me + [str(path), request], None, request))
            if baseline_tree is not None:
                runs.append(
                    Run(
                        f"baseline tree: {request}",
                        me + [str(path), request],
                        None,
                        request,
                        env={"PYTHONPATH": str(baseline_tree)},
                    )
                )
            for variant in variants:
                if variant == "no-isal" and ext != "gz":
                    continue
                label = {"no-isal": "zlib, no isal"}[variant]
                runs.append(
                    Run(f"ours: {request}, {label}", me + [str(path), request, f"--{variant}"], None, request)
                )
        with open(path, "rb") as f:  # warm the page cache
            while f.read(1 << 24):
                pass
        for _ in range(repeat):
            for run in runs:
                run.once()
        decompressors = [r for r in runs if r.kind == "decompressor"]
        floor = min(decompressors, key=lambda r: r.median)
        cli = decompressors[0]
        plain_size = _plain_size(path)
        for run in runs:
            row = {
                "style": style,
                "compression": ext,
                "file": path.name,
                "run": run.label,
                "kind": run.kind,
                "wall_s": run.median,
                "wall_all": run.wall,
                "cpu_s": statistics.median(run.cpu),
                "rss_mb": max(run.rss) / 1e6,
                "vs_floor": run.median / floor.median,
                "floor": floor.label,
                "vs_cli": run.median / cli.median,
                "cli": cli.label,
                "compressed_mb": path.stat().st_size / 1e6,
                "plain_mb": plain_size / 1e6,
            }
            if run.result is not None:
                row["read_fraction"] = run.result["bytes_read"] / plain_size
                row["rows"] = run.result["rows"]
                row["stopped_early"] = run.result["stopped_early"]
            results.append(row)
            print(_line(row), flush=True)
    return results


def _plain_size(path: Path) -> int:
    plain = path.with_suffix("")
    return plain.stat().st_size


def _line(row: dict) -> str:
    extra = ""
    if "read_fraction" in row:
        extra = f"  read {row['read_fraction']:.0%}  rows {sum(row['rows'].values())}"
    return (
        f"{row['style']:8} {row['compression']:4} {row['run']:34} {row['wall_s']:7.2f} s  "
        f"{row['vs_floor']:5.2f}x {row['floor']:<20} {row['vs_cli']:5.2f}x {row['cli']:<10} "
        f"cpu {row['cpu_s']:6.2f} s  rss {row['rss_mb']:6.1f} MB{extra}"
    )


def markdown(results: List[dict]) -> str:
    out = [
        "| dump | run | median wall | × fastest decompressor | × CLI | CPU | peak RSS | dump read |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        frac = f"{r['read_fraction']:.0%}" if "read_fraction" in r else ""
        out.append(
            f"| {r['style']} .{r['compression']} ({r['compressed_mb']:.0f} MB → {r['plain_mb']:.0f} MB) "
            f"| {r['run']} | {r['wall_s']:.2f} s | {r['vs_floor']:.2f} ({r['floor']}) | {r['vs_cli']:.2f} "
            f"| {r['cpu_s']:.2f} s | {r['rss_mb']:.0f} MB | {frac} |"
        )
    return "\n".join(out)


def main(argv: Optional[Sequence[str]] = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "--child":
        child(argv[1], argv[2], argv[3:])
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--size-mb", type=int, default=1100, help="uncompressed size of the dumps (default 1100)"
    )
    parser.add_argument("--quick", action="store_true", help="100 MB dumps, one repetition")
    parser.add_argument(
        "--repeat", type=int, help="repetitions; medians are reported (default 3, 1 with --quick)"
    )
    parser.add_argument(
        "--styles",
        default="mariadb,mysql",
        help="dump layouts: mariadb (one row per line), mysql (1 MB extended INSERT lines)",
    )
    parser.add_argument(
        "--compressions", default="gz,bz2,zst", help="any of gz,bz2,zst,xz (default gz,bz2,zst)"
    )
    parser.add_argument("--requests", default="cells,nova,whole", help="any of cells,nova,whole")
    parser.add_argument(
        "--variants",
        default="no-isal",
        help="extra runs of ours, any of no-isal (gzip through zlib) (default no-isal)",
    )
    parser.add_argument(
        "--baseline-tree",
        type=Path,
        help="also time the reader of another checkout (its top directory), e.g. the commit before a change",
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    if args.quick:
        args.size_mb = 100
    if args.repeat is None:
        args.repeat = 1 if args.quick else 3
    import _gen

    paths = _gen.ensure_dumps(
        args.size_mb,
        args.styles.split(","),
        args.compressions.split(","),
        log=lambda m: print(m, file=sys.stderr, flush=True),
    )
    print(f"# {machine()}; load average {os.getloadavg()[0]:.2f}; {args.repeat} repetition(s)", flush=True)
    variants = [v for v in args.variants.split(",") if v]
    results = bench(paths, args.repeat, args.requests.split(","), variants, args.baseline_tree)
    print()
    print(markdown(results))
    if args.json:
        args.json.write_text(
            json.dumps(
                {"machine": machine(), "size_mb": args.size_mb, "repeat": args.repeat, "results": results},
                indent=1,
            )
        )


if __name__ == "__main__":
    main()
