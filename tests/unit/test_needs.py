"""The CI rule of tests/needs.py: a test whose tool is missing is skipped on a developer's machine and fails
under CI=true (what `.ci/run` exports), seen through pytest itself on a small test file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.needs import REPO, chromium_path, tool, under_ci

USES_A_MISSING_TOOL = """
from tests.needs import tool

def test_needs_a_tool():
    tool("vodflow-no-such-tool")
"""

USES_THE_BROWSER = """
import pytest
from tests.integration.browser.test_browser_outputs import browser  # noqa: F401

pytestmark = pytest.mark.usefixtures("browser")

def test_needs_chromium():
    pass
"""


def run_pytest(tmp_path: Path, source: str, **env: str) -> subprocess.CompletedProcess:
    test = tmp_path / "test_machine.py"
    test.write_text(source)
    environ = {k: v for k, v in os.environ.items() if k != "CI"} | env
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs", str(test)]
    return subprocess.run(
        [*command, "--rootdir", str(REPO)],
        cwd=REPO, env=environ, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def test_a_missing_tool_fails_the_test_under_ci(tmp_path):
    done = run_pytest(tmp_path, USES_A_MISSING_TOOL, CI="true")  # what .ci/run exports
    assert done.returncode == 1, done.stdout
    assert "1 failed" in done.stdout and "vodflow-no-such-tool" in done.stdout


@pytest.mark.parametrize("ci", [None, "false"])  # the other values: test_under_ci_reads_the_ci_variable
def test_a_missing_tool_skips_the_test_out_of_ci(tmp_path, ci):
    done = run_pytest(tmp_path, USES_A_MISSING_TOOL, **({} if ci is None else {"CI": ci}))
    assert done.returncode == 0, done.stdout
    assert "1 skipped" in done.stdout and "`vodflow-no-such-tool`: run `make test`" in done.stdout


def test_the_browser_tests_fail_under_ci_without_chromium(tmp_path):
    """The browser fixture, $CHROMIUM naming nothing: skipped on a developer's machine, failed under CI."""
    absent = str(tmp_path / "no-chromium")
    failed = run_pytest(tmp_path, USES_THE_BROWSER, CI="true", CHROMIUM=absent)
    assert failed.returncode == 1 and "1 error" in failed.stdout, failed.stdout  # failed in its fixture
    assert "browser tests need chromium" in failed.stdout
    skipped = run_pytest(tmp_path, USES_THE_BROWSER, CHROMIUM=absent)
    assert skipped.returncode == 0 and "1 skipped" in skipped.stdout, skipped.stdout


def test_chromium_is_found_where_make_put_it(tmp_path):
    """$CHROMIUM first, then `chromium` on PATH (where `make browser` checks for it), then Debian's path."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    on_path = bin_dir / "chromium"
    on_path.write_text("#!/bin/sh\n")
    on_path.chmod(0o755)
    assert chromium_path({"PATH": str(bin_dir)}) == on_path
    named = tmp_path / "chrome"
    named.write_text("")
    assert chromium_path({"PATH": str(bin_dir), "CHROMIUM": str(named)}) == named
    assert chromium_path({"PATH": str(bin_dir), "CHROMIUM": str(tmp_path / "absent")}) is None
    debian = Path("/usr/bin/chromium")
    assert chromium_path({"PATH": str(tmp_path / "empty")}) == (debian if debian.is_file() else None)


def test_under_ci_reads_the_ci_variable():
    assert [under_ci({"CI": v}) for v in ("true", "TRUE", "1", "yes")] == [True] * 4
    off = ({}, {"CI": ""}, {"CI": "0"}, {"CI": "false"}, {"CI": " False "})
    assert [under_ci(e) for e in off] == [False] * 5


def test_a_tool_on_path_is_its_path():
    assert tool("sh") == __import__("shutil").which("sh")
