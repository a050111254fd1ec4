from unittest import mock

import pytest
import torch

from face.models import FaceViT, build_model


@pytest.fixture
def build_uninitialised():
    """``build_model`` without the (slow, seconds per full-size model) random init: for tests of names and shapes."""

    def build(config):
        with (
            mock.patch.object(FaceViT, "reset_parameters", lambda self: None),
            mock.patch.object(torch.nn.Linear, "reset_parameters", lambda self: None),
        ):
            return build_model(config)

    return build
