"""Headless Chromium (the distribution's package) for tests of the audit's pages."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

CANDIDATES = ("chromium", "chromium-browser", "google-chrome")


def chromium() -> str:
    """The browser's executable; the test fails (it does not skip) when none is installed:
    ``make setup`` installs Debian's ``chromium``."""
    for name in CANDIDATES:
        path = shutil.which(name)
        if path is not None:
            return path
    pytest.fail("no headless Chromium on PATH (make setup installs Debian's chromium package)")


def headless(page: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    """Chromium run headless on ``page`` (a file) with ``flags``, in a profile of its own."""
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run(
            [
                chromium(),
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                f"--user-data-dir={profile}",
                *flags,
                page.resolve().as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )


def screenshot(page: Path, out: Path, width: int, height: int) -> np.ndarray:
    """Render ``page`` (a file) at ``width``×``height`` CSS pixels; the screenshot as RGB."""
    done = headless(
        page,
        "--hide-scrollbars",
        "--no-first-run",
        "--force-device-scale-factor=1",
        f"--window-size={width},{height}",
        f"--screenshot={out}",
    )
    assert done.returncode == 0 and out.is_file(), done.stderr[-2000:]
    with Image.open(out) as image:
        return np.asarray(image.convert("RGB"))


def dump_dom(page: Path) -> str:
    """The DOM Chromium built from ``page``, serialized."""
    done = headless(page, "--dump-dom")
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def rgb(colour: str) -> tuple[int, int, int]:
    """``#rrggbb`` as a triple."""
    value = colour.lstrip("#")
    return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)


def share_of(pixels: np.ndarray, colour: str, tolerance: int = 6) -> float:
    """The fraction of ``pixels`` within ``tolerance`` of ``colour`` in every channel."""
    target = np.array(rgb(colour), dtype=np.int32)
    close = np.all(np.abs(pixels.astype(np.int32) - target) <= tolerance, axis=-1)
    return float(close.mean())
