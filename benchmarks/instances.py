"""Instance events: our database path against the mysql client on the same join, and the API path
concurrent against sequential.

    python benchmarks/instances.py [--events 1000000] [--servers 1000] [--skip-api]

Starts a private MariaDB (tests/mariadb.py), loads the real Nova schema, generates the events with
INSERT … SELECT from MariaDB's seq_1_to_N tables, then times in the same run:

* ``mysql --batch -e '<the join>' > /dev/null`` — the SQL text our source sends (build_query);
* ``python -m starcompactor instances --source db --workers W … OUT`` (csv, hmac-sha256) for each W of
  ``--workers`` (default 1 and 2), and its peak RSS at N/4 and N events (flat memory: the cursor is
  unbuffered);
* the API source against tests/nova_api_server.py with a fixed latency per request, --concurrency 8 vs 1.
"""

from __future__ import annotations

import argparse
import datetime as dt
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.mariadb import MariaDB, find_client  # noqa: E402

DB = "bench_nova"

GENERATE = """
SET FOREIGN_KEY_CHECKS=0;
INSERT INTO instances (created_at, uuid, user_id, project_id, hostname, host, node, memory_mb, root_gb, vcpus, deleted)
SELECT '2020-01-01' + INTERVAL seq MINUTE, CONCAT('00000000-0000-4000-8000-', LPAD(HEX(seq), 12, '0')),
  MD5(CONCAT('u', seq MOD 997)), MD5(CONCAT('p', seq MOD 211)), CONCAT('vm-', seq), CONCAT('c', seq MOD 300),
  CONCAT('c', LPAD(seq MOD 300, 3, '0'), '.example.org'), 2048, 20, 2, 0 FROM seq_1_to_{instances};
INSERT INTO instance_actions (id, created_at, action, instance_uuid, request_id, start_time)
SELECT seq, '2020-01-01' + INTERVAL seq*15 SECOND, 'create',
  CONCAT('00000000-0000-4000-8000-', LPAD(HEX((seq-1) DIV 4 + 1), 12, '0')), CONCAT('req-', seq),
  '2020-01-01' + INTERVAL seq*15 SECOND FROM seq_1_to_{actions};
INSERT INTO instance_actions_events (created_at, event, action_id, start_time, finish_time, result)
SELECT '2020-01-01' + INTERVAL seq*3 SECOND,
  ELT(1 + seq MOD 5, 'compute__do_build_and_run_instance', 'conductor_schedule_and_build_instances',
      'compute_stop_instance', 'compute_start_instance', 'compute_reboot_instance'),
  (seq-1) DIV 5 + 1, '2020-01-01' + INTERVAL ((seq*7919) MOD {events})*3 SECOND,
  '2020-01-01' + INTERVAL ((seq*7919) MOD {events})*3+5 SECOND, 'Success' FROM seq_1_to_{events};
"""


def timed(args, **kwargs):
    """Wall time and peak RSS (MB) of one child process."""
    start = time.perf_counter()
    proc = subprocess.Popen(args, **kwargs)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{args[0]} failed with {proc.returncode}")
    return time.perf_counter() - start, usage.ru_maxrss / 1024


def database_benchmark(events: int, work: Path, rounds: int = 3, worker_counts=(1, 2)) -> None:
    os.environ["TMPDIR"] = str(work / "tmp")  # mariadbd's temporary tables, not the shared /tmp
    (work / "tmp").mkdir()
    server = MariaDB(str(work / "db")).start()
    try:
        server.load_schema("nova.sql", database=DB)
        t = time.perf_counter()
        server.sql(
            GENERATE.format(instances=max(events // 20, 1), actions=max(events // 5, 1), events=events), DB
        )
        print(f"generated {events:,} events in {time.perf_counter() - t:.1f} s", flush=True)
        server.sql(f"ANALYZE TABLE {DB}.instances, {DB}.instance_actions, {DB}.instance_actions_events")
        from starcompactor.instances.db import build_query

        sql, _ = build_query(DB)
        key = work / "key"
        key.write_text("benchmark-key\n")
        ours = [
            sys.executable,
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
            "--nova-databases",
            DB,
            "--hashed-masking-key-file",
            str(key),
            "--quiet",
        ]
        client = [
            find_client() or "mysql",
            "--no-defaults",
            f"--socket={server.socket}",
            "-uroot",
            "--batch",
            "-e",
            sql,
        ]
        rows = []
        for round_ in range(1, rounds + 1):
            with open(os.devnull, "wb") as null:
                base, base_rss = timed(client, stdout=null)
            runs = []
            for workers in worker_counts:
                mine, mine_rss = timed([*ours, "--workers", str(workers), str(work / "out.csv")], cwd=work)
                runs.append((workers, mine, mine_rss))
            rows.append((round_, base, base_rss, runs))
            print(
                f"round {round_}: mysql --batch {base:.1f} s ({base_rss:.0f} MB); ours "
                + ", ".join(
                    f"--workers {w}: {t:.1f} s ({r:.0f} MB, ratio {base / t:.2f})" for w, t, r in runs
                ),
                flush=True,
            )
        with open(work / "out.csv", "rb") as handle:  # streamed: a fork inherits the parent's peak RSS
            lines = sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b"")) - 1
        assert lines == events, (lines, events)
        # flat memory: a quarter of the events through the same path
        quarter = events // 4
        server.sql(f"SET FOREIGN_KEY_CHECKS=0; DELETE FROM {DB}.instance_actions_events WHERE id > {quarter}")
        small, small_rss = timed([*ours, "--workers", "1", str(work / "small.csv")], cwd=work)
        full_rss = [r for w, _, r in rows[-1][3] if w == 1] or [rows[-1][3][0][2]]
        print(
            f"peak RSS (--workers 1): {small_rss:.0f} MB at {quarter:,} events, {full_rss[0]:.0f} MB at {events:,} events"
        )
        header = (
            "| round | mysql --batch -e (s) | "
            + " | ".join(f"ours, --workers {w} (s) | ratio" for w in worker_counts)
            + " | mysql RSS (MB) | our RSS (MB) |"
        )
        print("\n" + header)
        print("|" + "---|" * (header.count("|") - 1))
        for round_, base, base_rss, runs in rows:
            cells = " | ".join(f"{t:.1f} | {base / t:.2f}" for _, t, _ in runs)
            print(
                f"| {round_} | {base:.1f} | {cells} | {base_rss:.0f} | {'/'.join(f'{r:.0f}' for _, _, r in runs)} |"
            )
    finally:
        server.stop()


def _serve(specs, latency, queue) -> None:
    from tests.support.nova_api_server import FakeCloud

    fake = FakeCloud(specs, latency=latency, page_size=1000).start()
    queue.put(fake.clouds_yaml())
    while True:
        time.sleep(3600)


def api_benchmark(servers: int, actions: int, latency: float) -> None:
    from starcompactor.instances_api import ApiSource, connect

    t0 = dt.datetime(2024, 1, 1)
    specs = []
    for i in range(servers):
        specs.append(
            {
                "id": f"00000000-0000-4000-8000-{i:012d}",
                "name": f"vm{i}",
                "hostname": f"vm-{i}",
                "user_id": "u",
                "project_id": "p",
                "host": "c01",
                "node": "c01.example.org",
                "deleted": i % 10 == 0,
                "flavor": {"id": "1", "vcpus": 2, "ram": 2048, "disk": 20},
                "actions": [
                    {
                        "request_id": f"req-{i}-{a}",
                        "action": "reboot",
                        "start_time": t0 + dt.timedelta(minutes=i + a),
                        "events": [
                            {
                                "event": "compute_reboot_instance",
                                "start_time": t0 + dt.timedelta(minutes=i + a),
                                "finish_time": t0 + dt.timedelta(minutes=i + a, seconds=5),
                                "result": "Success",
                                "host": "c01",
                            }
                        ],
                    }
                    for a in range(actions)
                ],
            }
        )
    # The server runs in its own process: in ours it would compete for the GIL with the client.
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_serve, args=(specs, latency, queue), daemon=True)
    child.start()
    clouds_yaml = queue.get(timeout=60)
    work = Path(tempfile.mkdtemp(prefix="ie-api-"))
    (work / "clouds.yaml").write_text(clouds_yaml)
    os.environ["OS_CLIENT_CONFIG_FILE"] = str(work / "clouds.yaml")
    results = {}
    try:
        for concurrency in (8, 1):
            source = ApiSource(connect(cloud="fake"), concurrency=concurrency)
            t = time.perf_counter()
            n = sum(1 for _ in source)
            results[concurrency] = time.perf_counter() - t
            assert n == servers * actions, n
            print(f"API, concurrency {concurrency}: {n:,} events in {results[concurrency]:.1f} s", flush=True)
    finally:
        child.terminate()
        child.join()
    requests = servers * (1 + actions)
    print(
        f"\n| API: {servers:,} servers × {actions} actions, {latency * 1000:.0f} ms per request "
        f"({requests:,} requests) | time (s) |\n|---|---|"
    )
    print(f"| --concurrency 1 (sequential, as the original) | {results[1]:.1f} |")
    print(f"| --concurrency 8 | {results[8]:.1f} |")
    print(f"| speed-up | {results[1] / results[8]:.1f}× |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--servers", type=int, default=1000)
    parser.add_argument("--actions", type=int, default=5)
    parser.add_argument("--latency", type=float, default=0.02)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", default="1,2", help="comma-separated --workers values to time")
    parser.add_argument("--skip-db", action="store_true")
    parser.add_argument("--skip-api", action="store_true")
    args = parser.parse_args()
    if not args.skip_db:
        with tempfile.TemporaryDirectory(prefix="ie-bench-") as work:
            database_benchmark(
                args.events, Path(work), args.rounds, [int(w) for w in args.workers.split(",")]
            )
    if not args.skip_api:
        api_benchmark(args.servers, args.actions, args.latency)


if __name__ == "__main__":
    main()
