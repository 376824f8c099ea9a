"""How tabular models register: a config class, the problems they solve, one builder, and the
skops types their fitted pipelines are made of."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from medml_cli.registry import MODELS, PROBLEMS

#: The built-in problem types; a plug-in problem type registered before its models counts too.
BUILTIN_PROBLEMS = ("binary-classification", "multiclass", "regression", "survival")

#: What ``evaluation.recalibration`` (CalibratedClassifierCV around any classifier) and the
#: svm's own calibration add to a saved pipeline; every classifier may be wrapped, so every
#: classification model trusts these.
CALIBRATION_TYPES = (
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    "sklearn.isotonic.IsotonicRegression",
)
#: What ``evaluate --update intercept|recalibrate`` saves around any fitted binary classifier
#: (medml's own wrapper: two numbers over the base pipeline, whose types are checked too).
UPDATE_TYPES = ("medml_cli.models.recalibrated.RecalibratedClassifier",)
#: The same for a fitted regressor (a linear recalibration of its predictions).
REGRESSION_UPDATE_TYPES = ("medml_cli.models.recalibrated.RecalibratedRegressor",)


def register_model(
    name: str,
    *,
    config: type,
    summary: str,
    problems: tuple[str, ...],
    data_kind: str = "tabular",
    trusted_types: Iterable[str] = (),
    native_missing: bool = False,
) -> Callable[[Any], Any]:
    """Register a builder ``build(cfg, *, problem, schema, seed) -> estimator``.

    ``native_missing``: the estimator handles missing values itself (``data.missing:
    native`` is allowed with it). ``trusted_types`` names the types (``module.Class``) of
    the fitted model that skops does not trust by default, e.g.
    ``("sklearn.tree._tree.Tree",)``; a saved model is only loaded if every type it asks for
    is trusted by skops, medml's base list or a registered model.
    """
    unknown = set(problems) - set(BUILTIN_PROBLEMS) - set(PROBLEMS.names())
    if unknown:
        raise ValueError(f"unknown problem kinds {unknown}")
    trusted = tuple(trusted_types)
    bad = [t for t in trusted if not isinstance(t, str) or "." not in t]
    if bad:
        raise ValueError(f"trusted_types must be dotted type names, got {bad}")
    if data_kind == "tabular" and ("binary-classification" in problems
                                  or "multiclass" in problems):
        trusted = (*trusted, *CALIBRATION_TYPES)
    if data_kind == "tabular" and "binary-classification" in problems:
        trusted = (*trusted, *UPDATE_TYPES)
    if data_kind == "tabular" and "regression" in problems:
        trusted = (*trusted, *REGRESSION_UPDATE_TYPES)
    return MODELS.register(name, config=config, summary=summary, tags={*problems, data_kind},
                           extra={"trusted_types": tuple(dict.fromkeys(trusted)),
                                  "native_missing": native_missing})
