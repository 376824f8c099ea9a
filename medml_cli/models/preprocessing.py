"""The preprocessing every tabular model starts with, fit inside the training data only."""

from __future__ import annotations

from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from medml_cli.schemas import FeatureSchema


def make_preprocessor(schema: FeatureSchema, *, scale: bool = True) -> ColumnTransformer:
    """Median-impute and scale numeric columns; mode-impute and one-hot categorical ones."""
    numeric_steps: list[tuple[str, object]] = [("impute", SimpleImputer(strategy="median"))]
    if scale:
        numeric_steps.append(("scale", StandardScaler()))
    transformers = []
    numeric = schema.names_of("numeric")
    categorical = schema.names_of("categorical")
    if numeric:
        transformers.append(("numeric", Pipeline(numeric_steps), numeric))
    if categorical:
        transformers.append(
            (
                "categorical",
                Pipeline(
                    [
                        ("impute", SimpleImputer(strategy="most_frequent")),
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


def tabular_pipeline(schema: FeatureSchema, estimator: object, *, scale: bool = True) -> Pipeline:
    """A pipeline of the schema's preprocessor followed by ``estimator``."""
    return Pipeline([("preprocess", make_preprocessor(schema, scale=scale)), ("model", estimator)])
