#!/usr/bin/env python3
"""Open a report page in headless Chromium, offline, check it, and take a screenshot.

    python scripts/screenshot_report.py report.html                # writes report.png beside it
    python scripts/screenshot_report.py report.html -o shot.png --width 1280 --height 9000

Two runs of the browser (``chromium`` from Debian, or $CHROMIUM), each with a new empty profile and
every host name resolving to nothing, so the page gets no network:

1. ``--dump-dom`` with console logging: the page must log no console message (errors, warnings, blocked
   loads), and the DOM the browser built must hold as many ``<svg>``, ``<figure>`` and ``<path>``
   elements as the file (an SVG the HTML parser could not take whole would change the counts);
2. ``--screenshot``: the PNG, cropped below the last non-white row, must not be blank (several colours,
   some share of non-white pixels).

Prints one JSON line of what it found. Exit status: 0 all good, 1 a check failed, 3 no Chromium found.
Needs Pillow (matplotlib, in the ``report`` extra, brings it).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Dict, List, Optional, Tuple

NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-default-apps", "--disable-extensions", "--host-resolver-rules=MAP * ~NOTFOUND",
    "--hide-scrollbars", "--force-device-scale-factor=1",
]  # fmt: skip
CONSOLE = re.compile(r":(?:INFO|WARNING|ERROR|VERBOSE\d*):CONSOLE[:(]")
EXIT_NO_BROWSER = 3


def find_chromium() -> Optional[str]:
    """$CHROMIUM, else the first Chromium or Chrome on PATH."""
    explicit = os.environ.get("CHROMIUM")
    if explicit:
        return explicit if shutil.which(explicit) else None
    for name in NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


def _run(browser: str, extra: List[str], url: str, timeout: float) -> Tuple[str, str]:
    with tempfile.TemporaryDirectory(prefix="report-browser-") as profile:
        done = subprocess.run(
            [browser, *FLAGS, f"--user-data-dir={profile}", *extra, url],
            capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-5:])
        raise SystemExit(f"{browser} failed with status {done.returncode}:\n{tail}")
    return done.stdout, done.stderr


def _counts(text: str) -> Dict[str, int]:
    return {tag: len(re.findall(rf"<{tag}[\s>/]", text)) for tag in ("svg", "figure", "path")}


def check_page(page: Path, png: Path, *, width: int = 1280, height: int = 9000, timeout: float = 120.0,
               browser: Optional[str] = None) -> Dict[str, object]:  # fmt: skip
    """Load ``page``, check it, write the screenshot to ``png``; returns what was found (``problems``
    lists what is wrong: empty when the page is good)."""
    from PIL import Image

    browser = browser or find_chromium()
    if browser is None:
        raise FileNotFoundError("no Chromium found (apt-get install chromium, or set $CHROMIUM)")
    url = page.resolve().as_uri()
    source = page.read_text(encoding="utf-8")
    dom, log = _run(browser, ["--enable-logging=stderr", "--v=0", "--virtual-time-budget=5000", "--dump-dom"],
                    url, timeout)  # fmt: skip
    console = [line.strip() for line in log.splitlines() if CONSOLE.search(line)]
    problems: List[str] = [f"console: {line}" for line in console]
    expected, built = _counts(source), _counts(dom)
    if expected != built:
        problems.append(f"the browser built {built} from a page holding {expected}")
    if "</main>" not in dom:
        problems.append("the page's <main> was not closed in the DOM")

    png.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="report-shot-") as tmp:
        raw = Path(tmp) / "shot.png"
        _run(browser, [f"--window-size={width},{height}", f"--screenshot={raw}", "--virtual-time-budget=5000"],
             url, timeout)  # fmt: skip
        image = Image.open(raw).convert("RGB")
    # crop the white below the page
    grey = image.convert("L").point(lambda v: 255 if v < 250 else 0)
    box = grey.getbbox()
    bottom = min(image.height, (box[3] + 40) if box else image.height)
    image = image.crop((0, 0, image.width, bottom))
    image.save(png, optimize=True)
    colours: List[Tuple[int, Tuple[int, int, int]]] = image.getcolors(maxcolors=1 << 20) or []  # type: ignore[assignment]
    pixels = image.width * image.height
    ink = sum(n for n, c in colours if min(c) < 245) / pixels if pixels else 0.0
    if len(colours) < 16 or ink < 0.03:
        problems.append(f"the screenshot looks blank: {len(colours)} colours, {ink:.1%} non-white")
    return {
        "page": str(page), "png": str(png), "width": image.width, "height": image.height,
        "colours": len(colours), "non_white": round(ink, 4), "elements": built, "console": console,
        "problems": problems,
    }  # fmt: skip


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("page", type=Path, help="the report's HTML file")
    parser.add_argument("-o", "--output", type=Path, help="the PNG to write (default: the page's name, .png)")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=9000, help="window height; the white below is cropped")
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args(argv)
    if not args.page.is_file():
        print(f"screenshot_report: {args.page}: no such file", file=sys.stderr)
        return 1
    try:
        found = check_page(args.page, args.output or args.page.with_suffix(".png"), width=args.width,
                           height=args.height, timeout=args.timeout)  # fmt: skip
    except FileNotFoundError as exc:
        print(f"screenshot_report: {exc}", file=sys.stderr)
        return EXIT_NO_BROWSER
    print(json.dumps(found))
    for problem in found["problems"]:  # type: ignore[attr-defined]
        print(f"screenshot_report: {problem}", file=sys.stderr)
    return 1 if found["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
