"""``--fail-under`` metric gates: parsed once, compared in each metric's own direction.

For a higher-is-better metric (AUROC) the gate is a minimum; for a lower-is-better one
(Brier score, RMSE) it is a maximum, so ``--fail-under brier=0.25`` fails a Brier of 0.30
and passes 0.16. A metric that could not be computed (None or NaN) never passes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from medml_cli.errors import ConfigError
from medml_cli.registry import PROBLEMS, did_you_mean
from medml_cli.tasks.base import higher_is_better


def gate_metrics() -> tuple[str, ...]:
    """Every metric name a gate may name: those of the registered problem types (per-horizon
    metrics as ``name@t``, e.g. ``auroc@t``)."""
    names: dict[str, None] = {}
    for entry in PROBLEMS.entries():
        names.update(dict.fromkeys(entry.obj.metric_names))
        names.update(dict.fromkeys(f"{m}@t" for m in entry.obj.horizon_metrics))
    return tuple(names)


def _gate_name(metric: str, known: tuple[str, ...]) -> str | None:
    """``metric`` as metrics.json names it: a listed name, or ``name@<time>`` of a
    per-horizon metric with the time written as the run writes it (auroc@365.0 is
    auroc@365); None for an unknown metric."""
    base, at, when = metric.partition("@")
    if not at:
        return metric if metric in known else None
    try:
        time = float(when)
    except ValueError:
        return None
    return f"{base}@{time:g}" if f"{base}@t" in known else None


@dataclass(frozen=True)
class Gate:
    """A --fail-under gate: a metric and the value it must reach."""

    metric: str
    threshold: float

    @property
    def higher_is_better(self) -> bool:
        """Whether the gated metric improves upward."""
        return higher_is_better(self.metric)

    def passes(self, value: float | None) -> bool:
        """True when ``value`` is finite and reaches the threshold in the metric's direction."""
        if value is None or not math.isfinite(value):
            return False
        return value >= self.threshold if self.higher_is_better else value <= self.threshold

    def explain(self, value: float | None, ci: list[float] | None = None) -> str:
        """Why a gate failed, saying which way the metric is compared."""
        shown = "n/a (not computed)" if value is None or value != value else f"{value:.4f}"
        bounds = f" (95% CI {ci[0]:.3f}–{ci[1]:.3f})" if ci else ""
        if self.higher_is_better:
            return f"{self.metric} = {shown}{bounds} is below the minimum {self.threshold:g}"
        return (f"{self.metric} = {shown}{bounds} is above the maximum {self.threshold:g} "
                "(lower is better)")


def parse_gates(specs: list[str]) -> list[Gate]:
    """``['auroc=0.8', 'brier=0.2']`` -> gates; unknown names and non-numbers are exit-2 errors."""
    gates = []
    for spec in specs:
        metric, _, raw = spec.partition("=")
        metric = metric.strip()
        known = gate_metrics()
        name = _gate_name(metric, known)
        if name is None:
            raise ConfigError("--fail-under", [
                f"'{spec}': unknown metric '{metric}'{did_you_mean(metric, known)}"])
        metric = name
        try:
            threshold = float(raw)
        except ValueError:
            raise ConfigError("--fail-under", [f"'{spec}': expected METRIC=NUMBER, "
                                               "e.g. auroc=0.85"]) from None
        if not math.isfinite(threshold):
            raise ConfigError("--fail-under", [f"'{spec}': the threshold must be a finite "
                                               "number, e.g. auroc=0.85"])
        gates.append(Gate(metric, threshold))
    return gates


@dataclass(frozen=True)
class GateResult:
    """A gate, the value measured and whether it passed."""

    gate: Gate
    value: float | None
    passed: bool

    def as_json(self, ci: list[float] | None) -> dict[str, Any]:
        """The result as written to metrics.json, with the metric's interval."""
        return {"metric": self.gate.metric, "threshold": self.gate.threshold,
                "direction": "min" if self.gate.higher_is_better else "max",
                "value": self.value, "ci": ci, "passed": self.passed}


def check_gates(metrics: dict[str, Any], gates: list[Gate]) -> list[GateResult]:
    """Each gate against ``metrics['metrics']``; a metric the problem lacks is exit 2."""
    results = []
    for gate in gates:
        if gate.metric not in metrics["metrics"]:
            at_horizons = [m for m in metrics["metrics"] if "@" in m]
            raise ConfigError("--fail-under", [
                f"metric '{gate.metric}' is not computed for a {metrics.get('problem')} run"
                + (f" (its per-horizon metrics: {', '.join(at_horizons)})" if at_horizons
                   else "")])
        value = metrics["metrics"][gate.metric]
        results.append(GateResult(gate, value, gate.passes(value)))
    return results
