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
  hundreds and flips splits. medml writes them as one ai.onnx.ml 5 ``TreeEnsemble`` with
  float64 thresholds, leaf values and sums. scikit-learn's forests compare
  ``float32(x) <= threshold``, so their input is rounded to float32 (and back) first;
  histogram gradient boosting compares in float64 and gets the input as it is.

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
from medml_cli.runs.onnx_bundle import MISSING_CATEGORY

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


#: ai.onnx.ml 5's tree operator: float64 thresholds and leaf values, float64 sums.
TREE_ENSEMBLE = "TreeEnsemble"


@dataclass
class _Tree:
    """One tree in plain arrays: split feature, float64 threshold, children (-1 at leaves),
    where a missing value goes, and the leaf values (one row per node, one column per
    output: class or target)."""

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
        out.append(_Tree(tree.feature, tree.threshold, tree.children_left,
                         tree.children_right, np.asarray(missing), values))
    return out


def _boosting_trees(model: Any) -> list[list[_Tree]]:
    """Per class, the trees of every iteration (one value column each)."""
    k = int(model.n_trees_per_iteration_)
    out: list[list[_Tree]] = [[] for _ in range(k)]
    for iteration in model._predictors:
        for c, predictor in enumerate(iteration):
            nodes = predictor.nodes
            if np.any(nodes["is_categorical"]):
                raise NotImplementedError("native categorical splits of histogram gradient "
                                          "boosting have no ONNX conversion in medml")
            leaf = nodes["is_leaf"].astype(bool)
            out[c].append(_Tree(
                np.where(leaf, -2, nodes["feature_idx"].astype(np.int64)),
                nodes["num_threshold"].astype(np.float64),
                np.where(leaf, -1, nodes["left"].astype(np.int64)),
                np.where(leaf, -1, nodes["right"].astype(np.int64)),
                nodes["missing_go_to_left"], nodes["value"].astype(np.float64).reshape(-1, 1)))
    return out


def _tree_sums(per_target: list[list[tuple[_Tree, int]]], x: Any, scope: Any,
               container: Any) -> str:
    """One float64 ``TreeEnsemble`` (ai.onnx.ml 5): output t is the sum, over the trees
    listed for target t, of column ``column`` of the leaf each reaches (``x <= threshold``
    goes left, a missing value as the tree sends it). Returns the output's name.

    skl2onnx does not write ai.onnx.ml 5 yet: the node is declared as version 3 here and
    :func:`use_tree_ensemble_opset` raises the model's ai.onnx.ml import to 5 afterwards."""
    from onnx import numpy_helper
    from skl2onnx.algebra.onnx_ops import OnnxIdentity

    x_name = scope.get_unique_variable_name("tree_input")
    OnnxIdentity(x, op_version=container.target_opset, output_names=[x_name]).add_to(
        scope, container)

    nodes: dict[str, list[Any]] = {k: [] for k in (
        "featureids", "splits", "truenodeids", "trueleafs", "falsenodeids", "falseleafs",
        "missing")}
    leaf_targets: list[int] = []
    leaf_weights: list[float] = []
    roots: list[int] = []
    for target, trees in enumerate(per_target):
        for tree, column in trees:
            interior = np.flatnonzero(tree.left >= 0)
            leaves = np.flatnonzero(tree.left < 0)
            node_index = {int(n): len(nodes["featureids"]) + i for i, n in enumerate(interior)}
            leaf_index = {int(n): len(leaf_weights) + i for i, n in enumerate(leaves)}
            leaf_targets += [target] * len(leaves)
            leaf_weights += [float(v) for v in tree.values[leaves, column]]
            if not len(interior):  # a tree that is one leaf: a split that always says so
                roots.append(len(nodes["featureids"]))
                only = leaf_index[int(leaves[0])]
                for key, value in (("featureids", 0), ("splits", np.inf), ("truenodeids", only),
                                   ("trueleafs", 1), ("falsenodeids", only),
                                   ("falseleafs", 1), ("missing", 1)):
                    nodes[key].append(value)
                continue
            roots.append(node_index[0])
            for n in interior:
                left, right = int(tree.left[n]), int(tree.right[n])
                nodes["featureids"].append(int(tree.feature[n]))
                nodes["splits"].append(float(tree.threshold[n]))
                nodes["trueleafs"].append(int(tree.left[left] < 0))
                nodes["truenodeids"].append(leaf_index[left] if tree.left[left] < 0
                                            else node_index[left])
                nodes["falseleafs"].append(int(tree.left[right] < 0))
                nodes["falsenodeids"].append(leaf_index[right] if tree.left[right] < 0
                                             else node_index[right])
                nodes["missing"].append(int(tree.missing_left[n]))
    sums = scope.get_unique_variable_name("tree_sums")
    container.add_node(
        TREE_ENSEMBLE, [x_name], [sums], op_domain="ai.onnx.ml", op_version=3,
        name=scope.get_unique_operator_name(TREE_ENSEMBLE),
        aggregate_function=1, n_targets=len(per_target), post_transform=0,
        tree_roots=roots, nodes_featureids=nodes["featureids"],
        nodes_splits=numpy_helper.from_array(np.asarray(nodes["splits"], np.float64)),
        nodes_modes=numpy_helper.from_array(np.zeros(len(nodes["splits"]), np.uint8)),
        nodes_truenodeids=nodes["truenodeids"], nodes_trueleafs=nodes["trueleafs"],
        nodes_falsenodeids=nodes["falsenodeids"], nodes_falseleafs=nodes["falseleafs"],
        nodes_missing_value_tracks_true=nodes["missing"], leaf_targetids=leaf_targets,
        leaf_weights=numpy_helper.from_array(np.asarray(leaf_weights, np.float64)))
    return sums


def has_tree_ensemble(onx: Any) -> bool:
    """Whether the model holds medml's float64 ``TreeEnsemble`` nodes (ai.onnx.ml 5)."""
    return any(node.op_type == TREE_ENSEMBLE for node in onx.graph.node)


def use_tree_ensemble_opset(onx: Any) -> None:
    """Import ai.onnx.ml 5 in a model holding medml's ``TreeEnsemble`` nodes."""
    if has_tree_ensemble(onx):
        for opset in onx.opset_import:
            if opset.domain == "ai.onnx.ml":
                opset.version = max(opset.version, 5)


def _labels(proba: Any, classes: np.ndarray, opv: int) -> Any:
    from skl2onnx.algebra.onnx_ops import OnnxArgMax, OnnxGather

    return OnnxGather(np.asarray(classes, dtype=np.int64),
                      OnnxArgMax(proba, axis=1, keepdims=0, op_version=opv), axis=0,
                      op_version=opv)


def _convert_forest(scope: Any, operator: Any, container: Any) -> None:
    """Mean of the trees' leaf values in float64, splits taken on ``float32(x)`` as
    scikit-learn's trees take them."""
    from onnx import TensorProto
    from skl2onnx.algebra.onnx_ops import OnnxCast, OnnxConcat, OnnxDiv, OnnxIdentity, OnnxSub

    forest = operator.raw_operator
    opv = container.target_opset
    trees = _forest_trees(forest)
    k = trees[0].values.shape[1]
    x = OnnxCast(OnnxCast(operator.inputs[0], to=TensorProto.FLOAT, op_version=opv),
                 to=TensorProto.DOUBLE, op_version=opv)
    # two classes: a leaf's fractions sum to 1, so P(class 0) = 1 - P(class 1) and one
    # pass over the trees does (half the work of one pass per class)
    columns = [1] if is_classifier(forest) and k == 2 else list(range(k))
    sums = _tree_sums([[(t, c) for t in trees] for c in columns], x, scope, container)
    mean = OnnxDiv(sums, np.array([float(len(trees))]), op_version=opv)
    if columns == [1]:
        mean = OnnxConcat(OnnxSub(np.array([1.0]), mean, op_version=opv), mean, axis=1,
                          op_version=opv)
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
        OnnxSigmoid,
        OnnxSoftmax,
        OnnxSub,
    )

    model = operator.raw_operator
    opv = container.target_opset
    per_class = _boosting_trees(model)
    k = len(per_class)
    sums = _tree_sums([[(t, 0) for t in trees] for trees in per_class],
                      operator.inputs[0], scope, container)
    raw = OnnxAdd(sums, np.asarray(model._baseline_prediction,
                                   dtype=np.float64).reshape(1, k), op_version=opv)
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
