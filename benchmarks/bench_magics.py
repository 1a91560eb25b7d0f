"""``%mci_commit`` through a real kernel, against ``nbmci.commit`` in the same kernel.

Usage::

    python -m benchmarks.bench_magics                 # 30 repetitions of each, about 15 s
    python -m benchmarks.bench_magics --reps 10 --json results.json

One kernel (jupyter_client, the ``python3`` kernelspec) runs in a temporary project. A cell
fits a small model and builds a 10,000-row frame once; each repetition then changes one value
of the frame, so every commit stores a new version of the data as a user iterating would, and
commits it with the magic and with the API in turn. Reported, as median and p90:

- *cell*: the wall time a client sees, from the execute request until the kernel is idle
  again, outputs (the card widget) included;
- *in kernel*: the time around the call alone, measured inside the kernel.

The magic's overhead is the difference of the medians. Budgets (issue 3): the ``%mci_commit``
cell's median <= 150 ms, and the overhead <= 20 ms. The script reports; it never fails a run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.manager import KernelManager, start_new_kernel
from rich.console import Console
from rich.table import Table

ROWS = 10_000
CELL_BUDGET = 0.150
OVERHEAD_BUDGET = 0.020
WARM_UP = 3

SETUP = f"""\
import json, time
import numpy as np, pandas as pd
import nbmci
from sklearn.linear_model import LogisticRegression
rng = np.random.default_rng(0)
frame = pd.DataFrame({{f"x{{i}}": rng.standard_normal({ROWS}) for i in range(8)}})
frame["label"] = (frame.x0 > 0).astype("int64")
clf = LogisticRegression(max_iter=200).fit(frame.drop(columns="label"), frame.label)
_times = {{"magic": [], "api": []}}
_step = 0
"""
# The edit before the timer makes each commit's data new; the timer covers the call only.
EDIT = "_step += 1\nframe.iat[_step % len(frame), 0] = float(_step)\n_t0 = time.perf_counter()\n"
CALLS = {
    "magic": '%mci_commit clf --data frame -m "bench"\n',
    "api": 'nbmci.commit(clf, data={"frame": frame}, name="clf", message="bench")\n',
}


@dataclass(frozen=True)
class Summary:
    """Median and 90th percentile of a list of seconds."""

    median: float
    p90: float

    @classmethod
    def of(cls, seconds: Sequence[float]) -> Summary:
        ordered = sorted(seconds)
        return cls(statistics.median(ordered), ordered[int(0.9 * (len(ordered) - 1))])


class Kernel:
    """A kernel in ``root``, and the wall time of each cell as a client sees it."""

    def __init__(self, root: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("NBMCI_")}
        self.manager: KernelManager
        self.client: BlockingKernelClient
        self.manager, self.client = start_new_kernel(kernel_name="python3", cwd=str(root),
                                                     env=env)

    def run(self, code: str) -> tuple[float, str]:
        """``(seconds until idle, stdout)``; a failing cell raises ``RuntimeError``."""
        printed: list[str] = []

        def collect(message: dict[str, Any]) -> None:
            if message["msg_type"] == "stream" and message["content"]["name"] == "stdout":
                printed.append(message["content"]["text"])

        started = time.perf_counter()
        reply = self.client.execute_interactive(code, timeout=120, output_hook=collect)
        elapsed = time.perf_counter() - started
        if reply["content"]["status"] != "ok":
            content = reply["content"]
            raise RuntimeError(f"cell failed: {content.get('ename')}: {content.get('evalue')}")
        return elapsed, "".join(printed)

    def close(self) -> None:
        self.client.stop_channels()
        self.manager.shutdown_kernel(now=True)


def measure(kernel: Kernel, reps: int) -> dict[str, Any]:
    """Cell and in-kernel timings of both calls, alternating, after a warm-up."""
    kernel.run(SETUP + "%load_ext nbmci")
    cold, _ = kernel.run(EDIT + CALLS["magic"])
    cells: dict[str, list[float]] = {"magic": [], "api": []}
    for rep in range(WARM_UP + reps):
        for kind, call in CALLS.items():
            elapsed, _ = kernel.run(EDIT + call + f"_times[{kind!r}].append("
                                    "time.perf_counter() - _t0)")
            if rep >= WARM_UP:
                cells[kind].append(elapsed)
    _, printed = kernel.run(f"print(json.dumps({{k: v[{WARM_UP}:] for k, v in _times.items()}}))")
    inside = json.loads(printed)
    return {"cold_cell": cold, "cell": {k: Summary.of(v) for k, v in cells.items()},
            "inside": {k: Summary.of(v) for k, v in inside.items()}}


def rows(result: dict[str, Any]) -> list[tuple[str, Summary | None, float, float | None]]:
    """``(step, timings, value judged, budget)`` for the table, budgets on the judged rows."""
    cell, inside = result["cell"], result["inside"]
    return [
        ("nbmci.commit, in kernel", inside["api"], inside["api"].median, None),
        ("%mci_commit, in kernel", inside["magic"], inside["magic"].median, None),
        ("overhead in kernel (magic - API)", None,
         inside["magic"].median - inside["api"].median, OVERHEAD_BUDGET),
        ("nbmci.commit cell, client wall", cell["api"], cell["api"].median, None),
        ("%mci_commit cell, client wall", cell["magic"], cell["magic"].median, CELL_BUDGET),
        ("overhead per cell (magic - API)", None,
         cell["magic"].median - cell["api"].median, OVERHEAD_BUDGET),
        ("first %mci_commit in a fresh kernel", None, result["cold_cell"], None),
    ]


def table(result: dict[str, Any], reps: int) -> Table:
    out = Table(title=f"%mci_commit of a small model with a {ROWS:,}-row frame, "
                      f"median of {reps} (after {WARM_UP} warm-up)")
    for column in ("step", "median", "p90", "budget", "within"):
        out.add_column(column, justify="left" if column == "step" else "right")
    for step, timing, judged, budget in rows(result):
        p90 = f"{timing.p90 * 1000:.1f} ms" if timing else ""
        verdict = "" if budget is None else ("yes" if judged <= budget else "NO")
        limit = "" if budget is None else f"<= {budget * 1000:.0f} ms"
        out.add_row(step, f"{judged * 1000:.1f} ms", p90, limit, verdict)
    return out


def environment() -> dict[str, Any]:
    from importlib.metadata import version

    return {"python": platform.python_version(), "platform": platform.platform(terse=True),
            "cpus": os.cpu_count(),
            "packages": {p: version(p) for p in ("ipykernel", "ipython", "ipywidgets",
                                                 "jupyter_client", "pandas", "pyarrow")}}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=30, help="timed repetitions of each call")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="nbmci-bench-magics-") as work:
        root = Path(work)
        (root / ".nbmci").mkdir(mode=0o700)
        kernel = Kernel(root)
        try:
            result = measure(kernel, max(args.reps, 1))
        finally:
            kernel.close()
    console = Console(highlight=False)
    console.print(table(result, args.reps))
    facts = environment()
    console.print(", ".join(f"{k} {v}" for k, v in facts.items() if k != "packages"))
    if args.json:
        payload = {"environment": facts, "reps": args.reps,
                   "rows": [{"step": s, "seconds": j, "budget": b,
                             "timing": asdict(t) if t else None}
                            for s, t, j, b in rows(result)]}
        args.json.write_text(json.dumps(payload, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
