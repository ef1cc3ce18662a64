"""Packaging (issue 9, "Operating stox"): the Debian package, its systemd unit, and the unit's command
line, through scripts/package-check.sh, one step per test and in this order (the steps share one work
directory; a step whose predecessor failed fails too, saying what is missing).

Needs root (dpkg -i), like the rest of the suite in CI: as another user the install and later steps
fail, they are never skipped. The package is purged at the end, also when a test failed.
No XMPP server or SIP peer is involved: these tests run before the peer tests.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "package-check.sh"


@pytest.fixture(scope="module")
def pkg_dir():
    # not under pytest's tmp_path: that is private to root (0700), and the run step's config and
    # state directory must be reachable by user stox
    d = Path(tempfile.mkdtemp(prefix="stox-package-check."))
    d.chmod(0o755)
    yield d
    # leave the machine as found, whatever failed
    r = subprocess.run(["bash", str(SCRIPT), "purge"], env=dict(os.environ, PKG_CHECK_DIR=str(d)),
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, "package-check.sh purge failed (work directory kept: %s):\n%s%s" % (
        d, r.stdout[-3000:], r.stderr[-3000:])
    shutil.rmtree(d, ignore_errors=True)


def step(pkg_dir: Path, name: str, timeout: int = 600) -> str:
    r = subprocess.run(["bash", str(SCRIPT), name], env=dict(os.environ, PKG_CHECK_DIR=str(pkg_dir)),
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)
    out = r.stdout + r.stderr
    assert r.returncode == 0, "scripts/package-check.sh %s failed (exit %d):\n%s" % (name, r.returncode, out[-6000:])
    assert "package-check: ok" in r.stdout, "no 'package-check: ok' from step %s:\n%s" % (name, out[-6000:])
    return out


def test_packaging_build_deb(pkg_dir):
    # cargo-deb (installed if missing, pinned) over the debug binary run.sh built: STOX_DEB_PROFILE=dev
    step(pkg_dir, "build", timeout=1800)


def test_packaging_contents_and_modes(pkg_dir):
    out = step(pkg_dir, "contents")
    assert "./usr/lib/systemd/system/stox.service" in out


def test_packaging_install_and_check_config(pkg_dir):
    out = step(pkg_dir, "install", timeout=900)
    assert "/etc/stox/component.toml: ok" in out


def test_packaging_systemd_analyze_verify(pkg_dir):
    step(pkg_dir, "verify")


def test_packaging_unit_command_starts_and_stops(pkg_dir):
    out = step(pkg_dir, "run")
    assert "clean exit 0 after SIGTERM" in out


def test_packaging_purge_leaves_nothing(pkg_dir):
    step(pkg_dir, "purge", timeout=900)
