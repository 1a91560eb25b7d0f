"""Hot swap under load, rollback, failed versions never go live, SV-09, CC-07."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from nbmci.errors import NotServableError
from tests.serve.conftest import (
    TOKEN,
    assert_clean_switch,
    broken,
    commit,
    fit,
    load_loop,
    saw_version,
    wait_for,
)


@pytest.fixture(scope="module")
def setup(serving: Any, iris_frame: Any) -> Any:
    project, running = serving
    return project, running, running.state.host, iris_frame


def test_sv09_unpublished_version_is_not_picked_up(setup: Any) -> None:
    project, _running, host, (X, y) = setup
    assert commit(project, fit(X, y, c=0.5), X, y) == 2
    polls = host.polls
    wait_for(lambda: host.polls >= polls + 3)
    assert host.get("iris").version == 1


def test_sv01_hot_swap_under_load_drops_nothing(setup: Any) -> None:
    project, running, _host, _ = setup
    with load_loop(running.url) as seen:
        project.publish("iris@2", force=True)
        wait_for(lambda: saw_version(seen, "2"))
        count = len(seen)
        wait_for(lambda: len(seen) > count + 20)
    assert_clean_switch(seen, "1", "2")
    metrics = running.client().get("/metrics").text
    assert 'nbmci_live_version{model="iris"} 2.0' in metrics


def test_rollback_is_followed_without_a_dropped_request(setup: Any) -> None:
    project, running, _host, _ = setup
    with load_loop(running.url) as seen:
        project.rollback("iris")
        wait_for(lambda: saw_version(seen, "1"))
        count = len(seen)
        wait_for(lambda: len(seen) > count + 20)
    assert_clean_switch(seen, "2", "1")


def test_sv02_failed_smoke_test_keeps_the_old_model(setup: Any) -> None:
    project, running, host, (X, y) = setup
    number = commit(project, broken(X, y), X, y)
    with pytest.raises(NotServableError, match="not servable"):  # publish checks first
        project.publish(f"iris@{number}", force=True)
    with load_loop(running.url) as seen:
        project.set_alias(f"iris@{number}", "production")  # moved by other means
        wait_for(lambda: number in host.state("iris").failed)
        count = len(seen)
        wait_for(lambda: len(seen) > count + 20)
    assert "smoke test" in host.state("iris").failed[number]
    assert {s for s in seen} == {(200, "1")}
    assert host.get("iris").version == 1
    assert 'nbmci_failed_swaps_total{model="iris"} 1.0' in running.client().get("/metrics").text


def test_untrusted_pickle_is_refused_without_trust(setup: Any) -> None:
    project, running, host, (X, y) = setup
    number = commit(project, fit(X, y), X, y, format="joblib")
    project.publish(f"iris@{number}", force=True)
    wait_for(lambda: number in host.state("iris").failed)
    assert "--trust-pickle" in host.state("iris").failed[number]
    assert host.get("iris").version == 1
    ready = running.client().get("/v2/health/ready")
    assert ready.status_code == 200  # the old version still serves


def test_cc07_a_reload_during_a_reload_gets_409(setup: Any) -> None:
    project, running, host, (X, y) = setup
    number = commit(project, fit(X, y), X, y, format="joblib")  # refused: an unvouched pickle
    project.publish(f"iris@{number}", force=True)
    wait_for(lambda: number in host.state("iris").failed)
    entered, release = threading.Event(), threading.Event()

    def hold(event: Any) -> None:  # only a reload retries a failed version: this is its pass
        if event.kind == "failed" and event.version == number:
            entered.set()
            release.wait(10)

    host.add_listener(hold)
    auth = {"authorization": f"Bearer {TOKEN}"}
    first: list[Any] = []
    reload = threading.Thread(target=lambda: first.append(
        running.client().post("/admin/reload", headers=auth)))
    reload.start()
    try:
        assert entered.wait(10)
        answer = running.client().post("/admin/reload", headers=auth)
    finally:
        release.set()
        reload.join(10)
    assert answer.status_code == 409 and "reload_in_progress" in answer.json()["error"]
    assert first[0].status_code == 200


def test_cc07_racing_publish_and_rollback_end_in_agreement(setup: Any) -> None:
    project, _running, host, _ = setup
    project.publish("iris@2", force=True)
    wait_for(lambda: host.get("iris").version == 2)
    racers = [threading.Thread(target=project.publish, args=("iris@1",),
                               kwargs={"force": True}),
              threading.Thread(target=project.rollback, args=("iris",))]
    for t in racers:
        t.start()
    for t in racers:
        t.join(10)
    target = project.show("iris@production").version
    wait_for(lambda: host.get("iris").version == target or target in host.state("iris").failed)


def test_a_published_version_the_server_refused_answers_503_with_the_reason(setup: Any) -> None:
    project, running, host, (X, y) = setup
    number = commit(project, fit(X, y), X, y, name="lone", format="joblib")
    project.publish(f"lone@{number}", force=True)
    wait_for(lambda: number in host.state("lone").failed)
    with running.client() as http:
        for answer in (http.post("/invocations?model=lone", json={"instances": [[0, 0, 0, 0]]}),
                       http.post("/v2/models/lone/infer", json={"inputs": []})):
            body = answer.json()
            assert answer.status_code == 503 and answer.headers["retry-after"] == "1"
            assert body["type"] == "VersionRefusedError"
            assert f"lone@{number} is published, but this server refused it" in body["error"]
            assert "--trust-pickle" in body["error"]  # the reason it never went live
        assert http.post("/invocations?model=nope", json={"instances": [[0]]}).status_code == 404
