"""Screenshot a report.html in headless Chromium, to check that the page renders offline.

    python scripts/screenshot_report.py report/report.html shot.png [--size 1400,2000]

Needs ``chromium`` (or ``chromium-browser``/``google-chrome``) on the PATH, e.g. ``apt-get install chromium``.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

BROWSERS = ("chromium", "chromium-browser", "google-chrome")


def screenshot(page: Path, out: Path, size: str = "1400,2000") -> Path:
    """Render ``page`` with no network access to anything but the file itself and write a PNG."""
    browser = next((b for b in BROWSERS if shutil.which(b)), None)
    if browser is None:
        raise SystemExit(f"no headless browser found (tried {', '.join(BROWSERS)}); apt-get install chromium")
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", f"--user-data-dir={profile}",
             f"--window-size={size}", f"--screenshot={out.resolve()}", page.resolve().as_uri()],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120,
        )
    if not out.is_file():
        raise SystemExit(f"{browser} wrote no screenshot for {page}")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("page", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--size", default="1400,2000", help="window width,height in px (default %(default)s)")
    args = parser.parse_args(argv)
    print(screenshot(args.page, args.out, args.size))
    return 0


if __name__ == "__main__":
    sys.exit(main())
