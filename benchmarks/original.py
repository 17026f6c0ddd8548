"""``machines`` over a history of small KVM dumps against the original tool's method, re-enacted.

    python benchmarks/original.py                 # 20 nights made of examples/chameleon-kvm, 3 rounds

The original (ChameleonCloud/starcompactor) is not here; its method is re-enacted with the real tools
against a private MariaDB (tests/support/mariadb.py): for each dump, ``gzip -dc`` to a temporary file,
``sed`` out each Nova cell's section and its ``compute_nodes`` and ``services`` tables, restore them with
the ``mariadb`` client into a temporary database, query the join of SPEC §1.2, drop the database. Ours
is ``python -m starcompactor machines --backup-dir DIR`` (default workers). The history is the 9 dumps of
examples/chameleon-kvm copied under 20 consecutive nights' names. Rounds alternate the two; medians and
ranges are printed, and the ratio of each round.
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.mariadb import MariaDB, find_client  # noqa: E402

CELLS = ("nova", "nova_cell0")
QUERY = (
    "SELECT cn.hypervisor_hostname, cn.vcpus, cn.memory_mb, cn.local_gb, cn.created_at, cn.updated_at, "
    "cn.deleted_at, s.disabled, s.updated_at FROM compute_nodes cn LEFT JOIN services s ON cn.host = s.host "
    "WHERE s.`binary` = 'nova-compute'"
)


def original(history: Path, server: MariaDB, work: Path) -> float:
    """The original's way over every dump, one after the other (its pool held 30 files per process)."""
    client = [find_client(), "--no-defaults", f"--socket={server.socket}", "-uroot"]
    start = time.perf_counter()
    for k, dump in enumerate(sorted(history.iterdir())):
        plain = work / "restore.sql"
        with open(plain, "wb") as out:
            subprocess.run(["gzip", "-dc", str(dump)], stdout=out, check=True)
        for cell in CELLS:
            section = work / f"{cell}.sql"
            tables = work / f"{cell}-tables.sql"
            with open(section, "wb") as out:
                subprocess.run(
                    ["sed", "-n", f"/^-- Current Database: `{cell}`/,/^-- Current Database: /p", str(plain)],
                    stdout=out,
                    check=True,
                )
            with open(tables, "wb") as out:
                subprocess.run(
                    [
                        "sed",
                        "-n",
                        "/^-- Table structure for table `compute_nodes`/,/^UNLOCK TABLES;/p;"
                        "/^-- Table structure for table `services`/,/^UNLOCK TABLES;/p",
                        str(section),
                    ],
                    stdout=out,
                    check=True,
                )
            temp = f"sc_original_{k}_{cell}"
            subprocess.run([*client, "-e", f"CREATE DATABASE `{temp}`"], check=True)
            with open(tables, "rb") as source:
                subprocess.run([*client, temp], stdin=source, check=True)
            subprocess.run([*client, temp, "--batch", "-e", QUERY], stdout=subprocess.DEVNULL, check=True)
            subprocess.run([*client, "-e", f"DROP DATABASE `{temp}`"], check=True)
    return time.perf_counter() - start


def ours(history: Path, work: Path, code: Path = ROOT) -> float:
    env = dict(os.environ, PYTHONPATH=str(code), TQDM_DISABLE="1", STARCOMPACTOR_MASKING_KEY="bench")
    start = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "starcompactor",
            "machines",
            "--backup-dir",
            str(history),
            "-q",
            str(work / "out.csv"),
        ],
        env=env,
        check=True,
        cwd=work,
    )
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nights", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--also", metavar="CHECKOUT", help="also time ours from another checkout (before/after)"
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="sc-bench-original-"))
    server = MariaDB(str(work / "db")).start()
    try:
        history = work / "history"
        history.mkdir()
        examples = sorted((ROOT / "examples" / "chameleon-kvm").iterdir())
        for night in range(args.nights):
            day = 1 + night
            shutil.copyfile(
                examples[night % len(examples)], history / f"mysqldump-2024-01-{day:02d}T03:00:00Z.mysql.gz"
            )
        rows = []
        for round_ in range(1, args.rounds + 1):
            theirs = original(history, server, work)
            mine = ours(history, work)
            other = ours(history, work, Path(args.also)) if args.also else None
            rows.append((theirs, mine))
            print(
                f"round {round_}: original's method {theirs:.2f} s, ours {mine:.2f} s: {theirs / mine:.1f} × less time"
                + (f"; {args.also}: {other:.2f} s, {theirs / other:.1f} ×" if other else ""),
                flush=True,
            )
        ratios = [t / m for t, m in rows]
        print()
        print(f"| {args.nights} KVM dumps | original's method (s) | ours (s) | × less time |")
        print("|---|---:|---:|---:|")
        for i, (theirs, mine) in enumerate(rows, 1):
            print(f"| round {i} | {theirs:.2f} | {mine:.2f} | {theirs / mine:.1f} |")
        print(
            f"| median (range) | | | {statistics.median(ratios):.1f} ({min(ratios):.1f}–{max(ratios):.1f}) |"
        )
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
