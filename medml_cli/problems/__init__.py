"""Problem types as plug-ins: one file each, registered in ``PROBLEMS`` on import."""

from medml_cli.problems import binary, multiclass, regression, survival  # noqa: F401
from medml_cli.problems.base import (
    ProblemType,
    dataset_classes,
    get_problem,
    problem_of,
    problem_of_card,
    register_problem,
    resolve_problem,
)

__all__ = ["ProblemType", "dataset_classes", "get_problem", "problem_of", "problem_of_card",
           "register_problem",
           "resolve_problem"]
