"""Instance events from an archived dump (``--source dump``) against restoring it into MariaDB and then
``--source db``, in the same run; peak RSS; and a re-run with ``--cache`` after one more dump.

    python benchmarks/instances_dump.py                      # 5,000,000 events (≈1 GB dump), 1 round
    python benchmarks/instances_dump.py --events 1000000 --rounds 3
    python benchmarks/instances_dump.py --skip-big --cache-events 250000 --cache-dumps 3

A private MariaDB (tests/support/mariadb.py) gets the real Nova schema and ``--events`` events from the
generator of benchmarks/instances.py (``INSERT … SELECT`` over ``seq_1_to_N``); the real ``mariadb-dump
--single-transaction --databases`` writes the archive (plain SQL, cached in benchmarks/data/). Then, per
round, one after the other:

* **restore + db** — the original tool's way: ``mariadb < dump.sql`` into the server (the database
  dropped first), then ``python -m starcompactor instances --source db``;
* **ours** — ``python -m starcompactor instances --source dump --backup-dir DIR`` on the same file.

Both write csv with the same key; the two traces are compared byte for byte. Then ``--cache``: a
history of ``--cache-dumps`` copies of a smaller dump is read with ``--all-dumps --cache`` (cold), one
more dump is added, and the re-run is timed against a cold run over the same history, and against
reading that one dump alone.
"""

from __future__ import annotations

import argparse
import filecmp
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import List, Tuple

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

from tests.support.mariadb import MariaDB, find_client, find_dump  # noqa: E402

DB = "nova"


def timed(args, **kwargs) -> Tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one child process."""
    start = time.perf_counter()
    proc = subprocess.Popen(args, **kwargs)
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{args[0]} failed with {os.waitstatus_to_exitcode(status)}")
    CPU.append(usage.ru_utime + usage.ru_stime)
    return time.perf_counter() - start, usage.ru_maxrss / 1024


#: CPU seconds of each timed process (with the children it waited for), in order.
CPU: List[float] = []


def make_dump(server: MariaDB, events: int, log=print) -> Path:
    from instances import GENERATE

    DATA.mkdir(parents=True, exist_ok=True)
    path = DATA / f"nova-events-{events}.sql"
    if path.exists():
        return path
    server.sql(f"DROP DATABASE IF EXISTS `{DB}`")
    server.load_schema("nova.sql", database=DB)
    started = time.perf_counter()
    server.sql(
        GENERATE.format(instances=max(events // 20, 1), actions=max(events // 5, 1), events=events), DB
    )
    log(f"generated {events:,} events in {time.perf_counter() - started:.0f} s")
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as out:
        subprocess.run(
            [
                find_dump(),
                "--no-defaults",
                f"--socket={server.socket}",
                "-uroot",
                "--single-transaction",
                "--databases",
                DB,
            ],
            stdout=out,
            check=True,
        )
    tmp.rename(path)
    log(f"dump: {path} ({path.stat().st_size / 1e9:.2f} GB)")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5_000_000)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--skip-big", action="store_true", help="only the --cache part")
    parser.add_argument("--cache-events", type=int, default=250_000)
    parser.add_argument("--cache-dumps", type=int, default=3)
    parser.add_argument("--cache-rounds", type=int, default=3, help="re-run and one-dump runs, interleaved")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="sc-bench-dump-"))
    os.environ["TMPDIR"] = str(work / "tmp")
    (work / "tmp").mkdir()
    server = MariaDB(str(work / "db")).start()
    key = work / "key"
    key.write_text("benchmark-key\n")
    py = sys.executable
    env = dict(os.environ, PYTHONPATH=str(ROOT), TQDM_DISABLE="1")
    common = ["--nova-databases", DB, "--hashed-masking-key-file", str(key), "--quiet"]
    try:
        if not args.skip_big:
            dump = make_dump(server, args.events)
            history = work / "history"
            history.mkdir()
            os.symlink(dump, history / "mysqldump-2024-01-01T03:00:00Z.sql")
            client = [find_client(), "--no-defaults", f"--socket={server.socket}", "-uroot"]
            rows: List[Tuple[float, float, float, float, float]] = []
            for round_ in range(1, args.rounds + 1):
                server.sql(f"DROP DATABASE IF EXISTS `{DB}`")
                with open(dump, "rb") as source:
                    restore, _ = timed(client, stdin=source)
                db_time, db_rss = timed(
                    [
                        py,
                        "-m",
                        "starcompactor",
                        "instances",
                        "--source",
                        "db",
                        "--no-defaults",
                        "--db-user",
                        "root",
                        "--db-socket",
                        server.socket,
                        *common,
                        str(work / "db.csv"),
                    ],
                    env=env,
                    cwd=work,
                )
                ours, ours_rss = timed(
                    [
                        py,
                        "-m",
                        "starcompactor",
                        "instances",
                        "--source",
                        "dump",
                        "--backup-dir",
                        str(history),
                        *common,
                        str(work / "dump.csv"),
                    ],
                    env=env,
                    cwd=work,
                )
                # compared in pieces: a child forked after reading both whole would report their size
                # as its peak RSS (Linux counts the parent's high-water mark until exec)
                same = filecmp.cmp(work / "db.csv", work / "dump.csv", shallow=False)
                rows.append((restore, db_time, ours, ours_rss, db_rss))
                print(
                    f"round {round_}: restore {restore:.1f} s + db {db_time:.1f} s = {restore + db_time:.1f} s; "
                    f"ours {ours:.1f} s ({ours_rss:.0f} MB); ratio {ours / (restore + db_time):.2f}; "
                    f"same trace: {same}",
                    flush=True,
                )
                assert same
            print()
            print(f"{args.events:,} events, dump {dump.stat().st_size / 1e9:.2f} GB")
            print(
                "| round | mariadb < dump (s) | --source db (s) | restore + db (s) | --source dump (s) | ratio | our peak RSS (MB) |"
            )
            print("|---|---:|---:|---:|---:|---:|---:|")
            for i, (restore, db_time, ours, rss, _) in enumerate(rows, 1):
                print(
                    f"| {i} | {restore:.1f} | {db_time:.1f} | {restore + db_time:.1f} | {ours:.1f} | "
                    f"{ours / (restore + db_time):.2f} | {rss:.0f} |"
                )
        # -- the cache -------------------------------------------------------------------------------
        small = make_dump(server, args.cache_events)
        history = work / "cache-history"
        history.mkdir()
        for day in range(1, args.cache_dumps + 1):
            shutil.copyfile(small, history / f"mysqldump-2024-01-{day:02d}T03:00:00Z.sql")
        cache = work / "cache"
        base = [
            py,
            "-m",
            "starcompactor",
            "instances",
            "--source",
            "dump",
            "--all-dumps",
            "--backup-dir",
            str(history),
            *common,
        ]
        first, _ = timed([*base, "--cache", str(cache), str(work / "c0.csv")], env=env, cwd=work)
        kept = work / "cache-of-n"  # the cache as the first run left it: each round starts from it
        shutil.copytree(cache, kept)
        shutil.copyfile(small, history / f"mysqldump-2024-01-{args.cache_dumps + 1:02d}T03:00:00Z.sql")
        cold, _ = timed([*base, str(work / "c2.csv")], env=env, cwd=work)
        alone = work / "alone"
        alone.mkdir()
        os.symlink(small, alone / "mysqldump-2024-01-01T03:00:00Z.sql")
        one_command = [
            py,
            "-m",
            "starcompactor",
            "instances",
            "--source",
            "dump",
            "--backup-dir",
            str(alone),
            *common,
            str(work / "c3.csv"),
        ]
        warms, ones, rss, warm_cpus, one_cpus = [], [], [], [], []
        for _ in range(args.cache_rounds):  # interleaved: the machine's load hits both alike
            shutil.rmtree(cache)
            shutil.copytree(kept, cache)
            warm, warm_rss = timed([*base, "--cache", str(cache), str(work / "c1.csv")], env=env, cwd=work)
            warm_cpus.append(CPU[-1])
            one, _ = timed(one_command, env=env, cwd=work)
            one_cpus.append(CPU[-1])
            warms.append(warm)
            ones.append(one)
            rss.append(warm_rss)
            assert filecmp.cmp(work / "c1.csv", work / "c2.csv", shallow=False)
        print()
        print(
            f"--cache: {args.cache_dumps} → {args.cache_dumps + 1} dumps of {args.cache_events:,} events, --all-dumps"
            f" ({args.cache_rounds} rounds: median [range])"
        )
        print("| run | wall (s) |")
        print("|---|---:|")
        print(f"| first run with --cache ({args.cache_dumps} dumps) | {first:.1f} |")
        print(f"| cold, {args.cache_dumps + 1} dumps, no cache | {cold:.1f} |")
        warm, one = statistics.median(warms), statistics.median(ones)
        print(
            f"| re-run with --cache after one more dump | {warm:.2f} [{min(warms):.2f}–{max(warms):.2f}] "
            f"({warm / cold:.2f} × cold; {max(rss):.0f} MB) |"
        )
        print(f"| that one dump alone, no cache | {one:.2f} [{min(ones):.2f}–{max(ones):.2f}] |")
        cpu_diffs = sorted(w - o for w, o in zip(warm_cpus, one_cpus))
        print(
            f"| CPU: re-run {statistics.median(warm_cpus):.2f} s, that dump alone {statistics.median(one_cpus):.2f} s "
            f"| median {statistics.median(cpu_diffs):+.2f} s [{cpu_diffs[0]:+.2f} … {cpu_diffs[-1]:+.2f}] |"
        )
        diffs = sorted(w - o for w, o in zip(warms, ones))
        print(
            f"| re-run − that dump alone, per round | median {statistics.median(diffs):+.2f} s "
            f"[{diffs[0]:+.2f} … {diffs[-1]:+.2f}] |"
        )
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
