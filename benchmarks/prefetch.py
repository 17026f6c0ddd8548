"""Before/after, interleaved: ``machines`` over 1 and 3 big gzip dumps with this checkout's code (the last
round's dumps decompressed ahead in a thread) and another checkout's, against ``gzip -dc`` of the same
files (single-core zlib), in the same run.

    python benchmarks/prefetch.py --other /path/to/main/checkout [--rounds 4]

The dump is benchmarks/_gen.py's 1100 MB ``--all-databases`` dump (gzip). Each round runs, one after the
other: ``gzip -dc`` over the files, this checkout, the other checkout. Medians and ranges per history.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))


def wall(argv, env=None) -> float:
    start = time.perf_counter()
    subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--other", required=True, metavar="CHECKOUT")
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    from _gen import ensure_dumps

    dump = ensure_dumps(1100, ["mariadb"], ["gz"], log=lambda m: print(m, file=sys.stderr))[("mariadb", "gz")]
    work = Path(tempfile.mkdtemp(prefix="sc-bench-prefetch-"))
    try:
        histories = {}
        for count in (1, 3):
            history = work / f"h{count}"
            history.mkdir()
            for k in range(1, count + 1):
                os.symlink(dump, history / f"mysqldump-2024-01-{k:02d}T03:00:00Z.mysql.gz")
            histories[count] = history
        base = dict(os.environ, STARCOMPACTOR_MASKING_KEY="bench", TQDM_DISABLE="1")
        results = {(count, who): [] for count in histories for who in ("gzip", "ours", "other")}
        for round_ in range(1, args.rounds + 1):
            for count, history in histories.items():
                files = sorted(str(p) for p in history.iterdir())
                results[(count, "gzip")].append(sum(wall(["gzip", "-dc", f]) for f in files))
                for who, code in (("ours", ROOT), ("other", Path(args.other))):
                    cmd = [
                        sys.executable,
                        "-m",
                        "starcompactor",
                        "machines",
                        "--backup-dir",
                        str(history),
                        "-q",
                    ]
                    results[(count, who)].append(
                        wall([*cmd, str(work / "out.csv")], env=dict(base, PYTHONPATH=str(code)))
                    )
                print(
                    f"round {round_}, {count} dump(s): gzip -dc {results[(count, 'gzip')][-1]:.1f} s, "
                    f"ours {results[(count, 'ours')][-1]:.1f} s, other {results[(count, 'other')][-1]:.1f} s",
                    flush=True,
                )
        print()
        print("| dumps | run | median s (range) | × single-core gzip -dc (median of per-round ratios) |")
        print("|---|---|---:|---:|")
        for count in histories:
            gz = results[(count, "gzip")]
            for who in ("gzip", "ours", "other"):
                times = results[(count, who)]
                ratios = [t / g for t, g in zip(times, gz)]
                label = {"gzip": "gzip -dc", "ours": "this checkout", "other": args.other}[who]
                print(
                    f"| {count} | {label} | {statistics.median(times):.1f} ({min(times):.1f}–{max(times):.1f}) | "
                    f"{statistics.median(ratios):.2f} ({min(ratios):.2f}–{max(ratios):.2f}) |"
                )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
