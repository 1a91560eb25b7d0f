"""CI from the panel: a background job with real kernels, followed to its end, then publish and
open the executed notebook; a second start meanwhile is refused; a cancelled job records nothing.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import nbformat
import pytest

from nbmci.api import Project
from tests.ci.conftest import RECORD_ACCURACY, notebook
from tests.lab.conftest import NOTEBOOK, Client, quote

pytestmark = pytest.mark.kernel

DEADLINE = 120.0  # seconds a job may take before the test gives up


async def wait_for(api: Client, job_id: str) -> dict[str, Any]:
    """Poll the job as the panel does until it ends (bounded)."""
    seen = []
    started = time.monotonic()
    while time.monotonic() - started < DEADLINE:
        reply = await api.get(f"jobs/{job_id}")
        assert reply.status == 200, reply.body
        job = reply.json
        seen.append(job["done"])
        if job["state"] != "running":
            assert seen == sorted(seen)  # progress only goes forward
            return job
        await asyncio.sleep(0.2)  # the server runs on this loop: never block it
    raise AssertionError(f"job {job_id} still running after {DEADLINE}s: {job}")


async def test_ci_job_publish_open_and_cancel(api: Client, lab_project: Project,
                                              jp_root_dir: Path) -> None:
    (jp_root_dir / "notebooks").mkdir()
    (jp_root_dir / NOTEBOOK).write_text(notebook(RECORD_ACCURACY))
    (jp_root_dir / "pyproject.toml").write_text(
        f'[tool.nbmci.ci]\nnotebooks = ["{NOTEBOOK}"]\ntimeout = 90\n\n'
        '[tool.nbmci.gates]\naccuracy = ">= 0.5"\n')

    start = await api.post("models/clf/ci", {"version": 1})
    assert start.status == 202, start.body
    job = start.json
    assert (job["kind"], job["ref"], job["state"]) == ("ci", "clf@1", "running")
    assert (job["done"], job["total"], job["result"], job["finished_at"]) == (0, 1, None, None)
    assert {"id", "message", "started_at", "error"} <= set(job)

    second = await api.post("models/clf/ci", {})
    assert second.status == 409 and second.json["type"] == "ConflictError"
    assert "already running" in second.json["error"] and job["id"] in second.json["hint"]
    assert [j["id"] for j in (await api.get("jobs")).json] == [job["id"]]

    done = await wait_for(api, job["id"])
    assert done["state"] == "passed", done
    assert done["done"] == done["total"] == 1 and done["error"] is None
    assert done["finished_at"] and "passed" in done["message"]
    (outcome,) = done["result"]["versions"]
    assert outcome["ref"] == "clf@1" and outcome["metrics"]["accuracy"] == 0.91
    v1 = (await api.get("models/clf")).json["versions"][1]
    assert v1["ref"] == "clf@1" and v1["ci"]["status"] == "passed"

    published = await api.post("models/clf/publish", {"version": 1})
    assert published.status == 200 and published.json["forced"] is False

    opened = await api.get(f"models/clf/versions/1/notebooks/{quote(NOTEBOOK)}")
    assert opened.status == 200, opened.body
    assert (opened.json["ref"], opened.json["notebook"]) == ("clf@1", NOTEBOOK)
    executed = nbformat.from_dict(opened.json["content"])
    assert any('"model_ref"' in c.source or "clf@1" in c.source for c in executed.cells)
    assert executed.metadata.get("papermill")  # the executed copy, not the source notebook

    # the default target is the latest version; cancelled at once, it records nothing
    start = await api.post("models/clf/ci")
    assert start.status == 202 and start.json["ref"] == "clf@2"
    cancel = await api.post(f"jobs/{start.json['id']}/cancel")
    assert cancel.status == 202 and cancel.json["cancel_requested"] is True
    ended = await wait_for(api, start.json["id"])
    assert ended["state"] == "cancelled" and "nothing was recorded" in ended["error"]
    assert lab_project.show("clf@2").ci is None
    again = await api.post(f"jobs/{start.json['id']}/cancel")  # finished: unchanged
    assert again.status == 202 and again.json["state"] == "cancelled"
