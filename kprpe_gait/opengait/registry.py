"""Registering the plugin on OpenGait's name registries.

OpenGait looks classes and functions up by the names in a config, at call time:
``model_cfg.model`` in ``modeling.models``, ``transform[].type`` in ``data.transform`` and
``evaluator_cfg.eval_func`` in ``evaluation.evaluator``. :func:`register` sets our names there:

* models ``SwinGait2D`` and ``SwinGait2DKPRPE``, the config names of ``OpenGaitSwinGait2D`` and
  ``OpenGaitSwinGait2DKPRPE`` (:mod:`kprpe_gait.opengait.models`);
* the transform ``SilJointTransform`` (:mod:`kprpe_gait.opengait.transforms`), silhouettes and
  joints augmented together;
* the evaluator ``evaluate_Gait3D_KPRPE`` (:func:`kprpe_gait.eval.evaluate_gait3d`): OpenGait's
  ``evaluate_Gait3D`` protocol with the partition file as a config key (``evaluator_cfg.partition``),
  no CUDA, and ``evaluator_cfg.results_file`` to keep the metrics as JSON.

OpenGait must be importable (see :func:`kprpe_gait.opengait.runtime.activate`).
"""

from __future__ import annotations

import inspect
import json
import logging
import math
import os
from typing import Any

from kprpe.io import atomic_open
from kprpe_gait.eval import evaluate_gait3d

from .runtime import import_opengait

__all__ = [
    "EVALUATOR_NAME",
    "MODEL_CLASSES",
    "MODEL_NAMES",
    "TRANSFORM_NAMES",
    "evaluate_Gait3D_KPRPE",
    "register",
    "write_json_atomic",
]

#: ``model_cfg.model`` name -> the OpenGait model class in :mod:`kprpe_gait.opengait.models`
MODEL_CLASSES = {"SwinGait2D": "OpenGaitSwinGait2D", "SwinGait2DKPRPE": "OpenGaitSwinGait2DKPRPE"}
MODEL_NAMES = tuple(MODEL_CLASSES)
TRANSFORM_NAMES = ("SilJointTransform",)
EVALUATOR_NAME = "evaluate_Gait3D_KPRPE"


def register() -> dict[str, list[str]]:
    """Set the plugin's models, transforms and evaluator on OpenGait's registries (idempotent).

    Returns:
        ``{"models": [...], "transforms": [...], "evaluators": [...]}``, the names registered.
    """
    from . import models, transforms  # imports OpenGait's BaseModel: only after activate()

    registries = import_opengait()
    for name, cls in MODEL_CLASSES.items():
        setattr(registries.models, name, getattr(models, cls))
    for name in TRANSFORM_NAMES:
        setattr(registries.transform, name, getattr(transforms, name))
    setattr(registries.evaluator, EVALUATOR_NAME, evaluate_Gait3D_KPRPE)
    return {"models": list(MODEL_NAMES), "transforms": list(TRANSFORM_NAMES), "evaluators": [EVALUATOR_NAME]}


def evaluate_Gait3D_KPRPE(*args: Any, results_file: str | None = None, **kwargs: Any) -> dict[str, Any]:
    """:func:`kprpe_gait.eval.evaluate_gait3d`, plus ``results_file``: also write the metrics there.

    OpenGait's ``main.py`` discards the metrics a test run computes; with ``evaluator_cfg.results_file``
    (relative paths: to OpenGait's root) they are written as JSON, atomically, for scripts to read.
    OpenGait passes the ``evaluator_cfg`` keys this function's signature names (``metric``,
    ``partition``, ``results_file``).
    """
    results = evaluate_gait3d(*args, **kwargs)
    logging.getLogger("opengait").info(", ".join(f"{k}: {_plain(v)}" for k, v in results.items()))
    if results_file is not None:
        write_json_atomic(results_file, {k: _plain(v) for k, v in results.items()})
    return results


def _evaluator_signature() -> inspect.Signature:
    # positional-or-keyword: OpenGait reads getfullargspec(...).args, which omits keyword-only names
    params = list(inspect.signature(evaluate_gait3d).parameters.values())
    cut = sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in params)
    extra = inspect.Parameter("results_file", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None)
    return inspect.Signature([*params[:cut], extra, *params[cut:]])


# OpenGait passes the evaluator_cfg keys this signature names (getfullargspec honours __signature__)
evaluate_Gait3D_KPRPE.__signature__ = _evaluator_signature()  # type: ignore[attr-defined]


def _plain(value: Any) -> Any:
    """A JSON-friendly copy of a metric value (numpy scalars and arrays become floats and lists)."""
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json_atomic(path: str | os.PathLike[str], payload: Any) -> None:
    """Write ``payload`` as JSON to ``path`` through a temporary file in the same folder."""
    with atomic_open(path, "w") as f:
        json.dump(payload, f, indent=2, sort_keys=True)
        f.write("\n")
