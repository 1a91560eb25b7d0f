"""Hot swap under load, rollback, failed versions never go live, SV-09, CC-07."""

from __future__ import annotations

import threading
import time
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
        started = time.monotonic()
        project.publish("iris@2", force=True)
        wait_for(lambda: saw_version(seen, "2"), timeout=2.0)
        observed = time.monotonic() - started
        count = len(seen)
        wait_for(lambda: len(seen) > count + 20)
    assert observed < 2.0
    assert_clean_switch(seen, "1", "2")
    metrics = running.client().get("/metrics").text
    assert 'nbmci_live_version{model="iris"} 2.0' in metrics


def test_rollback_takes_effect_within_the_poll_interval(setup: Any) -> None:
    project, running, _host, _ = setup
    with load_loop(running.url) as seen:
        project.rollback("iris")
        wait_for(lambda: saw_version(seen, "1"), timeout=2.0)
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
    _, running, host, _ = setup
    with host._reload_lock:  # another reload is running (held so the overlap is certain)
        answer = running.client().post("/admin/reload",
                                       headers={"authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == 409 and "reload_in_progress" in answer.json()["error"]


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
    target = project.registry.alias_target("iris", "production")
    wait_for(lambda: host.get("iris").version == target or target in host.state("iris").failed)
