"""What skl2onnx needs to convert a medml pipeline that it cannot convert on its own.

Two pieces of medml's pipelines have no (or a too narrow) skl2onnx converter:

* ``SimpleImputer`` on categorical (string) columns with ``np.nan`` as the missing value,
  and ``SimpleImputer(add_indicator=True)`` on any column: skl2onnx converts only string
  missing values for text and ignores the indicator columns. :func:`export_copy` swaps each
  imputer of a *copy* of the pipeline for :class:`ExportImputer` (same fitted numbers), whose
  converter below imputes and appends the 0/1 indicators as the fitted imputer does.
* ``TransformedTargetRegressor`` (the svr's standardised target): converted as the inner
  regressor followed by the target scaler's inverse (``y * scale + mean``).
* ``SVR``: ONNX Runtime's ``SVMRegressor`` runs in float32 only, too coarse for a 1e-5
  parity on outcomes in the hundreds; :class:`ExportSVR` writes the kernel expansion in
  float64 with standard operators instead.

Tree ensembles are converted by skl2onnx in float32. scikit-learn's forests compare
``float32(x) <= threshold`` with a float64 threshold; rounding that threshold to the nearest
float32 can move it above values it did not admit, flipping a split. The export copy stores
each threshold as the largest float32 not above it, which admits exactly the same float32
values, so the ONNX trees take the same branches. (Histogram gradient boosting's node arrays
are also recast to plain integers, which the converter's attributes need.)

In the ONNX graph a missing categorical value is the empty string (ONNX strings have no
NaN); a missing number is NaN. The saved model itself is never modified.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
from sklearn.compose import TransformedTargetRegressor
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.impute import SimpleImputer
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.svm import SVR
from sklearn.tree import BaseDecisionTree

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


class ExportHistGradientBoostingClassifier(HistGradientBoostingClassifier):
    """A fitted classifier as the ONNX export sees it (never fitted or saved)."""


class ExportHistGradientBoostingRegressor(HistGradientBoostingRegressor):
    """A fitted regressor as the ONNX export sees it (never fitted or saved)."""


class _PlainIntAttributes:
    """A converter container whose nodes get integer-list attributes as plain ints: the
    histogram-gradient-boosting converter mixes numpy ints and booleans, which onnx refuses."""

    def __init__(self, container: Any) -> None:
        self._container = container

    def __getattr__(self, name: str) -> Any:
        return getattr(self._container, name)

    def add_node(self, *args: Any, **attrs: Any) -> Any:
        """``container.add_node`` with integer lists made of Python ints."""
        for key, value in attrs.items():
            if isinstance(value, list) and value and all(
                    isinstance(v, bool | int | np.integer | np.bool_) for v in value):
                attrs[key] = [int(v) for v in value]
        return self._container.add_node(*args, **attrs)


def _convert_hist_classifier(scope: Any, operator: Any, container: Any) -> None:
    from skl2onnx.operator_converters.random_forest import (
        convert_sklearn_random_forest_classifier,
    )

    convert_sklearn_random_forest_classifier(scope, operator, _PlainIntAttributes(container))


def _convert_hist_regressor(scope: Any, operator: Any, container: Any) -> None:
    from skl2onnx.operator_converters.random_forest import (
        convert_sklearn_random_forest_regressor_converter,
    )

    convert_sklearn_random_forest_regressor_converter(scope, operator,
                                                      _PlainIntAttributes(container))


def _classifier_shape(operator: Any) -> None:
    from skl2onnx.common.shape_calculator import calculate_linear_classifier_output_shapes

    calculate_linear_classifier_output_shapes(operator)


_REGISTERED = False


def register_converters() -> None:
    """Teach skl2onnx the two conversions above (once per process)."""
    global _REGISTERED
    if _REGISTERED:
        return
    from skl2onnx import update_registered_converter

    update_registered_converter(ExportImputer, "MedmlExportImputer", _imputer_shape,
                                _convert_imputer)
    update_registered_converter(
        ExportHistGradientBoostingClassifier, "MedmlExportHistGradientBoostingClassifier",
        _classifier_shape, _convert_hist_classifier,
        options={"zipmap": [True, False, "columns"], "raw_scores": [True, False],
                 "output_class_labels": [False, True], "nocl": [True, False]})
    update_registered_converter(
        ExportHistGradientBoostingRegressor, "MedmlExportHistGradientBoostingRegressor",
        _regressor_shape, _convert_hist_regressor)
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
    HistGradientBoostingClassifier: ExportHistGradientBoostingClassifier,
    HistGradientBoostingRegressor: ExportHistGradientBoostingRegressor,
}


def export_copy(model: Any) -> Any:
    """A deep copy of a fitted pipeline that skl2onnx converts with medml's converters:
    imputers become :class:`ExportImputer`; one-hot categories of string columns are
    spelled as the ONNX string inputs carry them. The fitted numbers are unchanged."""
    clone = copy.deepcopy(model)
    for estimator in walk_estimators(clone):
        if type(estimator) is SimpleImputer:
            estimator.__class__ = ExportImputer
        elif isinstance(estimator, OneHotEncoder) and hasattr(estimator, "categories_") and any(
                c.dtype == object for c in estimator.categories_):
            estimator.categories_ = [_string_categories(c) if c.dtype == object else c
                                     for c in estimator.categories_]
        elif isinstance(estimator, BaseDecisionTree) and hasattr(estimator, "tree_"):
            _round_thresholds_down(estimator.tree_.threshold)
        elif type(estimator) in _EXPORT_CLASSES:
            if hasattr(estimator, "_predictors"):
                for trees in estimator._predictors:
                    for predictor in trees:
                        predictor.nodes = _plain_int_nodes(predictor.nodes)
                        _round_thresholds_down(predictor.nodes["num_threshold"])
            estimator.__class__ = _EXPORT_CLASSES[type(estimator)]
    return clone


def _round_thresholds_down(thresholds: np.ndarray) -> None:
    """In place: each threshold becomes the largest float32 not above it."""
    as32 = thresholds.astype(np.float32)
    above = as32.astype(np.float64) > thresholds
    as32[above] = np.nextafter(as32[above], np.float32(-np.inf))
    thresholds[:] = as32.astype(np.float64)


def _plain_int_nodes(nodes: np.ndarray) -> np.ndarray:
    """The node records with every unsigned field widened to int64."""
    dtype = [(name, np.int64 if nodes.dtype[name].kind == "u" else nodes.dtype[name])
             for name in nodes.dtype.names]
    return nodes.astype(dtype)
