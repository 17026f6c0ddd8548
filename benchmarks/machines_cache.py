"""``machines --cache``: a re-run after one more dump against the cold run and against reading that one
dump alone, in the same rounds.

    python benchmarks/machines_cache.py                       # 6 → 7 snapshots of a 100 MB dump, 3 rounds
    python benchmarks/machines_cache.py --snapshots 12 --rounds 2 --no-log

The dump is ``audit_stitch.py``'s (``benchmarks/_gen.py``'s 100 MB one with an ``openstack_audit``
database), linked under several snapshot names (``--no-log``: the plain dump). Each round, in separate
processes: **cold** (``--snapshots + 1`` dumps, no cache); **fill** (``--snapshots`` dumps into an empty
cache); **re-run** (one more dump, same cache); **one dump** (the added dump alone, no cache). The goal:
re-run ≤ one dump + 0.2 s. With the log, the newest dump is read for its log on every run (a cached
snapshot holds no log), which is the new dump on a re-run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Dict, List, Tuple

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from audit_stitch import REPO, timed, with_log  # noqa: E402


def link(dump: Path, directory: Path, day: int) -> None:
    target = directory / f"mysqldump-2024-01-{day:02d}T03:00:00Z.mysql.gz"
    try:
        os.link(dump, target)
    except OSError:
        target.symlink_to(dump)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=100)
    parser.add_argument("--snapshots", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--no-log", action="store_true", help="the plain dump (no openstack_audit)")
    args = parser.parse_args()
    if args.no_log:
        from _gen import ensure_dumps

        dump = ensure_dumps(args.size_mb, ["mariadb"], ["gz"], log=lambda m: print(m, file=sys.stderr))[
            ("mariadb", "gz")
        ]
    else:
        dump, _ = with_log(args.size_mb, 40)
    n = args.snapshots
    env = dict(os.environ, PYTHONPATH=str(REPO), STARCOMPACTOR_MASKING_KEY="bench", TQDM_DISABLE="1")
    runs: Dict[str, List[Tuple[float, float, float]]] = {}
    work = Path(tempfile.mkdtemp(prefix="sc-bench-cache-"))
    try:
        for r in range(args.rounds):
            full, part, one = work / f"full{r}", work / f"part{r}", work / f"one{r}"
            for d in (full, part, one):
                d.mkdir()
            for day in range(1, n + 2):
                link(dump, full, day)
            for day in range(1, n + 1):
                link(dump, part, day)
            link(dump, one, n + 1)
            cache = work / f"cache{r}"

            def machines(directory: Path, out: str, *extra: str) -> List[str]:
                return [
                    sys.executable,
                    "-m",
                    "starcompactor",
                    "machines",
                    "--backup-dir",
                    str(directory),
                    "--workers",
                    str(args.workers),
                    "--quiet",
                    *extra,
                    str(work / out),
                ]

            runs.setdefault("cold", []).append(timed(machines(full, "cold.csv"), env, REPO))
            runs.setdefault("fill", []).append(
                timed(machines(part, "fill.csv", "--cache", str(cache)), env, REPO)
            )
            link(dump, part, n + 1)
            runs.setdefault("re-run", []).append(
                timed(machines(part, "rerun.csv", "--cache", str(cache)), env, REPO)
            )
            runs.setdefault("one dump", []).append(timed(machines(one, "one.csv"), env, REPO))
            same = (work / "rerun.csv").read_bytes() == (work / "cold.csv").read_bytes()
            if not same:
                raise SystemExit("the re-run's trace differs from the cold run's")
            shutil.rmtree(cache, ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"history: {n} → {n + 1} × {dump.name} ({os.path.getsize(dump) / 1e6:.0f} MB gzip)")
    print(f"{'run':<10} {'median s':>9} {'range s':>14} {'CPU s':>7} {'peak RSS MB':>12}")
    for name, results in runs.items():
        walls = sorted(w for w, _, _ in results)
        print(
            f"{name:<10} {statistics.median(walls):9.2f} {walls[0]:6.2f}–{walls[-1]:<6.2f} "
            f"{statistics.median(c for _, _, c in results):7.2f} {max(m for _, m, _ in results):12.0f}"
        )
    extra = [rr[0] - o[0] for rr, o in zip(runs["re-run"], runs["one dump"])]
    cold = [rr[0] / c[0] for rr, c in zip(runs["re-run"], runs["cold"])]
    print("re-run − one dump, per round (s): " + ", ".join(f"{e:+.2f}" for e in extra))
    print("re-run / cold, per round: " + ", ".join(f"{c:.3f}" for c in cold))


if __name__ == "__main__":
    main()
