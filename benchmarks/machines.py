"""Machine-events benchmark: ``starcompactor machines`` end to end over a history of big gzip dumps,
as a ratio to decompressing the same files (``gzip -dc`` and python-isal's igzip into /dev/null) in the
same run, with 1 and 2 workers, and the peak RSS of the largest process.

    python benchmarks/machines.py                 # 3 snapshots of a 1100 MB dump (generated once, cached)
    python benchmarks/machines.py --quick         # 3 snapshots of a 100 MB dump
    python benchmarks/machines.py --size-mb 1100 --snapshots 4 --repeat 2

The dump comes from benchmarks/_gen.py (real schemas, real mysqldump, scaled). The history is that one
file linked under several snapshot names; what is measured is reading, not diffing. The default
configuration asks for ``nova`` and ``nova_cell0``; ``nova_cell0`` comes late in an ``--all-databases``
dump, so each file is walked almost to its end (the worst case for early exit).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))


def run(argv: Sequence[str], *, stdout: Optional[int] = subprocess.DEVNULL, env=None) -> Tuple[float, int]:
    """Wall seconds and peak RSS (KiB, the largest process in the tree) of one command."""
    start = time.perf_counter()
    proc = subprocess.Popen(list(argv), stdout=stdout, stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(argv)} failed: {err[-2000:]}")
    return wall, usage.ru_maxrss


def best(argv: Sequence[str], repeat: int, **kw) -> Tuple[float, int]:
    results = [run(argv, **kw) for _ in range(repeat)]
    return min(r[0] for r in results), max(r[1] for r in results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100 MB dumps instead of 1100 MB")
    parser.add_argument("--size-mb", type=int, default=None)
    parser.add_argument("--snapshots", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--also", metavar="CHECKOUT", help="also time another checkout's code (before/after)")
    args = parser.parse_args()
    size = args.size_mb or (100 if args.quick else 1100)

    from _gen import ensure_dumps

    dump = ensure_dumps(size, ["mariadb"], ["gz"], log=lambda m: print(m, file=sys.stderr))[("mariadb", "gz")]
    plain_size = (
        os.path.getsize(str(dump)[: -len(".gz")]) if Path(str(dump)[: -len(".gz")]).exists() else None
    )
    work = Path(tempfile.mkdtemp(prefix="sc-bench-machines-"))
    try:
        history = work / "history"
        history.mkdir()
        files: List[Path] = []
        for k in range(1, args.snapshots + 1):
            target = history / f"mysqldump-2024-01-{k:02d}T03:00:00Z.mysql.gz"
            os.link(dump, target) if os.stat(dump).st_dev == os.stat(history).st_dev else target.symlink_to(
                dump
            )
            files.append(target)
        env = dict(os.environ, PYTHONPATH=str(REPO), STARCOMPACTOR_MASKING_KEY="bench", TQDM_DISABLE="1")
        py = sys.executable

        gzip_wall = 0.0
        gzip_rss = 0
        for f in files:
            w, r = best(["gzip", "-dc", str(f)], args.repeat)
            gzip_wall, gzip_rss = gzip_wall + w, max(gzip_rss, r)
        isal_code = (
            "import sys\nfrom isal import igzip\nfor p in sys.argv[1:]:\n"
            "    with igzip.open(p, 'rb') as f:\n        while f.read(1 << 22): pass\n"
        )
        isal_wall, isal_rss = best([py, "-c", isal_code, *map(str, files)], args.repeat)
        ours = {}
        if args.also:
            other_env = dict(env, PYTHONPATH=args.also)
            cmd = [
                py,
                "-m",
                "starcompactor",
                "machines",
                "--backup-dir",
                str(history),
                "--quiet",
                str(work / "also.csv"),
            ]
            ours[f"default, {args.also}"] = best(cmd, args.repeat, env=other_env)
        cmd = [
            py,
            "-m",
            "starcompactor",
            "machines",
            "--backup-dir",
            str(history),
            "--quiet",
            str(work / "default.csv"),
        ]
        ours["default"] = best(cmd, args.repeat, env=env)
        for workers in (1, 2):
            cmd = [
                py,
                "-m",
                "starcompactor",
                "machines",
                "--backup-dir",
                str(history),
                "--workers",
                str(workers),
                "--quiet",
                str(work / f"out-{workers}.csv"),
            ]
            ours[workers] = best(cmd, args.repeat, env=env)
        total_gz = sum(os.path.getsize(f) for f in files)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    mb = 1e6
    print(f"## machines ({platform.python_version()}, {os.cpu_count()} cores, {args.snapshots} snapshots)")
    print()
    print(
        f"History: {args.snapshots} × {dump.name} ({os.path.getsize(dump) / mb:.0f} MB gzip"
        + (f", {plain_size / mb:.0f} MB uncompressed" if plain_size else "")
        + f"); {total_gz / mb:.0f} MB read in all."
    )
    print()
    print("| run | wall s | vs gzip -dc | vs isal igzip | peak RSS MiB |")
    print("|---|---:|---:|---:|---:|")
    print(
        f"| gzip -dc > /dev/null (files one after another) | {gzip_wall:.1f} | 1.00 | {gzip_wall / isal_wall:.2f} | {gzip_rss / 1024:.0f} |"
    )
    print(
        f"| isal igzip read (one process) | {isal_wall:.1f} | {isal_wall / gzip_wall:.2f} | 1.00 | {isal_rss / 1024:.0f} |"
    )
    for workers, (wall, rss) in ours.items():
        print(
            f"| starcompactor machines --workers {workers} | {wall:.1f} | {wall / gzip_wall:.2f} | "
            f"{wall / isal_wall:.2f} | {rss / 1024:.0f} |"
        )
    print()
    print(f"Scaling 1 → 2 workers: {ours[1][0] / ours[2][0]:.2f}× faster.")
    print(f"Default workers against single-core gzip -dc: {ours['default'][0] / gzip_wall:.2f}.")


if __name__ == "__main__":
    main()
