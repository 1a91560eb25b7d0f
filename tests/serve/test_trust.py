"""A pickled model is served only with ``--trust-pickle`` or a trust flag recorded at commit."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from nbmci.api import Project
from nbmci.config import load_settings
from nbmci.errors import InvalidInputError
from nbmci.serve.app import create_app
from nbmci.serve.settings import ServeSettings
from tests.cli_helpers import run_cli
from tests.serve.conftest import ROW, commit, run_server, wait_for


class Doubler:
    """A plain Python model: only the pickle fallback (joblib) can store it."""

    def predict(self, X: Any) -> np.ndarray:
        return np.asarray(X, dtype=np.float64).sum(axis=1) * 2


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory, iris_frame: Any) -> Iterator[Any]:
    """A server whose only model, pkl@1, is a pickle nobody vouched for."""
    root = tmp_path_factory.mktemp("trust")
    (root / ".nbmci").mkdir(mode=0o700)
    project = Project(load_settings(root))
    X, y = iris_frame
    commit(project, Doubler(), X, y, name="pkl")
    project.publish("pkl@1", force=True)
    app = create_app(ServeSettings(poll_interval=0.05), project=project)
    with run_server(app) as running:
        yield project, running, running.state.host, iris_frame
    project.close()


def test_a_pickle_nobody_vouched_for_is_refused(setup: Any, caplog: Any) -> None:
    project, running, host, _ = setup
    wait_for(lambda: 1 in host.state("pkl").failed)
    reason = host.state("pkl").failed[1]
    assert "nobody vouched for it" in reason
    assert "trust=True" in reason and "--trust-pickle" in reason
    with running.client() as http:
        assert http.get("/v2/health/ready").status_code == 503
        ready = http.get("/v2/models/pkl/ready")
        assert ready.status_code == 503  # published, but refused: not "no such model"
        assert "nobody vouched for it" in ready.json()["error"]
        assert http.post("/invocations", json={"instances": [ROW]}).status_code == 400
        metrics = http.get("/metrics").text
    assert 'nbmci_failed_swaps_total{model="pkl"} 1.0' in metrics
    assert not project.show("pkl@1").model.vouched
    with caplog.at_level(logging.ERROR, logger="nbmci.serve.host"):
        host.reload()  # a manual reload retries it, and refuses it again
    assert any("pkl@1 did not go live" in r.getMessage() for r in caplog.records)
    assert [e for e in project.registry.events("pkl") if e["kind"] == "model.trusted"] == []


def test_a_pickle_vouched_for_at_commit_is_served(setup: Any, caplog: Any,
                                                  capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    project, running, host, (X, y) = setup
    assert commit(project, Doubler(), X, y, name="pkl", trust=True) == 2
    with caplog.at_level(logging.WARNING, logger="nbmci.serve.host"):
        project.publish("pkl@2", force=True)
        wait_for(lambda: "pkl" in host.live)
    assert host.get("pkl").version == 2
    assert any("vouched for it at commit" in r.getMessage() for r in caplog.records)
    with running.client() as http:
        assert http.get("/v2/health/ready").status_code == 200
        answer = http.post("/invocations", json={"instances": [ROW]})
    assert answer.status_code == 200 and answer.json() == {"predictions": [sum(ROW) * 2]}
    [event] = [e for e in project.registry.events("pkl") if e["kind"] == "model.trusted"]
    assert event["payload"]["vouched_by"] == project.show("pkl@2").author

    monkeypatch.chdir(project.settings.root)
    code, out, _ = run_cli(capsys, "show", "pkl@2", "--json")
    assert code == 0
    shown = json.loads(out)["model"]
    assert shown["trusted"] is False and shown["vouched"] is True
    assert shown["vouched_by"] == project.show("pkl@2").author
    code, out, _ = run_cli(capsys, "show", "pkl@1", "--json")
    assert json.loads(out)["model"]["vouched"] is False


def test_the_trust_flag_cannot_be_forged_through_lineage(setup: Any) -> None:
    project, _, _, (X, y) = setup
    with pytest.raises(InvalidInputError, match="reserved"):
        commit(project, Doubler(), X, y, name="pkl", lineage={"trust": {"by": "mallory"}})
    with pytest.raises(InvalidInputError, match="trust must be True or False"):
        commit(project, Doubler(), X, y, name="pkl", trust="yes")
