"""Quality gates: ``accuracy = ">= 0.90"`` or ``f1 = ">= production - 0.01"``.

A gate compares one recorded metric with a number, or with the same metric of the current
production version evaluated on the same data in the same run.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from nbmci.errors import ConfigError

_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt,
    "==": operator.eq, "!=": operator.ne,
}
_NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_GATE = re.compile(
    rf"\s*(?P<op>>=|<=|==|!=|>|<)\s*(?:(?P<number>{_NUMBER})|production"
    rf"(?:\s*(?P<combine>[-+*])\s*(?P<offset>{_NUMBER}))?)\s*"
)


@dataclass(frozen=True)
class Gate:
    metric: str
    expression: str
    op: str
    number: float | None  # absolute threshold, or None when relative to production
    combine: str | None = None  # "+", "-" or "*" with ``offset``
    offset: float = 0.0

    @property
    def relative(self) -> bool:
        return self.number is None

    @classmethod
    def parse(cls, metric: str, expression: object) -> Gate:
        """Parse one gate; a ConfigError says what is wrong and shows the accepted forms."""
        if not isinstance(expression, str):
            raise ConfigError(f"Gate '{metric}' must be a string like \">= 0.9\", "
                              f"not {expression!r}.")
        match = _GATE.fullmatch(expression)
        if not match:
            raise ConfigError(
                f"Gate '{metric}' has an expression nbmci cannot read: {expression!r}.",
                hint="Use OP NUMBER or OP production [+|-|* NUMBER], e.g. \">= 0.9\" or "
                     "\">= production - 0.01\".")
        number = match["number"]
        return cls(metric, expression.strip(), match["op"],
                   float(number) if number is not None else None, match["combine"],
                   float(match["offset"]) if match["offset"] else 0.0)

    def threshold(self, production: float | None) -> float | None:
        if self.number is not None:
            return self.number
        if production is None:
            return None
        if self.combine == "+":
            return production + self.offset
        if self.combine == "-":
            return production - self.offset
        if self.combine == "*":
            return production * self.offset
        return production

    def evaluate(self, metrics: Mapping[str, Any],
                 production: Mapping[str, Any] | None) -> GateResult:
        value = _number(metrics.get(self.metric))
        if value is None:
            return self._result("failed", None, None,
                                f"the notebooks did not record a number for '{self.metric}'")
        base = _number((production or {}).get(self.metric)) if self.relative else None
        if self.relative and base is None:
            why = "no production version" if production is None else \
                f"production did not record '{self.metric}'"
            return self._result("skipped", value, None, f"{why} to compare with")
        limit = self.threshold(base)
        assert limit is not None
        passed = _OPERATORS[self.op](value, limit)
        return self._result("passed" if passed else "failed", value, limit,
                            f"{value:.6g} {self.op} {limit:.6g}" if passed else
                            f"{value:.6g} is not {self.op} {limit:.6g}")

    def not_evaluated(self, why: str) -> GateResult:
        """This gate's result when the run could not produce its metric (an error): skipped,
        and saying so, never a failure of the model."""
        return self._result("skipped", None, None, f"not evaluated: {why}")

    def _result(self, status: str, value: float | None, limit: float | None,
                detail: str) -> GateResult:
        return GateResult(self.metric, self.expression, status, value, limit, detail)


@dataclass(frozen=True)
class GateResult:
    metric: str
    expression: str
    status: str  # passed | failed | skipped (not evaluated: no baseline, or the run errored)
    value: float | None
    threshold: float | None
    detail: str

    @property
    def ok(self) -> bool:
        return self.status != "failed"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def parse_gates(table: Mapping[str, Any]) -> list[Gate]:
    if not isinstance(table, Mapping):
        raise ConfigError("[tool.nbmci.gates] must be a table of metric = \"expression\".")
    return [Gate.parse(str(metric), expression) for metric, expression in table.items()]
