"""What testing one guessed key against a published key fingerprint costs, now against before.

    python benchmarks/fingerprint.py [--guesses 200] [--rounds 5]

Times, interleaved in the same run, ``--guesses`` fingerprints of candidate keys the way
:attr:`starcompactor.mask.MaskingKey.fingerprint` computes them (scrypt, N=2^15, r=8, p=1, fixed salt)
and the way it did before (one HMAC-SHA256), and reports the median time per guess of each, the ratio,
what a dictionary of 2,100 guesses (how a weak key was found from a published fingerprint) costs each way,
and this process's peak RSS (scrypt's 32 MiB block).
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import resource
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from starcompactor.mask import MaskingKey  # noqa: E402


def before(secret: bytes) -> str:
    """The fingerprint as the previous version computed it."""
    return hmac.new(secret, b"starcompactor key fingerprint v1", hashlib.sha256).hexdigest()[:16]


def now(secret: bytes) -> str:
    return MaskingKey(secret, "guess").fingerprint


def per_guess(function, guesses: int, offset: int) -> float:
    start = time.perf_counter()
    for i in range(guesses):
        function(f"guess-{offset + i}".encode())
    return (time.perf_counter() - start) / guesses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--guesses", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    slow, fast = [], []
    for round_ in range(args.rounds):
        slow.append(per_guess(now, args.guesses, round_ * args.guesses))
        fast.append(per_guess(before, args.guesses * 100, round_ * args.guesses * 100))
    s, f = statistics.median(slow), statistics.median(fast)
    print(
        f"scrypt fingerprint: {s * 1e3:.1f} ms per guess (range {min(slow) * 1e3:.1f}–{max(slow) * 1e3:.1f})"
    )
    print(
        f"HMAC fingerprint:   {f * 1e6:.2f} µs per guess (range {min(fast) * 1e6:.2f}–{max(fast) * 1e6:.2f})"
    )
    print(
        f"ratio: {s / f:,.0f}× per guess; 2,100 guesses: {2100 * s:.0f} s now, {2100 * f * 1e3:.1f} ms before"
    )
    print(f"peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
