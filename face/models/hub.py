"""Hugging Face model ids for :func:`face.models.load_pretrained`: ``"owner/name"`` -> a local folder.

The id is resolved with ``huggingface_hub`` (the optional extra ``hub``: ``pip install "kprpe[hub]"``) into
its cache (``$HF_HUB_CACHE``, by default ``~/.cache/huggingface/hub``: ``models--owner--name/snapshots/<rev>/``,
the revision named by ``refs/main``), downloading it when it is not there. Offline (``HF_HUB_OFFLINE=1``, or
when the download fails) only the cache is used; a model that is not in it is a ``FileNotFoundError`` that
names the id and the cache folder.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

__all__ = ["HUB_INSTALL_HINT", "hub_cache_dir", "is_hub_id", "resolve_hub_id"]

HUB_INSTALL_HINT = 'pip install "kprpe[hub]"  (huggingface_hub)'
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*$")


def is_hub_id(name: str) -> bool:
    """Whether ``name`` reads as a Hugging Face ``owner/name`` id (one slash, no path syntax)."""
    return bool(_HUB_ID.match(name)) and ".." not in name


def hub_cache_dir() -> Path:
    """The cache ``huggingface_hub`` uses now: ``$HF_HUB_CACHE``, else ``$HF_HOME/hub``, else its default."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    from huggingface_hub import constants

    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]) / "hub"
    return Path(constants.HF_HUB_CACHE)


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def resolve_hub_id(repo_id: str, revision: str | None = None) -> Path:
    """The local snapshot folder of the Hugging Face model ``repo_id`` (downloaded unless offline).

    Raises:
        ImportError: ``huggingface_hub`` is not installed (the message says how to install it).
        FileNotFoundError: offline, or the download failed, and the cache does not hold ``repo_id``.
    """
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise ImportError(
            f"loading the Hugging Face model {repo_id!r} needs huggingface_hub: {HUB_INSTALL_HINT}"
        ) from None
    cache = hub_cache_dir()
    failure = "offline (HF_HUB_OFFLINE)"
    if not _offline():
        try:
            return Path(snapshot_download(repo_id, revision=revision, cache_dir=cache))
        except Exception as e:  # no network, no such repo, ...: the cache may still hold it
            failure = f"download failed: {type(e).__name__}: {e}"
    try:
        return Path(snapshot_download(repo_id, revision=revision, cache_dir=cache, local_files_only=True))
    except Exception as e:
        raise FileNotFoundError(
            f"Hugging Face model {repo_id!r} is not in the cache {cache} "
            f"(expected {cache / ('models--' + repo_id.replace('/', '--'))}/snapshots/<revision>, "
            f"named by refs/{revision or 'main'}) and {failure} ({type(e).__name__})"
        ) from None
