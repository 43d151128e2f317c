"""Headless Chromium for the console's browser test: Debian's chromium and chromedriver,
installed with apt when missing (as root), skipped only when they cannot be."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Final

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

CHROMIUM: Final = "/usr/bin/chromium"
CHROMEDRIVER: Final = "/usr/bin/chromedriver"
PACKAGES: Final = ("chromium", "chromium-driver")
# The machine's network is closed: nothing in the background may try to reach it.
FLAGS: Final = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,1000",
)
ROOT: Final = Path(__file__).resolve().parents[2]


def screenshots_dir() -> Path:
    """Where the test saves its screenshots: $SCFED_SCREENSHOTS, else tests-artifacts/console."""
    folder = Path(os.environ.get("SCFED_SCREENSHOTS") or ROOT / "tests-artifacts" / "console")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def ensure_chromium() -> None:
    """Installs chromium and chromedriver with apt when they are missing; skips the test when
    that is impossible (not root, no apt-get, or apt fails)."""
    if Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists():
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        pytest.skip("chromium and chromedriver are missing and installing them needs root and apt")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for args in (
        ["apt-get", "update", "-q"],
        ["apt-get", "install", "-y", "-q", "--no-install-recommends", *PACKAGES],
    ):
        result = subprocess.run(args, capture_output=True, text=True, timeout=900, env=env)
        if result.returncode != 0:
            pytest.skip(f"apt-get could not install {' '.join(PACKAGES)}: {result.stderr[-500:]}")


def chromium(user_data_dir: Path) -> webdriver.Chrome:
    """A headless Chromium with a fresh profile, driven through Debian's chromedriver."""
    ensure_chromium()
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={user_data_dir}")
    return webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
