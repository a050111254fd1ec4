"""``load_pretrained("owner/name")`` through huggingface_hub's cache, with the network blocked: a model
saved into a cache laid out as huggingface_hub lays it out loads; one that is not there fails naming the id
and the cache."""

import socket
from pathlib import Path

import pytest
import torch

from face.models import build_model
from face.models.hub import is_hub_id
from face.models.pretrained import load_pretrained, save_pretrained

pytest.importorskip("huggingface_hub", reason='pip install "kprpe[hub]"')

REVISION = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def offline_cache(tmp_path, monkeypatch):
    """An HF hub cache holding ``owner/name`` (snapshots/<rev> + refs/main), no network at all."""

    def no_network(*args, **kwargs):
        raise OSError("network blocked by the test")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    cache = tmp_path / "hub"
    repo = cache / "models--owner--name"
    model = build_model({"preset": "vit_tiny", "depth": 1, "rpe": "kprpe"}).eval()
    torch.nn.init.normal_(model.kprpe.proj.weight)
    save_pretrained(model, repo / "snapshots" / REVISION)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(REVISION)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.chdir(tmp_path)  # no local folder named owner/name
    return cache, model


def _same_model(loaded, model):
    images, landmarks = torch.rand(2, 3, 112, 112) * 2 - 1, torch.rand(2, 5, 2)
    with torch.no_grad():
        torch.testing.assert_close(loaded(images, landmarks), model(images, landmarks))


@pytest.mark.parametrize("offline", [True, False])
def test_hub_id_loads_from_the_cache_without_network(offline_cache, monkeypatch, offline):
    cache, model = offline_cache
    if offline:
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    else:  # a download is tried, fails on the blocked network, and the cache answers
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    _same_model(load_pretrained("owner/name"), model)


def test_hub_id_through_the_eval_command_loader(offline_cache, monkeypatch):
    from face.commands import eval as eval_command

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cache, model = offline_cache
    _same_model(eval_command._load_model(Path("owner/name")), model)


def test_missing_hub_model_names_the_id_and_the_cache(offline_cache, monkeypatch):
    cache, _ = offline_cache
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(FileNotFoundError, match=r"'owner/other' is not in the cache") as info:
        load_pretrained("owner/other")
    assert str(cache / "models--owner--other") in str(info.value)


def test_local_paths_are_not_hub_ids(tmp_path):
    assert is_hub_id("minchul/cvlface_arcface_ir101_webface4m")
    assert not is_hub_id("a/b/c") and not is_hub_id("./model") and not is_hub_id("/abs/x") and not is_hub_id("../x")
    assert not is_hub_id("model.safetensors")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_pretrained(tmp_path / "nothing")
