import math

import pytest
import torch
import torch.nn.functional as F

from kprpe_gait.train import CrossEntropyLoss, TripletLoss


def test_triplet_loss_matches_a_hand_computed_batch():
    # 1-D embeddings 0, 1 (id 0) and 1.5, 5 (id 1); non-zero triples: (a=1, p=0, n=2) -> 0.7,
    # (a=2, p=3, n=0) -> 2.2, (a=2, p=3, n=1) -> 3.2; average of the non-zero terms
    emb = torch.tensor([0.0, 1.0, 1.5, 5.0]).view(4, 1, 1)
    loss, info = TripletLoss(0.2)(emb, torch.tensor([0, 0, 1, 1]))
    assert loss.item() == pytest.approx(6.1 / 3, rel=1e-5)
    assert info["triplet/nonzero"] == 3
    second = torch.cat([emb, torch.tensor([0.0, 1.0, 3.0, 5.0]).view(4, 1, 1)], dim=2)  # a part with one 0.2 term
    loss2, _ = TripletLoss(0.2)(second, torch.tensor([0, 0, 1, 1]))
    assert loss2.item() == pytest.approx((6.1 / 3 + 0.2) / 2, rel=1e-5)


def test_triplet_loss_is_zero_for_separated_clusters():
    emb = torch.tensor([0.0, 0.1, 10.0, 10.1]).view(4, 1, 1).repeat(1, 3, 2)
    loss, info = TripletLoss(0.2)(emb, torch.tensor([3, 3, 7, 7]))
    assert loss.item() == 0.0 and info["triplet/nonzero"] == 0


def test_cross_entropy_matches_a_hand_computed_value():
    logits = torch.tensor([[0.5, -0.5]]).view(1, 2, 1)  # cosine logits, scale 16 -> 8, -8
    loss, info = CrossEntropyLoss(16, 0.1)(logits, torch.tensor([0]))
    # smoothed target (0.95, 0.05): 0.95 * softplus(-16) + 0.05 * (16 + softplus(-16))
    assert loss.item() == pytest.approx(math.log1p(math.exp(-16)) + 0.8, rel=1e-6)
    assert info["softmax/accuracy"] == 1.0


def test_loss_errors():
    with pytest.raises(ValueError, match=r"\(n, c, p\)"):
        TripletLoss()(torch.zeros(4, 3), torch.zeros(4))
    with pytest.raises(ValueError, match="labels must be"):
        CrossEntropyLoss()(torch.zeros(4, 3, 2), torch.zeros(5, dtype=torch.long))
    with pytest.raises(ValueError, match="class indices"):
        CrossEntropyLoss()(torch.zeros(2, 3, 2), torch.tensor([0, 3]))


def test_losses_match_opengait(opengait_module):
    triplet = opengait_module("modeling.losses.triplet")
    ce = opengait_module("modeling.losses.ce")
    torch.manual_seed(0)
    emb, logits = torch.randn(12, 8, 5), torch.randn(12, 6, 5)
    labels = torch.arange(6).repeat_interleave(2)  # P = 6 ids x K = 2, OpenGait's balanced batches
    theirs = triplet.TripletLoss(margin=0.2)
    t_loss, _ = triplet.TripletLoss.forward.__wrapped__(theirs, embeddings=emb, labels=labels)  # skip the DDP gather
    ours, _ = TripletLoss(0.2)(emb, labels)
    assert ours.item() == pytest.approx(t_loss.mean().item(), rel=1e-5)
    c_loss, _ = ce.CrossEntropyLoss(scale=16, label_smooth=True, eps=0.1)(F.normalize(logits, dim=1), labels)
    ours, _ = CrossEntropyLoss(16, 0.1)(F.normalize(logits, dim=1), labels)
    assert ours.item() == pytest.approx(c_loss.item(), rel=1e-6)
