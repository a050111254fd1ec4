"""One layout for both task packages: ``models/`` for backbones, ``commands/`` for sub-commands.

``kprpe_gait.nets`` was renamed ``kprpe_gait.models`` (as ``face.models``) and the sub-commands' argument
parsing moved to ``kprpe_gait.commands`` (as ``face.commands``). The old import paths keep working: the old
package is an alias that warns once, the old command modules re-export ``add_arguments`` / ``run``.
"""

import argparse
import importlib
import subprocess
import sys
import warnings

import pytest

from kprpe_gait import cli

NETS_SUBMODULES = ("build", "deepgaitv2", "modules", "swingait2d")
MESSAGE = "kprpe_gait.nets is now kprpe_gait.models; the old name goes in a future release"

#: the module each sub-command's glue lived in before kprpe_gait.commands, and the name it had there
OLD_HOMES = {
    "demo": ("kprpe_gait.demo", "add_arguments"),
    "synth": ("kprpe_gait.data.synth_cli", "add_arguments"),
    "pretreat-gait3d": ("kprpe_gait.data.pretreat_cli", "add_arguments"),
    "launch": ("kprpe_gait.opengait.launcher", "add_arguments"),
    "register": ("kprpe_gait.opengait.shim", "add_arguments_for"),
    "unregister": ("kprpe_gait.opengait.shim", "add_arguments_for"),
    "submit": ("kprpe_gait.eval.submit", "add_arguments"),
    "convert-deepgaitv2": ("kprpe_gait.models.deepgaitv2", "add_arguments"),
}


def _forget_nets() -> None:
    for name in [m for m in sys.modules if m == "kprpe_gait.nets" or m.startswith("kprpe_gait.nets.")]:
        del sys.modules[name]


def test_new_homes_exist():
    import kprpe_gait.models as models

    assert models.SwinGait2D.__module__ == "kprpe_gait.models.swingait2d"
    for sub in NETS_SUBMODULES:
        importlib.import_module(f"kprpe_gait.models.{sub}")
    assert set(cli.subcommands()) == set(OLD_HOMES)
    for name, module in cli.subcommands().items():
        assert module.__name__ == "kprpe_gait.commands." + name.replace("-", "_")


def test_old_package_is_an_alias_that_warns_once():
    import kprpe_gait.models as models

    _forget_nets()
    with pytest.warns(DeprecationWarning, match="kprpe_gait.nets is now kprpe_gait.models") as caught:
        import kprpe_gait.nets.build  # noqa: F401
        from kprpe_gait.nets.swingait2d import SwinGait2D

        import kprpe_gait.nets as nets
    assert [str(w.message) for w in caught if w.category is DeprecationWarning] == [MESSAGE]
    assert SwinGait2D is models.SwinGait2D  # the same class: isinstance, pickles and patches keep working
    assert set(nets.__all__) == set(models.__all__)
    for name in models.__all__:
        assert getattr(nets, name) is getattr(models, name)
    for sub in NETS_SUBMODULES:
        assert importlib.import_module(f"kprpe_gait.nets.{sub}") is importlib.import_module(f"kprpe_gait.models.{sub}")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        importlib.import_module("kprpe_gait.nets.deepgaitv2")  # already imported: no second warning


def test_old_package_imports_in_a_fresh_interpreter():
    """``from kprpe_gait.nets.build import ...`` as the first import (an OpenGait config's plugin does this)."""
    code = (
        "import warnings; warnings.simplefilter('always')\n"
        "from kprpe_gait.nets.build import build_from_model_cfg, load_weights\n"
        "import kprpe_gait.models.build as b; assert build_from_model_cfg is b.build_from_model_cfg\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stderr.count("DeprecationWarning") == 1 and MESSAGE in done.stderr


@pytest.mark.parametrize("name", sorted(OLD_HOMES))
def test_old_command_modules_reexport_the_glue(name):
    module_name, attr = OLD_HOMES[name]
    old = importlib.import_module(module_name)
    new = cli.subcommands()[name]
    old_parser, new_parser = argparse.ArgumentParser(), argparse.ArgumentParser()
    if attr == "add_arguments_for":
        old.add_arguments_for(name, old_parser)
    else:
        assert old.add_arguments is new.add_arguments and old.run is new.run
        old.add_arguments(old_parser)
    new.add_arguments(new_parser)
    assert sorted(old_parser._option_string_actions) == sorted(new_parser._option_string_actions)


def test_demo_keeps_its_opengait_glue_name():
    import kprpe_gait.commands.demo as new
    import kprpe_gait.demo as old

    assert old._run_opengait is new._run_opengait
