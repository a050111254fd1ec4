"""Margin heads against hand-computed logits, their straight-through gradient, and PartialFC sampling."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from face.heads import AdaFace, ArcFace, CosFace, build_head, sample_classes

# Two 2-d samples and three class centres at known angles: cos(angle difference) is the cosine.
CENTRE_ANGLES = [0.0, 0.5, 2.0]
SAMPLE_ANGLES = [0.3, 1.9]
NORMS = [10.0, 30.0]
LABELS = [0, 2]


def _setup(head):
    with torch.no_grad():
        head.weight.copy_(torch.tensor([[math.cos(a), math.sin(a)] for a in CENTRE_ANGLES]) * 3.0)
    emb = torch.tensor([[n * math.cos(a), n * math.sin(a)] for a, n in zip(SAMPLE_ANGLES, NORMS)], dtype=torch.float32)
    return emb, torch.tensor(LABELS)


def _expected(target_fn, scale):
    rows = []
    for i, (a, label) in enumerate(zip(SAMPLE_ANGLES, LABELS)):
        row = [math.cos(a - c) for c in CENTRE_ANGLES]
        row[label] = target_fn(abs(a - CENTRE_ANGLES[label]), i)
        rows.append([scale * v for v in row])
    return torch.tensor(rows)


def test_cosface_logits_by_hand():
    head = CosFace(2, 3, scale=64.0, margin=0.4)
    logits, targets, classes = head(*_setup(head))
    assert torch.equal(targets, torch.tensor(LABELS)) and torch.equal(classes, torch.arange(3))
    torch.testing.assert_close(logits, _expected(lambda t, i: math.cos(t) - 0.4, 64.0), rtol=0, atol=1e-4)


def test_arcface_logits_by_hand_and_angle_cap():
    head = ArcFace(2, 3, scale=32.0, margin=0.5)
    logits, _, _ = head(*_setup(head))
    torch.testing.assert_close(logits, _expected(lambda t, i: math.cos(t + 0.5), 32.0), rtol=0, atol=1e-4)
    # theta + m beyond pi is capped: the target logit is -s, not cos(theta + m) > -1
    emb = torch.tensor([[-1.0, 0.05]])
    capped, _, _ = head(emb, torch.tensor([0]))
    assert capped[0, 0].item() == pytest.approx(-32.0, abs=1e-4)


def test_adaface_logits_by_hand_and_running_norm_statistics():
    head = AdaFace(2, 3)  # m 0.4, h 0.333, s 64, t_alpha 0.01
    assert (head.batch_mean.item(), head.batch_std.item()) == (20.0, 100.0)
    emb, labels = _setup(head)
    logits, _, _ = head(emb, labels)
    mean = 0.99 * 20.0 + 0.01 * 20.0  # batch mean of [10, 30] is 20
    std = 0.99 * 100.0 + 0.01 * math.sqrt(200.0)  # unbiased std of [10, 30]
    assert head.batch_mean.item() == pytest.approx(mean, rel=1e-6)
    assert head.batch_std.item() == pytest.approx(std, rel=1e-6)

    def target(theta, i):
        z = max(-1.0, min(1.0, (NORMS[i] - mean) / (std + 1e-3) * 0.333))
        angle = max(1e-3, min(math.pi - 1e-3, theta - 0.4 * z))
        return math.cos(angle) - (0.4 + 0.4 * z)

    torch.testing.assert_close(logits, _expected(target, 64.0), rtol=0, atol=1e-4)
    # eval mode: statistics frozen
    head.eval()
    head(emb, labels)
    assert head.batch_mean.item() == pytest.approx(mean, rel=1e-6)


def test_adaface_quality_sign_low_norm_gets_smaller_additive_margin():
    head = AdaFace(2, 3, t_alpha=1.0)  # statistics = this batch's
    emb, _ = _setup(head)
    z = head.quality(emb.norm(dim=1))
    assert z[0] < 0 < z[1]  # the low-norm (hard) sample is de-emphasised


@pytest.mark.parametrize("name", ["adaface", "arcface", "cosface"])
def test_gradient_is_straight_through_the_margin(name):
    """d logits / d embeddings equals that of the plain scaled cosine (margin constant, under no_grad)."""
    torch.manual_seed(0)
    head = build_head(name, 8, 5)
    emb = torch.randn(4, 8, dtype=torch.float32, requires_grad=True)
    labels = torch.tensor([0, 3, 3, 1])
    upstream = torch.randn(4, 5)
    logits, _, _ = head(emb, labels)
    (logits * upstream).sum().backward()
    got_e, got_w = emb.grad.clone(), head.weight.grad.clone()

    emb.grad, head.weight.grad = None, None
    plain = head.scale * F.linear(F.normalize(emb, dim=1), F.normalize(head.weight, dim=1))
    (plain * upstream).sum().backward()
    torch.testing.assert_close(got_e, emb.grad)
    torch.testing.assert_close(got_w, head.weight.grad)


def test_gradient_matches_finite_differences_of_cross_entropy_with_frozen_margin():
    torch.manual_seed(1)
    head = CosFace(6, 4).double()
    emb = torch.randn(3, 6, dtype=torch.float64, requires_grad=True)
    labels = torch.tensor([1, 2, 0])

    def loss(e):
        logits, targets, _ = head(e, labels)
        return F.cross_entropy(logits, targets)

    assert torch.autograd.gradcheck(loss, (emb,))


def test_sample_classes_invariants():
    torch.manual_seed(0)
    labels = torch.tensor([7, 3, 7, 19, 0])
    classes, targets = sample_classes(labels, 40, 0.25)
    assert classes.numel() == 10 and torch.equal(classes, classes.sort().values)
    assert torch.unique(classes).numel() == 10
    assert torch.equal(classes[targets], labels)  # positives kept, targets index them
    # more positives than the budget: exactly the positives
    classes, targets = sample_classes(torch.arange(8), 40, 0.1)
    assert torch.equal(classes, torch.arange(8)) and torch.equal(targets, torch.arange(8))
    # rate 1: everything, labels unchanged
    classes, targets = sample_classes(labels, 40, 1.0)
    assert torch.equal(classes, torch.arange(40)) and torch.equal(targets, labels)


def test_sampled_head_equals_full_head_on_the_kept_columns_and_only_updates_them():
    torch.manual_seed(0)
    full = CosFace(8, 30)
    partial = CosFace(8, 30, sample_rate=0.3)
    partial.load_state_dict(full.state_dict())
    emb, labels = torch.randn(6, 8), torch.tensor([1, 5, 5, 29, 12, 0])
    all_logits, _, _ = full(emb, labels)
    logits, targets, classes = partial(emb, labels)
    assert logits.shape == (6, 9)
    torch.testing.assert_close(logits, all_logits[:, classes])
    F.cross_entropy(logits, targets).backward()
    untouched = torch.ones(30, dtype=torch.bool)
    untouched[classes] = False
    assert partial.weight.grad[untouched].abs().max() == 0
    assert partial.weight.grad[classes].abs().sum(1).gt(0).all()
    # eval mode never samples
    partial.eval()
    assert partial(emb, labels).logits.shape == (6, 30)


def test_sample_rate_one_is_exact():
    torch.manual_seed(0)
    a, b = AdaFace(8, 10), AdaFace(8, 10, sample_rate=1.0)
    b.load_state_dict(a.state_dict())
    emb, labels = torch.randn(5, 8), torch.tensor([0, 1, 2, 3, 9])
    torch.testing.assert_close(a(emb, labels).logits, b(emb, labels).logits, rtol=0, atol=0)


def test_bad_input_errors():
    head = CosFace(8, 10)
    with pytest.raises(ValueError, match="embeddings must be"):
        head(torch.randn(2, 7), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="labels must be in"):
        head(torch.randn(2, 8), torch.tensor([0, 10]))
    with pytest.raises(ValueError, match="unknown head"):
        build_head("sphereface", 8, 10)
    with pytest.raises(ValueError, match="unknown key 'h'"):
        build_head("cosface", 8, 10, h=0.3)
    with pytest.raises(ValueError, match="sample_rate"):
        CosFace(8, 10, sample_rate=0.0)
