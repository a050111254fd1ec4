"""Finding an OpenGait clone and importing it the way its own ``main.py`` does.

OpenGait is not installable: ``main.py`` lives in ``<root>/opengait/`` and imports the *top-level*
names ``modeling``, ``data``, ``evaluation`` and ``utils`` from that folder, with the clone's root
as working directory (``./configs/default.yaml``, ``./datasets/...`` and ``output/`` are relative).
Importing ``opengait.modeling`` instead would create a second, different ``BaseModel`` class, so
everything here uses the top-level names.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace

__all__ = ["OPENGAIT_TOP_LEVEL", "activate", "import_opengait", "opengait_package_dir", "resolve_root"]

#: the top-level package names OpenGait's code imports itself by
OPENGAIT_TOP_LEVEL = ("modeling", "data", "evaluation", "utils")


def resolve_root(path: str | os.PathLike[str]) -> Path:
    """Absolute path of an OpenGait clone; raises when ``path/opengait/main.py`` is missing."""
    root = Path(path).expanduser().resolve()
    main = root / "opengait" / "main.py"
    if not main.is_file():
        raise FileNotFoundError(
            f"{root} is not an OpenGait clone: {main} does not exist "
            "(pass the folder that holds opengait/main.py, configs/ and datasets/)"
        )
    return root


def opengait_package_dir(root: str | os.PathLike[str]) -> Path:
    """``<root>/opengait``, the folder ``main.py`` and the top-level OpenGait packages live in."""
    return resolve_root(root) / "opengait"


def activate(root: str | os.PathLike[str]) -> Path:
    """Put ``<root>/opengait`` first on ``sys.path`` (once) and return it.

    Raises when another OpenGait's ``modeling`` is already imported in this process: two clones
    in one interpreter would register the plugin on the wrong one.
    """
    package_dir = opengait_package_dir(root)
    loaded = sys.modules.get("modeling.models")
    if loaded is not None and not _inside(Path(loaded.__file__ or ""), package_dir):
        raise RuntimeError(
            f"an OpenGait from {Path(loaded.__file__ or '?').parents[2]} is already imported in this "
            f"process; cannot switch to {package_dir.parent}"
        )
    entry = str(package_dir)
    if entry in sys.path:
        sys.path.remove(entry)
    sys.path.insert(0, entry)
    return package_dir


def import_opengait() -> SimpleNamespace:
    """Import OpenGait's registries (``modeling.models``, ``data.transform``, ``evaluation.evaluator``).

    ``modeling.models`` imports every model file of the clone, so every import-time dependency of
    OpenGait must be installed; a missing one is reported by name.

    Returns:
        namespace with ``models``, ``transform``, ``evaluator`` modules.
    """
    modules: dict[str, ModuleType] = {}
    for key, name in (("models", "modeling.models"), ("transform", "data.transform"),
                      ("evaluator", "evaluation.evaluator")):  # fmt: skip
        try:
            modules[key] = importlib.import_module(name)
        except ModuleNotFoundError as err:
            missing = (err.name or "").split(".")[0]
            if missing in OPENGAIT_TOP_LEVEL:
                raise ImportError(
                    f"cannot import OpenGait's '{name}': put <OpenGait root>/opengait on sys.path first "
                    "(kprpe_gait.opengait.runtime.activate, or run through 'kprpe-gait launch')"
                ) from err
            raise ImportError(
                f"OpenGait needs the package '{missing}' at import time (importing '{name}' imports every "
                f"model file of the clone); install it into this interpreter ({sys.executable})"
            ) from err
    return SimpleNamespace(**modules)


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True
