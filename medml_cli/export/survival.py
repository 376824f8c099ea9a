"""ONNX conversion of scikit-survival estimators (the last step of a survival pipeline).

skl2onnx has no scikit-survival converters. :class:`SurvivalHead` stands in for the fitted
estimator in the export copy of the pipeline, and its converter writes two outputs, in
float64:

* ``risk`` [n]: what the estimator's ``predict`` returns;
* ``survival`` [n, len(times)]: S(t | x) at the estimator's own time points
  (``unique_times_``), the array ``predict_survival_function(X, return_array=True)``
  returns. medml reads the step curve at the times it needs (the card's grid, horizons,
  and the fine grid the median survival time is found on) with the same code it uses for
  the fitted estimator (:mod:`medml_cli.models.survival_output`).

Cox models (``CoxPHSurvivalAnalysis``, ``CoxnetSurvivalAnalysis``): ``risk = x . coef -
offset`` and ``S(t | x) = S0(t) ** exp(risk)``, with the Breslow baseline survival ``S0``
at the fitted event times baked into the graph as constants, as scikit-survival computes it.

Random survival forests: each tree's leaves hold a cumulative hazard and a survival curve
over ``unique_times_``, and the forest averages the trees. A float64 ``TreeEnsemble``
(:func:`medml_cli.export.converters._tree_sums`) finds each tree's leaf (splits on
``float32(x)``, as scikit-learn's trees take them); a 0/1 leaf matrix times the table of
leaf values (risk = the leaf's cumulative hazard summed over the event times, then its
curve) gives the forest's sums, divided by the number of trees. The graph holds one row
per leaf, and the leaf matrix is [n, leaves]: medml scores a bundle in batches of
:data:`medml_cli.runs.onnx_bundle.SURVIVAL_BATCH_ROWS` rows.

Other survival estimators (gradient-boosted Cox models, ``low_memory`` forests) have no
conversion: :func:`unsupported_survival_reason` names why, and the export refuses them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator

#: Output names of a survival graph (the signature records them).
RISK_OUTPUT = "risk"
SURVIVAL_OUTPUT = "survival"


class SurvivalHead(BaseEstimator):
    """A fitted scikit-survival estimator as the ONNX export sees it (never fitted or saved)."""

    def __init__(self, estimator: Any = None) -> None:
        self.estimator = estimator

    @property
    def times_(self) -> np.ndarray:
        """The time points of the graph's ``survival`` output (the estimator's own)."""
        return np.asarray(self.estimator.unique_times_, dtype=np.float64)


def _kind(estimator: Any) -> str:
    """``cox``, ``forest`` or the class name of an estimator with no conversion."""
    name = type(estimator).__name__
    if name in ("CoxPHSurvivalAnalysis", "CoxnetSurvivalAnalysis"):
        return "cox"
    if name == "RandomSurvivalForest":
        return "forest"
    if name == "GradientBoostingSurvivalAnalysis":
        return "boosting"
    return name


def unsupported_survival_reason(estimator: Any) -> str | None:
    """Why a fitted survival estimator cannot be exported, or None when it can."""
    kind = _kind(estimator)
    if kind == "forest" and getattr(estimator, "low_memory", False):
        return ("the random survival forest was fitted with low_memory=True, which keeps no "
                "survival curves in its leaves")
    if kind == "boosting":
        if type(getattr(estimator, "_loss", None)).__name__ != "CoxPH":
            return ("the gradient-boosted survival model was not fitted with the Cox loss, so "
                    "it has no survival function")
        if hasattr(estimator, "_scale") or not (isinstance(estimator.init_, str)
                                                and estimator.init_ == "zero"):
            return ("the gradient-boosted survival model was fitted with dropout or an init "
                    "estimator, which medml's conversion does not reproduce")
    if kind in ("cox", "forest", "boosting"):
        return None
    return (f"medml has no ONNX conversion for scikit-survival's {kind} (Cox models, random "
            "survival forests and gradient-boosted Cox models are exported)")


def _cox_parts(estimator: Any) -> tuple[np.ndarray, float]:
    """Coefficients and offset, as the estimator's predict uses them."""
    if type(estimator).__name__ == "CoxnetSurvivalAnalysis":
        coef, offset = estimator._get_coef(None)
        return np.asarray(coef, np.float64), float(offset)
    return np.asarray(estimator.coef_, np.float64), 0.0


def _breslow_baseline(estimator: Any) -> np.ndarray:
    """The Breslow baseline survival S0 at the estimator's time points (the one its
    predict_survival_function raises to exp(risk))."""
    if type(estimator).__name__ == "CoxnetSurvivalAnalysis":
        baseline = estimator._get_baseline_model(None)
    else:
        baseline = estimator._baseline_model
    return np.asarray(baseline.baseline_survival_.y, np.float64)


def _parser(scope: Any, model: Any, inputs: Any, custom_parsers: Any = None) -> Any:
    """Declare the two outputs, ``risk`` and ``survival``."""
    from skl2onnx._supported_operators import get_model_alias
    from skl2onnx.common.data_types import DoubleTensorType

    operator = scope.declare_local_operator(get_model_alias(type(model)), model)
    operator.inputs = inputs
    for name in (RISK_OUTPUT, SURVIVAL_OUTPUT):
        operator.outputs.append(scope.declare_local_variable(name, DoubleTensorType()))
    return operator.outputs


def _shape(operator: Any) -> None:
    from skl2onnx.common.data_types import DoubleTensorType

    n_times = len(operator.raw_operator.times_)
    operator.outputs[0].type = DoubleTensorType([None])
    operator.outputs[1].type = DoubleTensorType([None, n_times])


def _convert(scope: Any, operator: Any, container: Any) -> None:
    """``risk`` and ``survival`` of the wrapped estimator, in float64."""
    from skl2onnx.algebra.onnx_ops import OnnxExp, OnnxIdentity, OnnxPow, OnnxReshape

    head = operator.raw_operator
    estimator = head.estimator
    opv = container.target_opset
    x = operator.inputs[0]
    kind = _kind(estimator)
    if kind == "forest":
        risk, survival = _forest_graph(estimator, x, scope, container, opv)
    else:
        risk = (_cox_graph(estimator, x, opv) if kind == "cox"
                else _boosting_graph(estimator, x, scope, container, opv))
        # the Breslow curve: S0(t) ** exp(risk)
        survival = OnnxPow(_breslow_baseline(estimator).reshape(1, -1),
                           OnnxExp(risk, op_version=opv), op_version=opv)
    OnnxReshape(risk, np.array([-1], dtype=np.int64), op_version=opv,
                output_names=operator.outputs[:1]).add_to(scope, container)
    OnnxIdentity(survival, op_version=opv, output_names=operator.outputs[1:2]).add_to(
        scope, container)


def _cox_graph(estimator: Any, x: Any, opv: int) -> Any:
    """``x . coef - offset`` as [n, 1]."""
    from skl2onnx.algebra.onnx_ops import OnnxMatMul, OnnxSub

    coef, offset = _cox_parts(estimator)
    return OnnxSub(OnnxMatMul(x, coef.reshape(-1, 1), op_version=opv),
                   np.array([offset], dtype=np.float64), op_version=opv)


def _float32_splits(x: Any, opv: int) -> Any:
    """``x`` rounded to float32 and back: scikit-learn's trees compare float32 inputs."""
    from onnx import TensorProto
    from skl2onnx.algebra.onnx_ops import OnnxCast

    return OnnxCast(OnnxCast(x, to=TensorProto.FLOAT, op_version=opv), to=TensorProto.DOUBLE,
                    op_version=opv)


def _sklearn_tree(tree: Any, values: np.ndarray) -> Any:
    """A fitted scikit-learn ``Tree`` with the given per-node values (one column)."""
    from medml_cli.export.converters import _Tree

    missing = getattr(tree, "missing_go_to_left", np.zeros(tree.node_count, np.uint8))
    return _Tree(tree.feature, tree.threshold, tree.children_left, tree.children_right,
                 np.asarray(missing), values)


def _boosting_graph(model: Any, x: Any, scope: Any, container: Any, opv: int) -> Any:
    """The sum over stages of ``learning_rate * leaf value`` as [n, 1] (the model starts
    from zero)."""
    from medml_cli.export.converters import _tree_sums

    rate = float(model.learning_rate)
    trees = [_sklearn_tree(t.tree_, rate * t.tree_.value[:, 0, :].astype(np.float64))
             for t in model.estimators_[:, 0]]
    return _tree_sums([[(t, 0) for t in trees]], _float32_splits(x, opv), scope, container)


def _forest_graph(forest: Any, x: Any, scope: Any, container: Any,
                  opv: int) -> tuple[Any, Any]:
    """The forest's mean risk [n, 1] and mean survival curve [n, len(times)]."""
    from onnx import TensorProto
    from skl2onnx.algebra.onnx_ops import (
        OnnxCast,
        OnnxConcat,
        OnnxConstantOfShape,
        OnnxDiv,
        OnnxMatMul,
        OnnxScatterElements,
        OnnxShape,
        OnnxSlice,
    )

    from medml_cli.export.converters import _tree_sums

    trees, table = [], []
    start = 0
    for estimator in forest.estimators_:
        tree = estimator.tree_
        leaves = np.flatnonzero(tree.children_left < 0)
        # a leaf's value is its row in the table (0 at interior nodes, never read)
        rows = np.zeros((tree.node_count, 1), np.float64)
        rows[leaves, 0] = start + np.arange(len(leaves))
        start += len(leaves)
        trees.append(_sklearn_tree(tree, rows))
        value = tree.value[leaves]  # (leaves, times, 2): cumulative hazard, survival
        risk = value[:, estimator.is_event_time_, 0].sum(axis=1)
        table.append(np.column_stack([risk, value[:, :, 1]]).astype(np.float64))
    values = np.vstack(table)
    leaf_rows = _tree_sums([[(t, 0)] for t in trees], _float32_splits(x, opv), scope,
                           container)
    index = OnnxCast(leaf_rows, to=TensorProto.INT64, op_version=opv)
    n = OnnxSlice(OnnxShape(x, op_version=opv), np.array([0], np.int64),
                  np.array([1], np.int64), op_version=opv)
    shape = OnnxConcat(n, np.array([len(values)], np.int64), axis=0, op_version=opv)
    zeros = OnnxConstantOfShape(shape, value=np.array([0.0], np.float64), op_version=opv)
    ones = OnnxConstantOfShape(OnnxShape(index, op_version=opv),
                               value=np.array([1.0], np.float64), op_version=opv)
    indicator = OnnxScatterElements(zeros, index, ones, axis=1, op_version=opv)
    # one leaf per tree is 1: the product sums the trees' values, as the forest does
    mean = OnnxDiv(OnnxMatMul(indicator, values, op_version=opv),
                   np.array([float(len(trees))]), op_version=opv)
    risk = OnnxSlice(mean, np.array([0], np.int64), np.array([1], np.int64),
                     np.array([1], np.int64), op_version=opv)
    survival = OnnxSlice(mean, np.array([1], np.int64), np.array([values.shape[1]], np.int64),
                         np.array([1], np.int64), op_version=opv)
    return risk, survival


_REGISTERED = False


def register_survival_converter() -> None:
    """Teach skl2onnx the conversion of :class:`SurvivalHead` (once per process)."""
    global _REGISTERED
    if _REGISTERED:
        return
    from skl2onnx import update_registered_converter

    update_registered_converter(SurvivalHead, "MedmlSurvivalHead", _shape, _convert,
                                parser=_parser)
    _REGISTERED = True


def survival_head_copy(model: Any) -> Any:
    """The export copy of a survival pipeline (see :func:`converters.export_copy`) with its
    last step, the scikit-survival estimator, wrapped in :class:`SurvivalHead`."""
    from sklearn.pipeline import Pipeline

    from medml_cli.export.converters import export_copy

    if not isinstance(model, Pipeline):
        return SurvivalHead(model)
    estimator = model.steps[-1][1]
    prefix = export_copy(Pipeline(model.steps[:-1])) if len(model.steps) > 1 else None
    steps = list(prefix.steps) if prefix is not None else []
    return Pipeline([*steps, (model.steps[-1][0], SurvivalHead(estimator))])
