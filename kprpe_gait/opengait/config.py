"""Strict checks of the OpenGait config sections the plugin reads.

OpenGait merges every config into its ``configs/default.yaml`` and then passes constructors only
the keys their signatures name (``utils.get_valid_args``): a misspelt key is silently dropped. The
plugin's model classes check their sections instead. Keys that a section merely inherited from
``default.yaml`` (for example ``momentum`` under an AdamW ``optimizer_cfg``) are not the user's
doing; they are ignored when their value is still the default one.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from kprpe.config import check_keys, constructor_keys, read_yaml_mapping, split_known

__all__ = ["check_keys", "constructor_keys", "load_opengait_defaults", "split_known"]


def load_opengait_defaults(path: str | os.PathLike[str] = "configs/default.yaml") -> dict[str, Any]:
    """OpenGait's ``configs/default.yaml`` (relative to the working directory, OpenGait's root).

    Returns an empty dict when the file is absent (the checks then treat every key as the user's).
    """
    path = Path(path)
    if not path.is_file():
        return {}
    return read_yaml_mapping(path, "OpenGait default config")
