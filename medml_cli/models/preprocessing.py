"""The preprocessing every tabular model starts with, fit inside the training data only."""

from __future__ import annotations

from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from medml_cli.schemas import FeatureSchema


def make_preprocessor(schema: FeatureSchema, *, scale: bool = True) -> ColumnTransformer:
    """Median-impute and scale numeric columns; mode-impute and one-hot categorical ones.

    ``schema.missing``: ``indicator`` adds a 0/1 column for each feature that had missing
    values in the training rows (scikit-learn's ``SimpleImputer(add_indicator=True)``, so a
    numeric feature's indicator is scaled with it and a categorical one is one-hot encoded
    with it: the pipeline a scikit-learn user writes, with the same results); ``native``
    imputes nothing (numeric gaps stay NaN for a model that handles them, a missing category
    becomes its own one-hot column)."""
    numeric = schema.names_of("numeric")
    categorical = schema.names_of("categorical")
    if schema.missing == "native":
        return _native_preprocessor(numeric, categorical, scale)
    # features complete in training get no indicator; a gap first seen at scoring is imputed
    # like any other instead of refusing the row (SimpleImputer's own indicator does both)
    indicate = schema.missing == "indicator"
    numeric_steps: list[tuple[str, object]] = [
        ("impute", SimpleImputer(strategy="median", add_indicator=indicate))]
    if scale:
        numeric_steps.append(("scale", StandardScaler()))
    transformers: list[tuple[str, object, list[str]]] = []
    if numeric:
        transformers.append(("numeric", Pipeline(numeric_steps), numeric))
    if categorical:
        transformers.append(
            (
                "categorical",
                Pipeline(
                    [
                        ("impute", SimpleImputer(strategy="most_frequent",
                                                 add_indicator=indicate)),
                        ("onehot", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
                    ]
                ),
                categorical,
            )
        )
    # keep_empty_features: a column missing in every training row stays (imputed), so the
    # fitted pipeline keeps the feature layout the schema promises.
    for _, pipe, _ in transformers:
        pipe.steps[0][1].set_params(keep_empty_features=True)
    return ColumnTransformer(transformers, remainder="drop", verbose_feature_names_out=False)


def _native_preprocessor(numeric: list[str], categorical: list[str],
                         scale: bool) -> ColumnTransformer:
    transformers: list[tuple[str, object, list[str]]] = []
    if numeric:
        transformers.append(("numeric", StandardScaler() if scale else "passthrough", numeric))
    if categorical:
        transformers.append(("categorical", OneHotEncoder(handle_unknown="ignore",
                                                          sparse_output=False), categorical))
    return ColumnTransformer(transformers, remainder="drop", verbose_feature_names_out=False)


def tabular_pipeline(schema: FeatureSchema, estimator: object, *, scale: bool = True) -> Pipeline:
    """A pipeline of the schema's preprocessor followed by ``estimator``."""
    return Pipeline([("preprocess", make_preprocessor(schema, scale=scale)), ("model", estimator)])
