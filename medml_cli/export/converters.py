"""What skl2onnx needs to convert a medml pipeline that it cannot convert on its own.

These pieces of medml's pipelines have no (or a too narrow) skl2onnx converter:

* ``SimpleImputer`` on categorical (string) columns with ``np.nan`` as the missing value,
  and ``SimpleImputer(add_indicator=True)`` on any column: skl2onnx converts only string
  missing values for text and ignores the indicator columns. :func:`export_copy` swaps each
  imputer of a *copy* of the pipeline for :class:`ExportImputer` (same fitted numbers), whose
  converter below imputes and appends the 0/1 indicators as the fitted imputer does.
* ``TransformedTargetRegressor`` (the svr's standardised target): converted as the inner
  regressor followed by the target scaler's inverse (``y * scale + mean``).
* medml's own ``RecalibratedClassifier`` / ``RecalibratedRegressor`` (a model updated at a
  new site): the base pipeline, then the two numbers applied as the classes apply them.
* ``SVR``: ONNX Runtime's ``SVMRegressor`` runs in float32 only, too coarse for a 1e-5
  parity on outcomes in the hundreds; :class:`ExportSVR` writes the kernel expansion in
  float64 with standard operators instead.

* Forests and histogram gradient boosting: skl2onnx writes them in float32 (thresholds,
  leaf values and their sums), which misses a 1e-5 parity on regression outcomes in the
  hundreds and flips splits. medml's converter lets one float32 ``TreeEnsembleRegressor``
  do the routing only (each tree's target is the id of the leaf it reaches, exact in
  float32) and looks the leaf values up in float64, summed or averaged in float64.
  scikit-learn's forests compare ``float32(x) <= threshold``: the input is cast to float32
  and each threshold stored as the largest float32 not above it, which admits exactly the
  same values. Histogram gradient boosting compares in float64: its thresholds (midpoints
  between training values) get the same floor, and the parity check confirms the data
  fall on the same side.

In the ONNX graph a missing categorical value is the empty string (ONNX strings have no
NaN); a missing number is NaN. The saved model itself is never modified.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.base import is_classifier
from sklearn.compose import TransformedTargetRegressor
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.svm import SVR

from medml_cli.models.recalibrated import PROB_CLIP, RecalibratedClassifier, RecalibratedRegressor

#: How a missing categorical value is spelled in the ONNX graph's string inputs.
MISSING_CATEGORY = ""
#: How a categorical missing-value indicator is spelled (scikit-learn puts Python booleans
#: into the object array that the one-hot encoder then encodes).
INDICATOR_SPELLING = {False: "False", True: "True"}


class ExportImputer(SimpleImputer):
    """A fitted ``SimpleImputer`` as the ONNX export sees it (never fitted or saved)."""


def _imputer_shape(operator: Any) -> None:
    """Output shape: the input's columns plus one indicator per feature it indicates."""
    imputer = operator.raw_operator
    n_in = operator.inputs[0].get_second_dimension()
    indicator = getattr(imputer, "indicator_", None)
    extra = 0 if indicator is None else len(indicator.features_)
    n_out = None if n_in is None else n_in + extra
    operator.outputs[0].type = operator.inputs[0].type.__class__([None, n_out])


def _convert_imputer(scope: Any, operator: Any, container: Any) -> None:
    """Where the value is missing, the fitted statistic; then the 0/1 indicator columns."""
    from skl2onnx.algebra.onnx_ops import (
        OnnxCast,
        OnnxConcat,
        OnnxEqual,
        OnnxGather,
        OnnxIdentity,
        OnnxIsNaN,
        OnnxWhere,
    )
    from skl2onnx.common.data_types import StringTensorType, guess_numpy_type, guess_proto_type

    imputer = operator.raw_operator
    opv = container.target_opset
    x = operator.inputs[0]
    text = isinstance(x.type, StringTensorType)
    if text:
        missing = OnnxEqual(x, np.array([MISSING_CATEGORY], dtype=object), op_version=opv)
        statistics = np.array([[str(v) for v in imputer.statistics_]], dtype=object)
    else:
        missing = OnnxIsNaN(x, op_version=opv)
        statistics = np.asarray(imputer.statistics_,
                                dtype=guess_numpy_type(x.type)).reshape(1, -1)
    imputed = OnnxWhere(missing, statistics, x, op_version=opv)
    indicator = getattr(imputer, "indicator_", None)
    if indicator is None or len(indicator.features_) == 0:
        result = OnnxIdentity(imputed, op_version=opv, output_names=operator.outputs[:1])
    else:
        flags = OnnxGather(missing, np.asarray(indicator.features_, dtype=np.int64), axis=1,
                           op_version=opv)
        if text:
            flags = OnnxWhere(flags, np.array([INDICATOR_SPELLING[True]], dtype=object),
                              np.array([INDICATOR_SPELLING[False]], dtype=object),
                              op_version=opv)
        else:
            flags = OnnxCast(flags, to=guess_proto_type(x.type), op_version=opv)
        result = OnnxConcat(imputed, flags, axis=1, op_version=opv,
                            output_names=operator.outputs[:1])
    result.add_to(scope, container)


def _convert_target_regressor(scope: Any, operator: Any, container: Any) -> None:
    """The inner regressor's output through the fitted target scaler's inverse."""
    from skl2onnx.algebra.onnx_operator import OnnxSubEstimator
    from skl2onnx.algebra.onnx_ops import OnnxAdd, OnnxMul

    model = operator.raw_operator
    opv = container.target_opset
    scaler = model.transformer_
    raw = OnnxSubEstimator(model.regressor_, operator.inputs[0], op_version=opv)
    scale = np.asarray(scaler.scale_ if scaler.scale_ is not None else [1.0], dtype=np.float64)
    mean = np.asarray(scaler.mean_ if scaler.mean_ is not None else [0.0], dtype=np.float64)
    out = OnnxAdd(OnnxMul(raw, scale, op_version=opv), mean, op_version=opv,
                  output_names=operator.outputs[:1])
    out.add_to(scope, container)


class ExportSVR(SVR):
    """A fitted ``SVR`` as the ONNX export sees it (never fitted or saved)."""


def _regressor_shape(operator: Any) -> None:
    from skl2onnx.common.shape_calculator import calculate_linear_regressor_output_shapes

    calculate_linear_regressor_output_shapes(operator)


def _convert_svr(scope: Any, operator: Any, container: Any) -> None:
    """``kernel(x, support vectors) @ dual_coef + intercept`` in float64."""
    from skl2onnx.algebra.onnx_ops import (
        OnnxAdd,
        OnnxExp,
        OnnxMatMul,
        OnnxMul,
        OnnxPow,
        OnnxReduceSumSquare,
        OnnxSub,
        OnnxTanh,
    )

    svr = operator.raw_operator
    opv = container.target_opset
    x = operator.inputs[0]
    vectors = np.asarray(svr.support_vectors_, dtype=np.float64)
    gamma = np.array([svr._gamma], dtype=np.float64)
    coef0 = np.array([svr.coef0], dtype=np.float64)
    cross = OnnxMatMul(x, vectors.T.copy(), op_version=opv)
    if svr.kernel == "rbf":
        # |x - v|^2 = |x|^2 + |v|^2 - 2 x.v, as libsvm computes it
        x_norm = OnnxReduceSumSquare(x, np.array([1], dtype=np.int64), keepdims=1,
                                     op_version=opv)
        v_norm = (vectors ** 2).sum(axis=1).reshape(1, -1)
        distance = OnnxSub(OnnxAdd(x_norm, v_norm, op_version=opv),
                           OnnxMul(cross, np.array([2.0]), op_version=opv), op_version=opv)
        kernel = OnnxExp(OnnxMul(distance, -gamma, op_version=opv), op_version=opv)
    elif svr.kernel == "linear":
        kernel = cross
    else:
        inner = OnnxAdd(OnnxMul(cross, gamma, op_version=opv), coef0, op_version=opv)
        kernel = (OnnxPow(inner, np.array([float(svr.degree)]), op_version=opv)
                  if svr.kernel == "poly" else OnnxTanh(inner, op_version=opv))
    dual = np.asarray(svr.dual_coef_, dtype=np.float64).T.copy()
    out = OnnxAdd(OnnxMatMul(kernel, dual, op_version=opv),
                  np.asarray(svr.intercept_, dtype=np.float64), op_version=opv,
                  output_names=operator.outputs[:1])
    out.add_to(scope, container)


class ExportRandomForestClassifier(RandomForestClassifier):
    """A fitted forest as the ONNX export sees it (never fitted or saved)."""


class ExportRandomForestRegressor(RandomForestRegressor):
    """A fitted forest as the ONNX export sees it (never fitted or saved)."""


class ExportHistGradientBoostingClassifier(HistGradientBoostingClassifier):
    """A fitted boosting classifier as the ONNX export sees it (never fitted or saved)."""


class ExportHistGradientBoostingRegressor(HistGradientBoostingRegressor):
    """A fitted boosting regressor as the ONNX export sees it (never fitted or saved)."""


@dataclass
class _Tree:
    """One tree in plain arrays: split feature, threshold, children (-1 at leaves), where
    a missing value goes, and the leaf values (one row per node)."""

    feature: np.ndarray
    threshold: np.ndarray
    left: np.ndarray
    right: np.ndarray
    missing_left: np.ndarray
    values: np.ndarray


def _forest_trees(forest: Any) -> list[_Tree]:
    out = []
    for estimator in forest.estimators_:
        tree = estimator.tree_
        values = tree.value[:, 0, :].astype(np.float64)
        if is_classifier(forest):  # leaf class fractions, as predict_proba averages them
            values = values / values.sum(axis=1, keepdims=True)
        missing = getattr(tree, "missing_go_to_left", np.zeros(tree.node_count, np.uint8))
        out.append(_Tree(tree.feature, _float32_floor(tree.threshold), tree.children_left,
                         tree.children_right, np.asarray(missing), values))
    return out


def _boosting_trees(model: Any) -> list[_Tree]:
    """Trees in (iteration, class) order, so their sums reshape to (iterations, classes)."""
    out = []
    for iteration in model._predictors:
        for predictor in iteration:
            nodes = predictor.nodes
            if np.any(nodes["is_categorical"]):
                raise NotImplementedError("native categorical splits of histogram gradient "
                                          "boosting have no ONNX conversion in medml")
            leaf = nodes["is_leaf"].astype(bool)
            out.append(_Tree(
                np.where(leaf, -2, nodes["feature_idx"].astype(np.int64)),
                _float32_floor(nodes["num_threshold"]),
                np.where(leaf, -1, nodes["left"].astype(np.int64)),
                np.where(leaf, -1, nodes["right"].astype(np.int64)),
                nodes["missing_go_to_left"], nodes["value"].astype(np.float64).reshape(-1, 1)))
    return out


def _leaf_index_node(trees: list[_Tree], x: Any, opv: int) -> Any:
    """One ``TreeEnsembleRegressor`` whose target t is the leaf (node id) tree t reaches.

    Node ids are small integers, exact in float32, so the float32 operator only routes;
    every leaf value is then looked up in float64 (:func:`_leaf_values`)."""
    from skl2onnx.algebra.onnx_ops import OnnxTreeEnsembleRegressor_1

    attrs: dict[str, list[Any]] = {k: [] for k in (
        "nodes_treeids", "nodes_nodeids", "nodes_featureids", "nodes_values", "nodes_modes",
        "nodes_truenodeids", "nodes_falsenodeids", "nodes_missing_value_tracks_true",
        "target_treeids", "target_nodeids", "target_ids", "target_weights")}
    for t, tree in enumerate(trees):
        for node in range(len(tree.left)):
            leaf = tree.left[node] < 0
            attrs["nodes_treeids"].append(t)
            attrs["nodes_nodeids"].append(node)
            attrs["nodes_featureids"].append(0 if leaf else int(tree.feature[node]))
            attrs["nodes_values"].append(0.0 if leaf else float(tree.threshold[node]))
            attrs["nodes_modes"].append("LEAF" if leaf else "BRANCH_LEQ")
            attrs["nodes_truenodeids"].append(0 if leaf else int(tree.left[node]))
            attrs["nodes_falsenodeids"].append(0 if leaf else int(tree.right[node]))
            attrs["nodes_missing_value_tracks_true"].append(
                0 if leaf else int(tree.missing_left[node]))
            if leaf:
                attrs["target_treeids"].append(t)
                attrs["target_nodeids"].append(node)
                attrs["target_ids"].append(t)
                attrs["target_weights"].append(float(node))
    return OnnxTreeEnsembleRegressor_1(x, n_targets=len(trees), aggregate_function="SUM",
                                       post_transform="NONE", op_version=1, **attrs)


def _leaf_values(trees: list[_Tree], leaves: Any, opv: int) -> Any:
    """(n, trees, k) float64 leaf values: the leaf ids offset per tree into one table."""
    from onnx import TensorProto
    from skl2onnx.algebra.onnx_ops import OnnxAdd, OnnxCast, OnnxGather

    width = max(len(t.left) for t in trees)
    k = trees[0].values.shape[1]
    table = np.zeros((len(trees) * width, k), dtype=np.float64)
    for t, tree in enumerate(trees):
        table[t * width: t * width + len(tree.left)] = tree.values
    offsets = (np.arange(len(trees), dtype=np.int64) * width).reshape(1, -1)
    index = OnnxAdd(OnnxCast(leaves, to=TensorProto.INT64, op_version=opv), offsets,
                    op_version=opv)
    return OnnxGather(table, index, axis=0, op_version=opv)


def _labels(proba: Any, classes: np.ndarray, opv: int) -> Any:
    from skl2onnx.algebra.onnx_ops import OnnxArgMax, OnnxGather

    return OnnxGather(np.asarray(classes, dtype=np.int64),
                      OnnxArgMax(proba, axis=1, keepdims=0, op_version=opv), axis=0,
                      op_version=opv)


def _convert_forest(scope: Any, operator: Any, container: Any) -> None:
    """Mean of the trees' float64 leaf values; float32 routing as scikit-learn's trees."""
    from onnx import TensorProto
    from skl2onnx.algebra.onnx_ops import OnnxCast, OnnxIdentity, OnnxReduceMean

    forest = operator.raw_operator
    opv = container.target_opset
    trees = _forest_trees(forest)
    x32 = OnnxCast(operator.inputs[0], to=TensorProto.FLOAT, op_version=opv)
    values = _leaf_values(trees, _leaf_index_node(trees, x32, opv), opv)
    mean = OnnxReduceMean(values, np.array([1], dtype=np.int64), keepdims=0, op_version=opv)
    if is_classifier(forest):
        OnnxIdentity(mean, op_version=opv, output_names=operator.outputs[1:2]).add_to(
            scope, container)
        OnnxIdentity(_labels(mean, forest.classes_, opv), op_version=opv,
                     output_names=operator.outputs[:1]).add_to(scope, container)
    else:
        OnnxIdentity(mean, op_version=opv, output_names=operator.outputs[:1]).add_to(
            scope, container)


def _convert_boosting(scope: Any, operator: Any, container: Any) -> None:
    """Baseline plus the sum of the trees' float64 leaf values, through the loss's link."""
    from skl2onnx.algebra.onnx_ops import (
        OnnxAdd,
        OnnxConcat,
        OnnxIdentity,
        OnnxReduceSum,
        OnnxReshape,
        OnnxSigmoid,
        OnnxSoftmax,
        OnnxSub,
    )

    model = operator.raw_operator
    opv = container.target_opset
    trees = _boosting_trees(model)
    k = int(model.n_trees_per_iteration_)
    values = _leaf_values(trees, _leaf_index_node(trees, operator.inputs[0], opv), opv)
    per_iteration = OnnxReshape(values, np.array([0, -1, k], dtype=np.int64), op_version=opv)
    raw = OnnxAdd(OnnxReduceSum(per_iteration, np.array([1], dtype=np.int64), keepdims=0,
                                op_version=opv),
                  np.asarray(model._baseline_prediction, dtype=np.float64).reshape(1, k),
                  op_version=opv)
    if not is_classifier(model):
        OnnxIdentity(raw, op_version=opv, output_names=operator.outputs[:1]).add_to(
            scope, container)
        return
    if k == 1:
        positive = OnnxSigmoid(raw, op_version=opv)
        proba = OnnxConcat(OnnxSub(np.array([1.0]), positive, op_version=opv), positive,
                           axis=1, op_version=opv)
    else:
        proba = OnnxSoftmax(raw, axis=1, op_version=opv)
    OnnxIdentity(proba, op_version=opv, output_names=operator.outputs[1:2]).add_to(
        scope, container)
    OnnxIdentity(_labels(proba, model.classes_, opv), op_version=opv,
                 output_names=operator.outputs[:1]).add_to(scope, container)


def _classifier_shape(operator: Any) -> None:
    from skl2onnx.common.shape_calculator import calculate_linear_classifier_output_shapes

    calculate_linear_classifier_output_shapes(operator)


def _convert_recalibrated_classifier(scope: Any, operator: Any, container: Any) -> None:
    """``expit(intercept + slope * logit(clip(base P(class 1))))``, as the class applies it."""
    from skl2onnx.algebra.onnx_operator import OnnxSubEstimator
    from skl2onnx.algebra.onnx_ops import (
        OnnxAdd,
        OnnxClip,
        OnnxConcat,
        OnnxGather,
        OnnxIdentity,
        OnnxLog,
        OnnxMul,
        OnnxSigmoid,
        OnnxSub,
    )

    model = operator.raw_operator
    opv = container.target_opset
    base = OnnxSubEstimator(model.base, operator.inputs[0], op_version=opv,
                            options={"zipmap": False})
    positive = OnnxGather(base[1], np.array([1], dtype=np.int64), axis=1, op_version=opv)
    p = OnnxClip(positive, np.array(PROB_CLIP), np.array(1 - PROB_CLIP), op_version=opv)
    logit = OnnxSub(OnnxLog(p, op_version=opv),
                    OnnxLog(OnnxSub(np.array([1.0]), p, op_version=opv), op_version=opv),
                    op_version=opv)
    eta = OnnxAdd(np.array([float(model.intercept)]),
                  OnnxMul(np.array([float(model.slope)]), logit, op_version=opv),
                  op_version=opv)
    updated = OnnxSigmoid(eta, op_version=opv)
    proba = OnnxConcat(OnnxSub(np.array([1.0]), updated, op_version=opv), updated, axis=1,
                       op_version=opv, output_names=operator.outputs[1:2])
    proba.add_to(scope, container)
    OnnxIdentity(_labels(proba, model.classes_, opv), op_version=opv,
                 output_names=operator.outputs[:1]).add_to(scope, container)


def _convert_recalibrated_regressor(scope: Any, operator: Any, container: Any) -> None:
    """``intercept + slope * base prediction``."""
    from skl2onnx.algebra.onnx_operator import OnnxSubEstimator
    from skl2onnx.algebra.onnx_ops import OnnxAdd, OnnxMul

    model = operator.raw_operator
    opv = container.target_opset
    base = OnnxSubEstimator(model.base, operator.inputs[0], op_version=opv)
    OnnxAdd(np.array([float(model.intercept)]),
            OnnxMul(np.array([float(model.slope)]), base, op_version=opv), op_version=opv,
            output_names=operator.outputs[:1]).add_to(scope, container)


_REGISTERED = False


def register_converters() -> None:
    """Teach skl2onnx the two conversions above (once per process)."""
    global _REGISTERED
    if _REGISTERED:
        return
    from skl2onnx import update_registered_converter

    update_registered_converter(ExportImputer, "MedmlExportImputer", _imputer_shape,
                                _convert_imputer)
    for classifier, converter in ((ExportRandomForestClassifier, _convert_forest),
                                  (ExportHistGradientBoostingClassifier, _convert_boosting)):
        update_registered_converter(classifier, f"Medml{classifier.__name__}",
                                    _classifier_shape, converter,
                                    options={"zipmap": [True, False, "columns"],
                                             "nocl": [True, False]})
    for regressor, converter in ((ExportRandomForestRegressor, _convert_forest),
                                 (ExportHistGradientBoostingRegressor, _convert_boosting)):
        update_registered_converter(regressor, f"Medml{regressor.__name__}",
                                    _regressor_shape, converter)
    update_registered_converter(RecalibratedClassifier, "MedmlRecalibratedClassifier",
                                _classifier_shape, _convert_recalibrated_classifier,
                                options={"zipmap": [True, False, "columns"],
                                         "nocl": [True, False]})
    update_registered_converter(RecalibratedRegressor, "MedmlRecalibratedRegressor",
                                _regressor_shape, _convert_recalibrated_regressor)
    update_registered_converter(ExportSVR, "MedmlExportSVR", _regressor_shape, _convert_svr)
    update_registered_converter(TransformedTargetRegressor, "MedmlTransformedTargetRegressor",
                                _regressor_shape, _convert_target_regressor)
    _REGISTERED = True


def unsupported_target_transformers(model: Any) -> list[str]:
    """TransformedTargetRegressor transformers other than a fitted StandardScaler (whose
    inverse is the only one the converter writes)."""
    return [type(m.transformer_).__name__ for m in walk_estimators(model)
            if isinstance(m, TransformedTargetRegressor)
            and (m.func is not None or not isinstance(m.transformer_, StandardScaler))]


def walk_estimators(obj: Any, seen: set[int] | None = None) -> list[Any]:
    """Every estimator inside ``obj`` (pipelines, column transformers, wrappers)."""
    from sklearn.base import BaseEstimator

    seen = set() if seen is None else seen
    if id(obj) in seen:
        return []
    seen.add(id(obj))
    found = [obj] if isinstance(obj, BaseEstimator) else []
    children: list[Any] = []
    if isinstance(obj, BaseEstimator):
        children += list(vars(obj).values())
    elif isinstance(obj, list | tuple):
        children += list(obj)
    for child in children:
        if isinstance(child, BaseEstimator | list | tuple):
            found += walk_estimators(child, seen)
    return found


def _string_categories(categories: np.ndarray) -> np.ndarray:
    """One-hot categories as the string inputs spell them (NaN and booleans included)."""
    out = []
    for value in categories:
        if isinstance(value, bool | np.bool_):
            out.append(INDICATOR_SPELLING[bool(value)])
        elif value is None or (isinstance(value, float) and np.isnan(value)):
            out.append(MISSING_CATEGORY)
        else:
            out.append(str(value))
    return np.asarray(out, dtype=object)


#: Fitted classes whose export copy converts through a medml converter.
_EXPORT_CLASSES: dict[type, type] = {
    SVR: ExportSVR,
    RandomForestClassifier: ExportRandomForestClassifier,
    RandomForestRegressor: ExportRandomForestRegressor,
    HistGradientBoostingClassifier: ExportHistGradientBoostingClassifier,
    HistGradientBoostingRegressor: ExportHistGradientBoostingRegressor,
}


def export_copy(model: Any) -> Any:
    """A deep copy of a fitted pipeline that skl2onnx converts with medml's converters:
    imputers become :class:`ExportImputer`, forests, boosting and SVR their export classes;
    one-hot categories of string columns are spelled as the ONNX string inputs carry them; a
    site update of a pipeline becomes the pipeline's preprocessing followed by the update of
    its final estimator. The fitted numbers are unchanged."""
    clone = copy.deepcopy(model)
    if isinstance(clone, RecalibratedClassifier | RecalibratedRegressor) \
            and isinstance(clone.base, Pipeline) and len(clone.base.steps) > 1:
        # update(pipeline(x)) = pipeline's preprocessing, then update(final estimator): the
        # graph's column inputs then feed the preprocessing, as for any pipeline
        inner = copy.copy(clone)
        inner.base = clone.base.steps[-1][1]
        clone = Pipeline([*clone.base.steps[:-1], ("model", inner)])
    for estimator in walk_estimators(clone):
        if type(estimator) is SimpleImputer:
            estimator.__class__ = ExportImputer
        elif isinstance(estimator, OneHotEncoder) and hasattr(estimator, "categories_") and any(
                c.dtype == object for c in estimator.categories_):
            estimator.categories_ = [_string_categories(c) if c.dtype == object else c
                                     for c in estimator.categories_]
        elif type(estimator) in _EXPORT_CLASSES:
            estimator.__class__ = _EXPORT_CLASSES[type(estimator)]
    return clone


def _float32_floor(thresholds: np.ndarray) -> np.ndarray:
    """Each threshold as the largest float32 not above it (admits the same float32 values)."""
    as32 = np.asarray(thresholds, dtype=np.float64).astype(np.float32)
    above = as32.astype(np.float64) > thresholds
    as32[above] = np.nextafter(as32[above], np.float32(-np.inf))
    return as32
