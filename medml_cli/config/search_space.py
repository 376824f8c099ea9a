"""The parameter distributions shared by sweep files (``sweep.random.parameters``) and a run's
``tune.parameters``: uniform, log-uniform, int-uniform and choice."""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import Field, model_validator

from medml_cli.schemas import StrictModel


class Uniform(StrictModel):
    """A float drawn uniformly between ``low`` and ``high``."""

    distribution: Literal["uniform"]
    low: float
    high: float

    @model_validator(mode="after")
    def _order(self) -> Uniform:
        if not self.low < self.high:
            raise ValueError(f"low ({self.low}) must be below high ({self.high})")
        return self


class LogUniform(Uniform):
    """A positive float drawn uniformly on the log scale (learning rates, C, alpha)."""

    distribution: Literal["log-uniform"]  # type: ignore[assignment]
    low: float = Field(gt=0)


class IntUniform(StrictModel):
    """An integer drawn uniformly from ``low`` to ``high`` inclusive."""

    distribution: Literal["int-uniform"]
    low: int
    high: int

    @model_validator(mode="after")
    def _order(self) -> IntUniform:
        if self.low > self.high:
            raise ValueError(f"low ({self.low}) must not exceed high ({self.high})")
        return self


class Choice(StrictModel):
    """One of ``values``."""

    distribution: Literal["choice"]
    values: list[Any] = Field(min_length=1)


DISTRIBUTIONS = {"uniform": Uniform, "log-uniform": LogUniform, "int-uniform": IntUniform,
                 "choice": Choice}
Distribution = Annotated[Union[Uniform, LogUniform, IntUniform, Choice],  # noqa: UP007
                         Field(discriminator="distribution")]
