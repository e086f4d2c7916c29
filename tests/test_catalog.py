"""The lazy registries: the catalog is complete and exact, and listing imports no model code."""

import subprocess
import sys

import pytest

from attnlab.catalog import DATAMODULES, MODELS, RUNNERS, TASKS
from attnlab.errors import ConfigError
from attnlab.registry import Lazy, Registry


@pytest.mark.parametrize("registry", [MODELS, DATAMODULES, TASKS, RUNNERS], ids=lambda r: r.kind)
def test_every_catalog_entry_loads_the_class_it_names(registry):
    for entry in registry.entries():
        lazy = registry.index[entry.name]
        assert f"{entry.cls.__module__}:{entry.cls.__qualname__}" == lazy.target
        assert entry.description == lazy.description and entry.description


def test_listing_imports_no_model_torch_or_lightning():
    code = (
        "import sys; from attnlab.cli import main; main(['list']); "
        "bad = [m for m in sys.modules if m in ('torch', 'lightning') or m.startswith('attnlab.models.')"
        " or m.startswith('attnlab.train') or m.startswith('attnlab.data.')]; print('LOADED', bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "LOADED []"


def test_decorator_outside_the_catalog_is_refused():
    registry: Registry[object] = Registry("thing", {"a": Lazy(f"{__name__}:A", "an a")})
    with pytest.raises(ConfigError, match=r"not in attnlab\.catalog"):
        registry.register("b")(type("B", (), {}))
    with pytest.raises(ConfigError, match="catalog says"):
        registry.register("a")(type("Other", (), {}))


def test_missing_extra_names_the_pip_line():
    registry: Registry[object] = Registry("model", {"x": Lazy("attnlab_no_such_mod:X", "x", extra="rl")})
    # the module itself is missing here, standing for a missing third-party package
    with pytest.raises(ConfigError, match=r"needs the 'rl' extra .*pip install 'attnlab\[rl\]'"):
        registry.get("x")


def test_unknown_name_suggests():
    with pytest.raises(ConfigError, match="did you mean 'sfa'"):
        MODELS.get("sfb")


def test_an_unknown_name_that_is_none_is_still_one_line():
    from attnlab.errors import unknown

    assert str(unknown("task", None, ["a", "b"])) == "unknown task 'None'; valid: a, b"
