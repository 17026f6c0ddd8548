"""Peak RSS of reading crafted dumps (tests/support/crafted.py) as a vm snapshot, before and after.

    python benchmarks/memory.py                                  # this checkout
    python benchmarks/memory.py --baseline-tree ../main-at-branch-point
    python benchmarks/memory.py --kinds escapes,long-comment --json out.json

Each read is its own child process (``read_snapshot``, the way ``starcompactor machines`` reads a dump);
its peak RSS is the child's own VmHWM. With ``--baseline-tree``, the same file is read by that checkout's
code right after, so the two figures come from the same file on the same machine.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import List, Optional, Sequence

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # the repository, for tests.support

from tests.support import crafted  # noqa: E402


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--kinds", default=",".join(crafted.CRAFTED), help="crafted dumps to read (default: all)"
    )
    parser.add_argument("--baseline-tree", type=Path, help="also read each with another checkout's code")
    parser.add_argument("--limit-mb", type=int, default=0, help="cap each child's address space (RLIMIT_AS)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    results: List[dict] = []
    print("| crafted dump | gzip | run | peak RSS | address space | hosts | result | time |")
    print("|---|---:|---|---:|---:|---:|---|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        for kind in args.kinds.split(","):
            path = crafted.write(kind, Path(tmp))
            trees = [("before", args.baseline_tree)] if args.baseline_tree else []
            for label, tree in [*trees, ("after", None)]:
                start = time.monotonic()
                got = crafted.peak_rss(path, limit=args.limit_mb << 20, tree=tree, timeout=3600)
                row = {
                    "kind": kind,
                    "gzip_bytes": path.stat().st_size,
                    "run": label,
                    "peak_rss_mb": got.get("maxrss_kb", 0) / 1024,
                    "vm_peak_mb": (got.get("vmpeak_kb") or 0) / 1024,
                    "hosts": got.get("records"),
                    "result": got.get("error") or "read",
                    "seconds": time.monotonic() - start,
                }
                results.append(row)
                print(
                    f"| {kind} | {row['gzip_bytes'] / 1024:,.0f} KB | {label} | {row['peak_rss_mb']:,.0f} MB | "
                    f"{row['vm_peak_mb']:,.0f} MB | {row['hosts'] if row['hosts'] is not None else '-'} | "
                    f"{row['result'][:60]} | {row['seconds']:.1f} s |",
                    flush=True,
                )
            path.unlink()
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
