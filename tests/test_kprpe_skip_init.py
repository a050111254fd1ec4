"""kprpe.skip_init: models built without random initialisation load to the same weights, and the switch
never outlives its block."""

import pytest
import torch
from torch import nn

from kprpe.skip_init import no_weight_init


def test_initialisers_draw_nothing_inside_the_block_and_are_restored_after():
    torch.manual_seed(0)
    before = torch.get_rng_state()
    with no_weight_init():
        layer = nn.Sequential(nn.Linear(8, 8), nn.LayerNorm(8), nn.Conv2d(3, 4, 3))
        nn.init.trunc_normal_(layer[0].weight, std=0.02)
    assert torch.equal(torch.get_rng_state(), before)  # no random number was drawn
    nn.Linear(8, 8)
    assert not torch.equal(torch.get_rng_state(), before)  # initialisers work again
    with pytest.raises(RuntimeError, match="inside"):
        with no_weight_init():
            raise RuntimeError("inside")
    ones = nn.init.ones_(torch.zeros(3))
    assert torch.equal(ones, torch.ones(3))  # restored after an exception too


def test_load_pretrained_gives_the_saved_weights_without_drawing_random_numbers(tmp_path):
    from face.models import build_model, load_pretrained, save_pretrained

    torch.manual_seed(0)
    model = build_model({"preset": "vit_tiny", "rpe": "kprpe"})
    with torch.no_grad():
        model.kprpe.proj.weight.normal_()  # not the zero init: the loaded value must come from the file
    save_pretrained(model, tmp_path / "m")
    state = torch.get_rng_state()
    loaded = load_pretrained(tmp_path / "m")
    assert torch.equal(torch.get_rng_state(), state)
    for (name, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), name
    images, landmarks = torch.randn(2, 3, 112, 112), torch.rand(2, 5, 2)
    torch.testing.assert_close(loaded(images, landmarks), model.eval()(images, landmarks))
