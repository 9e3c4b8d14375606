"""A PNG screenshot of an HTML file with headless Chromium (for the README)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
WINDOW = (1280, 2000)
TIMEOUT_S = 120.0


def html_to_png(html: Path, png: Path) -> None:
    """Render ``html`` with headless Chromium into ``png`` (1280 x 2000 pixels).

    Raises RuntimeError if Chromium is not installed or fails to write the screenshot.
    """
    html = Path(html).resolve()
    png = Path(png).resolve()
    if not html.is_file():
        raise RuntimeError(f"{html}: no such file")
    if not CHROMIUM.exists():
        raise RuntimeError(
            f"{CHROMIUM} not found: install Chromium (apt-get install -y chromium) "
            "to take screenshots"
        )
    png.parent.mkdir(parents=True, exist_ok=True)
    png.unlink(missing_ok=True)
    profile = tempfile.mkdtemp(prefix="qnetkit-chromium-")
    cmd = [
        str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
        f"--user-data-dir={profile}", f"--screenshot={png}",
        f"--window-size={WINDOW[0]},{WINDOW[1]}", html.as_uri(),
    ]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"chromium did not finish within {TIMEOUT_S:.0f} s") from None
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    if proc.returncode != 0 or not png.is_file():
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"chromium failed (exit {proc.returncode}): {last}")
