"""``nbmci demo`` as a user runs it: the whole journey, leaving nothing in the temp folder."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.kernel


def test_demo_leaves_nothing_in_the_temp_folder(tmp_path: Path) -> None:
    temp, runtime, here = tmp_path / "tmp", tmp_path / "runtime", tmp_path / "cwd"
    for folder in (temp, runtime, here):
        folder.mkdir()
    env = {**os.environ, "TMPDIR": str(temp), "JUPYTER_RUNTIME_DIR": str(runtime)}
    done = subprocess.run([sys.executable, "-m", "nbmci.cli", "demo"], cwd=here, env=env,
                          capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "clf@production -> clf@2" in done.stdout  # the journey ran: published, ...
    assert "rolled back" in done.stdout
    assert "was temporary and is removed" in done.stdout
    assert sorted(p.name for p in temp.iterdir()) == []
    assert sorted(p.name for p in runtime.iterdir()) == []
    assert sorted(p.name for p in here.iterdir()) == []
