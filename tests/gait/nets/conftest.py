import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread():
    """Test-sized models gain nothing from intra-op threads, and lose a lot when cores are shared."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
