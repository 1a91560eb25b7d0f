"""SV-08: 100 publish/rollback cycles of mid-size models under load: RSS settles and every
replaced model is freed once its last request is done."""

from __future__ import annotations

import gc
import os
import weakref
from typing import Any

import pytest

from nbmci.api import Project
from nbmci.config import load_settings
from nbmci.serve.app import create_app
from nbmci.serve.settings import ServeSettings
from tests.serve.conftest import commit, load_loop, run_server, wait_for

CYCLES = 100
_PAGE = os.sysconf("SC_PAGE_SIZE")


def rss() -> int:
    """Resident bytes of this process (the server runs in it), from /proc/self/statm."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * _PAGE


def forest(seed: int) -> tuple[Any, Any, Any]:
    """A random forest of about 2.5 MB pickled, on 4 features like the load loop's rows."""
    import pandas as pd
    from sklearn.datasets import make_classification
    from sklearn.ensemble import RandomForestClassifier

    X, y = make_classification(3000, 4, n_informative=3, n_redundant=1, flip_y=0.2,
                               random_state=seed)
    X = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    return RandomForestClassifier(40, random_state=seed).fit(X, y), X, pd.Series(y, name="y")


@pytest.mark.slow
def test_sv08_publish_rollback_cycles_settle_and_free_old_models(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    root = tmp_path_factory.mktemp("memory")
    (root / ".nbmci").mkdir(mode=0o700)
    project = Project(load_settings(root))
    for seed in (1, 2):  # joblib (vouched for) loads in milliseconds, so 200 swaps stay quick
        commit(project, *forest(seed), name="rf", format="joblib", trust=True)
    project.publish("rf@1", force=True)
    host = None
    try:
        with run_server(create_app(ServeSettings(poll_interval=0.05), project=project)) \
                as running:
            host = running.state.host
            wait_for(lambda: host.is_ready)
            samples = []
            with load_loop(running.url) as seen:
                for cycle in range(CYCLES):
                    old = weakref.ref(host.get("rf").model)
                    project.publish("rf@2", force=True)
                    host.reload()
                    assert host.get("rf").version == 2
                    project.rollback("rf")
                    host.reload()
                    assert host.get("rf").version == 1
                    if cycle % 10 == 0:  # released once its last in-flight request is done
                        wait_for(lambda old=old: gc.collect() >= 0 and old() is None,
                                 timeout=5)
                    samples.append(rss())
            assert {status for status, _ in seen} == {200}
            assert not host.state("rf").failed
    finally:
        project.close()
    early = max(samples[:10])
    late_growth = max(samples[CYCLES // 2:]) - samples[CYCLES // 2 - 1]
    mb = 1 << 20
    assert late_growth < 30 * mb, (
        f"RSS grew {late_growth / mb:.1f} MB over the last {CYCLES // 2} cycles "
        f"(first cycles: {early / mb:.0f} MB, end: {samples[-1] / mb:.0f} MB)")
