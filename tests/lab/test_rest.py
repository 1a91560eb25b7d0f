"""The REST API of the server extension, route by route, against a real jupyter_server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nbformat
import pytest

from nbmci.api import Project
from tests.lab.conftest import NOTEBOOK, Client, Reply, executed_notebook, quote, record_ci, tree


def error_of(reply: Reply, status: int, kind: str | None = None) -> dict[str, Any]:
    """The JSON error body of ``reply``, after checking its status and shape."""
    assert reply.status == status, reply.body
    assert reply.headers["Content-Type"].startswith("application/json")
    body = reply.json
    assert set(body) >= {"error", "type", "hint", "message", "status"}
    assert body["error"] and body["message"] == body["error"] and body["status"] == status
    assert "Traceback" not in reply.body.decode()
    if kind is not None:
        assert body["type"] == kind, body
    return body


# -- reads ------------------------------------------------------------------------------------


async def test_models_lists_every_model(api: Client, lab_project: Project, fitted: Any) -> None:
    lab_project.commit(fitted, None, name="other")
    lab_project.publish("clf@1", force=True)
    reply = await api.get("models")
    assert reply.status == 200
    models = {m["name"]: m for m in reply.json}
    assert set(models) == {"clf", "other"}
    clf = models["clf"]
    assert clf["versions"] == 2 and clf["latest"] == 2 and clf["aliases"] == {"production": 1}
    assert {"created_at", "updated_at"} <= set(clf)


async def test_models_without_a_project_is_empty(api: Client, jp_root_dir: Path) -> None:
    reply = await api.get("models")
    assert reply.status == 200 and reply.json == []
    assert not (jp_root_dir / ".nbmci").exists()  # looking created nothing
    body = error_of(await api.get("models/clf"), 404, "NotFoundError")
    assert "No nbmci project" in body["error"] and "nbmci init" in body["hint"]
    error_of(await api.post("models/clf/rollback"), 404)


async def test_model_versions_newest_first_with_ci(api: Client, lab_project: Project) -> None:
    record_ci(lab_project, "clf", 1)
    lab_project.publish("clf@1")
    reply = await api.get("models/clf")
    assert reply.status == 200
    model = reply.json
    assert model["name"] == "clf" and model["aliases"] == {"production": 1}
    v2, v1 = model["versions"]
    assert (v2["version"], v2["ref"], v2["ci"]) == (2, "clf@2", None)
    assert v2["message"] == "acc 0.93" and v2["metrics"] == {"acc": 0.93}
    assert v2["model"]["class"].endswith("LogisticRegression") and v2["model"]["trusted"]
    assert v1["aliases"] == ["production"]
    ci = v1["ci"]
    assert ci["status"] == "passed" and ci["metrics"] == {"accuracy": 0.9}
    assert {"gates", "started_at", "duration"} <= set(ci)
    (notebook,) = ci["notebooks"]
    assert notebook["notebook"] == NOTEBOOK and notebook["status"] == "passed"
    assert {"output_digest", "error", "cached"} <= set(notebook)


async def test_version_details_with_lineage(api: Client, lab_project: Project) -> None:
    reply = await api.get("models/clf/versions/1")
    assert reply.status == 200
    version = reply.json
    assert version["ref"] == "clf@1" and version["version"] == 1
    assert {"params", "data", "signature", "lineage", "metrics", "model", "ci"} <= set(version)
    assert version["params"]["max_iter"] == 500
    assert version == lab_project.show("clf@1").to_dict(full=True) | {
        "created_at": version["created_at"]}  # the same as `nbmci show --json`


@pytest.mark.parametrize("path", ["models/nope", "models/nope/versions/1",
                                  "models/clf/versions/3", "models/clf/versions/999999999"])
async def test_unknown_model_or_version_is_404(api: Client, lab_project: Project,
                                               path: str) -> None:
    body = error_of(await api.get(path), 404)
    assert body["type"] in ("ModelNotFoundError", "VersionNotFoundError")
    assert "nbmci" in body["hint"]


HOSTILE = ["..", "../x", "A B", "A", "a" * 65, "x" * 5000, "<script>", "clf\x00", "-clf",
           "%00", "ümlaut", "clf@1"]


@pytest.mark.parametrize("name", HOSTILE)
async def test_bad_model_names_are_400(api: Client, lab_project: Project, name: str) -> None:
    for reply in (await api.get(f"models/{quote(name)}"),
                  await api.get(f"models/{quote(name)}/versions/1"),
                  await api.post(f"models/{quote(name)}/publish", {"version": 1}),
                  await api.post(f"models/{quote(name)}/rollback"),
                  await api.post(f"models/{quote(name)}/ci", {})):
        body = error_of(reply, 400)
        assert body["type"] in ("InvalidNameError", "HTTPError"), body


@pytest.mark.parametrize("number", ["0", "-1", "1.5", "x", "01", "1e3", "9" * 30, "%20"])
async def test_bad_version_numbers_are_400(api: Client, lab_project: Project,
                                           number: str) -> None:
    body = error_of(await api.get(f"models/clf/versions/{quote(number)}"), 400,
                    "InvalidInputError")
    assert "version number" in body["error"]


async def test_unrouted_paths_are_json_404(api: Client, lab_project: Project) -> None:
    for reply in (await api.get("nothing"), await api.get(""), await api.post("models/clf/x"),
                  await api.get("models/../models"), await api("DELETE", "models/clf")):
        assert reply.status in (404, 405)
        error_of(reply, reply.status)


async def test_wrong_method_is_json_405(api: Client, lab_project: Project) -> None:
    error_of(await api.get("models/clf/publish"), 405)
    error_of(await api.post("models"), 405)


# -- publish and roll back --------------------------------------------------------------------


async def test_publish_refuses_without_ci_then_force_and_rollback(
        api: Client, lab_project: Project) -> None:
    body = error_of(await api.post("models/clf/publish", {"version": 2}), 409, "ConflictError")
    assert "has not passed CI" in body["error"] and "--force" in body["hint"]
    first = await api.post("models/clf/publish", {"version": 1, "force": True})
    assert first.status == 200
    assert first.json == {"name": "clf", "alias": "production", "previous": None, "version": 1,
                          "forced": True, "rolled_back": False, "ref": "clf@1"}
    record_ci(lab_project, "clf", 2)
    second = await api.post("models/clf/publish", {"version": 2, "force": False})
    assert second.status == 200 and second.json["previous"] == 1
    assert not second.json["forced"]
    back = await api.post("models/clf/rollback")
    assert back.status == 200
    assert back.json == {"name": "clf", "alias": "production", "previous": 2, "version": 1,
                         "forced": False, "rolled_back": True, "ref": "clf@1"}
    body = error_of(await api.post("models/clf/rollback"), 409, "ConflictError")
    assert "no earlier production version" in body["error"]
    assert lab_project.show("clf@production").version == 1


def assert_panel_words(body: dict[str, Any]) -> None:
    """The panel's fields name no CLI command, placeholder or REST route."""
    for text in (body["reason"], body["panel_hint"] or ""):
        assert "`nbmci" not in text and "NAME@N" not in text and "nbmci/api" not in text
        assert "@" not in text  # versions are the panel's to name ("clf v2"), not clf@2


async def test_model_says_where_rollback_would_go(api: Client, lab_project: Project) -> None:
    assert (await api.get("models/clf")).json["rollback"] is None  # nothing in production
    record_ci(lab_project, "clf", 1)
    record_ci(lab_project, "clf", 2)
    assert (await api.post("models/clf/publish", {"version": 1})).status == 200
    assert (await api.get("models/clf")).json["rollback"] is None  # the first production
    assert (await api.post("models/clf/publish", {"version": 2})).status == 200
    assert (await api.get("models/clf")).json["rollback"] == {"from": 2, "to": 1}
    back = await api.post("models/clf/rollback")
    assert (back.json["previous"], back.json["version"]) == (2, 1)  # where it said
    assert (await api.get("models/clf")).json["rollback"] is None
    body = error_of(await api.post("models/clf/rollback"), 409, "ConflictError")
    assert body["reason"] == "production has no earlier version to go back to"
    assert_panel_words(body)


async def test_refusals_carry_the_panels_reason(api: Client, lab_project: Project) -> None:
    body = error_of(await api.post("models/clf/publish", {"version": 2}), 409, "ConflictError")
    assert "--force" in body["hint"]  # the CLI's words stay for scripts
    assert body["reason"] == "it has not passed CI (CI has not run on it)"
    assert "Publish anyway" in body["panel_hint"] and "servability" in body["panel_hint"]
    assert_panel_words(body)
    record_ci(lab_project, "clf", 2, status="failed")
    body = error_of(await api.post("models/clf/publish", {"version": 2}), 409)
    assert body["reason"] == "it has not passed CI (its CI failed)"
    body = error_of(await api.post("models/clf/rollback"), 409)
    assert body["reason"] == "production has no earlier version to go back to"
    assert_panel_words(body)


async def test_force_never_skips_the_servability_check(api: Client, lab_project: Project,
                                                       fitted: Any) -> None:
    version = lab_project.commit(fitted, None, name="clf", message="no example rows")
    lab_project.checks.wait(version)
    shown = (await api.get("models/clf")).json["versions"][0]
    assert shown["ref"] == "clf@3" and shown["servability"]["status"] == "not servable"
    body = error_of(await api.post("models/clf/publish", {"version": 3, "force": True}), 422,
                    "NotServableError")
    assert body["reason"].startswith("it is not servable: ")
    assert "production was not moved" not in body["reason"]
    assert_panel_words(body)
    assert (await api.get("models/clf")).json["aliases"] == {}  # nothing moved


async def test_publish_failed_ci_is_refused(api: Client, lab_project: Project) -> None:
    record_ci(lab_project, "clf", 2, status="failed")
    body = error_of(await api.post("models/clf/publish", {"version": 2}), 409)
    assert "CI: failed" in body["error"]
    error_of(await api.post("models/clf/publish", {"version": 7}), 404, "VersionNotFoundError")


@pytest.mark.parametrize("raw", [b"{", b"[1]", b'"x"', b"null", b'{"version": "1"}',
                                 b'{"version": true}', b'{"version": 1, "force": "yes"}',
                                 b'{"version": 1, "extra": 1}', b'{"version": 0}',
                                 b'{"version": 1.0}', b'{"force": true}', b"\xff\xfe",
                                 b"[" * 60_000, b"[" * 100_000,
                                 b'{"version": 1, "x": "' + b"a" * 70_000 + b'"}'])
async def test_malformed_publish_bodies_are_400(api: Client, lab_project: Project,
                                                raw: bytes) -> None:
    error_of(await api.post("models/clf/publish", raw=raw), 400, "InvalidInputError")
    assert lab_project.show("clf@latest").aliases == []  # nothing moved


@pytest.mark.parametrize("raw", [b"{", b'{"version": "2"}', b'{"version": -1}', b'{"v": 1}'])
async def test_malformed_ci_bodies_are_400(api: Client, lab_project: Project,
                                           raw: bytes) -> None:
    error_of(await api.post("models/clf/ci", raw=raw), 400, "InvalidInputError")
    assert (await api.get("jobs")).json == []


# -- CI jobs (without kernels: the requests that fail before anything runs) -------------------


async def test_ci_needs_configured_notebooks(api: Client, lab_project: Project) -> None:
    body = error_of(await api.post("models/clf/ci", {"version": 1}), 400, "ConfigError")
    assert "No evaluation notebooks" in body["error"] and "[tool.nbmci.ci]" in body["hint"]
    error_of(await api.post("models/clf/ci", {"version": 9}), 404, "VersionNotFoundError")
    error_of(await api.post("models/nope/ci"), 404, "ModelNotFoundError")
    assert (await api.get("jobs")).json == []


async def test_unknown_and_malformed_job_ids(api: Client, lab_project: Project) -> None:
    error_of(await api.get("jobs/0123abcd"), 404, "NotFoundError")
    error_of(await api.post("jobs/0123abcd/cancel"), 404, "NotFoundError")
    for bad in ("x", "../jobs", "A" * 40, "<b>"):
        error_of(await api.get(f"jobs/{quote(bad)}"), 400, "InvalidInputError")
        error_of(await api.post(f"jobs/{quote(bad)}/cancel"), 400, "InvalidInputError")


# -- executed notebooks -----------------------------------------------------------------------


async def test_executed_notebook_is_read_from_the_registry(
        api: Client, lab_project: Project, jp_root_dir: Path) -> None:
    digest = record_ci(lab_project, "clf", 1, notebook=executed_notebook("first"))
    before = tree(jp_root_dir, skip=lambda p: ".nbmci" in p.parts)
    reply = await api.get(f"models/clf/versions/1/notebooks/{quote(NOTEBOOK)}")
    assert reply.status == 200, reply.body
    body = reply.json
    assert (body["ref"], body["name"], body["version"]) == ("clf@1", "clf", 1)
    assert body["notebook"] == NOTEBOOK and body["digest"] == digest
    assert body["status"] == "passed" and body["created_at"]
    notebook = nbformat.from_dict(body["content"])
    assert notebook.cells[0].outputs[0]["text"] == "first"
    # every cell untrusted: JupyterLab renders its outputs sanitized, runs none of them (SE-10)
    assert [c.metadata["trusted"] for c in notebook.cells] == [False]
    # nothing is written into the Jupyter root: no copy, so no .ipynb_checkpoints beside one
    assert tree(jp_root_dir, skip=lambda p: ".nbmci" in p.parts) == before
    assert not list(jp_root_dir.rglob(".ipynb_checkpoints"))
    # a newer CI run is what the next read shows; the raw '/' form of the name works too
    record_ci(lab_project, "clf", 1, notebook=executed_notebook("second"))
    again = await api.get(f"models/clf/versions/1/notebooks/{NOTEBOOK}")
    assert again.status == 200
    assert again.json["content"]["cells"][0]["outputs"][0]["text"] == "second"


@pytest.mark.parametrize("notebook", ["../../etc/passwd", "..", "notebooks/../x.ipynb",
                                      "/etc/passwd", "a\\b.ipynb", ".hidden.ipynb",
                                      "notebooks//x.ipynb", "x" * 300, "a\x00b"])
async def test_open_refuses_bad_notebook_names(api: Client, lab_project: Project,
                                               jp_root_dir: Path, notebook: str) -> None:
    record_ci(lab_project, "clf", 1)
    reply = await api.get(f"models/clf/versions/1/notebooks/{quote(notebook)}")
    error_of(reply, 400, "InvalidInputError")


async def test_open_unknown_notebook_version_or_run(api: Client, lab_project: Project) -> None:
    body = error_of(await api.get(
        f"models/clf/versions/1/notebooks/{quote(NOTEBOOK)}"), 404, "NotFoundError")
    assert "no CI run yet" in body["error"]
    assert body["reason"] and "nbmci" not in (body["panel_hint"] or "")  # the CLI's hint
    record_ci(lab_project, "clf", 1)
    body = error_of(await api.get("models/clf/versions/1/notebooks/other.ipynb"), 404)
    assert NOTEBOOK in body["hint"] and NOTEBOOK in body["panel_hint"]
    error_of(await api.get(f"models/clf/versions/5/notebooks/{quote(NOTEBOOK)}"), 404,
             "VersionNotFoundError")


async def test_open_names_a_corrupt_executed_notebook(api: Client, lab_project: Project,
                                                      jp_root_dir: Path) -> None:
    digest = record_ci(lab_project, "clf", 1)
    lab_project.store.path(digest)
    path = Path(lab_project.store.path(digest))
    path.chmod(0o644)
    path.write_bytes(b"tampered")
    body = error_of(await api.get(
        f"models/clf/versions/1/notebooks/{quote(NOTEBOOK)}"), 500, "CorruptObjectError")
    assert digest in body["error"] and "nbmci fsck" in body["hint"]


async def test_nbmci_root_names_a_project_elsewhere(api: Client, make_project: Any, fitted: Any,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    elsewhere = make_project()
    elsewhere.commit(fitted, None, name="remote")
    monkeypatch.setenv("NBMCI_ROOT", str(elsewhere.settings.root))
    reply = await api.get("models")
    assert reply.status == 200 and [m["name"] for m in reply.json] == ["remote"]
    assert (await api.get("models/remote/versions/1")).json["ref"] == "remote@1"
