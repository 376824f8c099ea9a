import pytest

from medml_cli.errors import UnknownNameError
from medml_cli.models.base import BUILTIN_PROBLEMS
from medml_cli.plugins import load_builtins
from medml_cli.registry import MODELS, PROBLEMS, Registry, suggest


def test_register_create_and_wildcards():
    reg: Registry = Registry("widget", "medml widgets list")

    @reg.register("resnet-18", summary="small", tags={"image"})
    def small(x):
        return ("small", x)

    @reg.register("resnet-101", summary="big")
    def big(x):
        return ("big", x)

    reg.add("forest", object())
    assert reg.create("resnet-18", 3) == ("small", 3)
    assert reg.names("resnet*") == ["resnet-18", "resnet-101"]  # natural sort
    assert reg.names("*", exclude=["resnet*"]) == ["forest"]
    assert "forest" in reg


def test_duplicate_and_bad_names_are_errors():
    reg: Registry = Registry("widget", "x")
    reg.add("a", 1)
    with pytest.raises(ValueError, match="already registered"):
        reg.add("a", 2)
    with pytest.raises(ValueError, match="kebab-case"):
        reg.add("Bad_Name", 3)


def test_unknown_name_suggests_closest():
    load_builtins()
    with pytest.raises(UnknownNameError) as info:
        MODELS.get("random-forrest")
    assert "did you mean 'random-forest'" in str(info.value)
    assert "medml models list" in str(info.value)
    assert suggest("rf", MODELS.names()) == ["random-forest"]


def test_every_model_declares_its_problems():
    load_builtins()
    # any problem medml knows counts: survival-only models (cox, ...) declare neither
    # classification nor regression
    known = {*BUILTIN_PROBLEMS, *PROBLEMS.names()}
    for entry in MODELS.entries():
        assert entry.tags & known, entry.name
        assert entry.config is not None
