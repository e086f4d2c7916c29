"""The MONet/ViMON losses against hand-computed values and float64 eager loops."""

import math
from dataclasses import dataclass

import pytest
import torch

from attnlab.errors import InputError
from attnlab.objectives.object_centric import (
    gaussian_kl,
    mask_kl,
    mixture_nll,
    monet_losses,
    slot_sigmas,
    vimon_losses,
)

pytestmark = pytest.mark.usefixtures("one_thread")  # small models: threads only add overhead


def gauss(x: float, mean: float, sigma: float) -> float:
    return math.exp(-((x - mean) ** 2) / (2 * sigma**2)) / math.sqrt(2 * math.pi * sigma**2)


def pixel(value: float) -> torch.Tensor:
    return torch.full((1, 1, 1, 1), value, dtype=torch.float64)  # (N=1, C=1, H=1, W=1)


def test_slot_sigmas_background_first():
    assert slot_sigmas(3).tolist() == pytest.approx([0.09, 0.11, 0.11])
    assert slot_sigmas(2, background=0.5, foreground=0.7).tolist() == pytest.approx([0.5, 0.7])


def test_mixture_nll_one_pixel_by_hand():
    target = pixel(0.3)
    means = torch.tensor([0.0, 0.5], dtype=torch.float64).view(1, 2, 1, 1, 1)  # (N, K, C, H, W)
    weights = torch.tensor([0.25, 0.75], dtype=torch.float64).view(1, 2, 1, 1, 1)
    sigmas = torch.tensor([0.09, 0.11], dtype=torch.float64)
    expected = -math.log(0.25 * gauss(0.3, 0.0, 0.09) + 0.75 * gauss(0.3, 0.5, 0.11))
    assert mixture_nll(target, means, weights.log(), sigmas).item() == pytest.approx(expected, rel=1e-12)


def test_mixture_nll_clamps_the_likelihood():
    # 1.0 is 11 sigmas from the only component: the density underflows the 1e-5 floor.
    means = torch.zeros(1, 1, 1, 1, 1, dtype=torch.float64)
    nll = mixture_nll(pixel(1.0), means, torch.zeros_like(means), torch.tensor([0.09], dtype=torch.float64))
    assert nll.item() == pytest.approx(-math.log(1e-5), rel=1e-12)


def test_mixture_nll_without_a_floor_keeps_the_gradient_of_a_far_pixel():
    # a bright sprite pixel (1.0) against slots that paint black: the reference's floor
    # stops its gradient; min_likelihood=0 gives the exact log-density and its gradient
    sigmas = torch.tensor([0.09], dtype=torch.float64)
    for floor, grad_is_zero in ((1e-5, True), (0.0, False)):
        means = torch.zeros(1, 1, 1, 1, 1, dtype=torch.float64, requires_grad=True)
        nll = mixture_nll(pixel(1.0), means, torch.zeros_like(means), sigmas, min_likelihood=floor)
        (grad,) = torch.autograd.grad(nll, means)
        assert (grad.abs().sum().item() == 0) == grad_is_zero
    exact = 1.0 / (2 * 0.09**2) + math.log(0.09 * math.sqrt(2 * math.pi))
    assert nll.item() == pytest.approx(exact, rel=1e-12)
    assert grad.item() == pytest.approx(-1.0 / 0.09**2, rel=1e-9)  # d/d mu of (mu - x)^2 / 2 sigma^2
    with pytest.raises(InputError, match="min_likelihood"):
        mixture_nll(pixel(1.0), means, torch.zeros_like(means), sigmas, min_likelihood=-1.0)


def eager_mixture_nll(target, means, weights, sigmas):
    """ViMON's decoder_loglikelihood as loops: probabilities, clamp, log, / (B * T)."""
    B, T, K, C, H, W = means.shape
    total = 0.0
    for b, t, c, h, w in torch.cartesian_prod(*(torch.arange(n) for n in (B, T, C, H, W))).tolist():
        x = target[b, t, c, h, w].item()
        p = sum(
            weights[b, t, k, 0, h, w].item() * gauss(x, means[b, t, k, c, h, w].item(), sigmas[k].item())
            for k in range(K)
        )
        total -= math.log(max(p, 1e-5))
    return total / (B * T)


def test_mixture_nll_matches_an_eager_loop():
    B, T, K, C, H, W = 2, 2, 3, 2, 3, 3
    target = torch.rand(B, T, C, H, W, dtype=torch.float64)
    means = torch.rand(B, T, K, C, H, W, dtype=torch.float64) * 1.6 - 0.3  # some pixels hit the clamp
    logits = torch.randn(B, T, K, 1, H, W, dtype=torch.float64) * 2
    sigmas = slot_sigmas(K, dtype=torch.float64)
    ours = mixture_nll(target, means, logits.log_softmax(dim=2), sigmas)
    expected = eager_mixture_nll(target, means, logits.softmax(dim=2), sigmas)
    assert ours.item() == pytest.approx(expected, rel=1e-10)


def eager_pixel_mixture_nll(target, means, weights, sigmas, floor=1e-5):
    """MONet's paper: per pixel, sum_k w_k prod_c N(x_c; mu_kc, sigma_k^2), clamp, log, / (B * T)."""
    B, T, K, C, H, W = means.shape
    total = 0.0
    for b, t, h, w in torch.cartesian_prod(*(torch.arange(n) for n in (B, T, H, W))).tolist():
        p = 0.0
        for k in range(K):
            density = math.prod(
                gauss(target[b, t, c, h, w].item(), means[b, t, k, c, h, w].item(), sigmas[k].item())
                for c in range(C)
            )
            p += weights[b, t, k, 0, h, w].item() * density
        total -= math.log(max(p, floor)) if floor > 0 else math.log(p)
    return total / (B * T)


@pytest.mark.parametrize("floor", [1e-5, 0.0])
def test_pixel_mixture_nll_matches_an_eager_loop(floor: float):
    B, T, K, C, H, W = 2, 2, 3, 3, 3, 3
    target = torch.rand(B, T, C, H, W, dtype=torch.float64)
    means = torch.rand(B, T, K, C, H, W, dtype=torch.float64) * 1.2 - 0.1  # some pixels hit the clamp
    logits = torch.randn(B, T, K, 1, H, W, dtype=torch.float64) * 2
    sigmas = slot_sigmas(K, dtype=torch.float64)
    ours = mixture_nll(target, means, logits.log_softmax(dim=2), sigmas, min_likelihood=floor, per_pixel=True)
    expected = eager_pixel_mixture_nll(target, means, logits.softmax(dim=2), sigmas, floor)
    assert ours.item() == pytest.approx(expected, rel=1e-10)
    per_channel = mixture_nll(target, means, logits.log_softmax(dim=2), sigmas, min_likelihood=floor)
    assert ours.item() != pytest.approx(per_channel.item(), rel=1e-3)  # a different likelihood
    with pytest.raises(InputError, match="per-pixel"):
        mixture_nll(target, means, logits.expand(-1, -1, -1, C, -1, -1), sigmas, per_pixel=True)


def test_mixture_nll_rejects_mismatched_shapes():
    with pytest.raises(InputError, match="slot dim"):
        mixture_nll(torch.rand(2, 3, 4, 4), torch.rand(2, 3, 4, 4), torch.rand(2, 1, 4, 4), torch.rand(2))
    with pytest.raises(InputError, match="disagree"):
        mixture_nll(
            torch.rand(2, 3, 4, 4), torch.rand(2, 5, 3, 4, 4), torch.rand(2, 5, 1, 4, 4), torch.rand(4)
        )


def test_mask_kl_by_hand_and_batchmean():
    q = torch.tensor([[0.5, 0.5], [1.0, 0.0]], dtype=torch.float64)  # (N=2, K=2)
    p = torch.tensor([[0.25, 0.75], [0.5, 0.5]], dtype=torch.float64)
    expected = (0.5 * math.log(2) + 0.5 * math.log(0.5 / 0.75) + math.log(2)) / 2  # 0 log 0 = 0
    assert mask_kl(p.log(), q.log()).item() == pytest.approx(expected, rel=1e-12)


def test_mask_kl_equals_kldivloss_with_probability_targets():
    log_p = torch.randn(3, 4, 5, 1, 6, 6, dtype=torch.float64).log_softmax(dim=2)
    log_q = torch.randn(3, 4, 5, 1, 6, 6, dtype=torch.float64).log_softmax(dim=2)
    official = torch.nn.KLDivLoss(reduction="batchmean")(log_p, log_q.exp())
    assert mask_kl(log_p, log_q).item() == pytest.approx(official.item(), rel=1e-12)


def test_mask_kl_gradient_is_finite_where_a_mask_underflows():
    # exp(-800) underflows to 0; -inf is an exact 0
    log_q = torch.tensor([[0.0, -800.0], [0.0, -math.inf]], dtype=torch.float64, requires_grad=True)
    log_p = torch.tensor([[-0.1, -2.3], [-0.2, -1.7]], dtype=torch.float64, requires_grad=True)
    mask_kl(log_p, log_q).backward()
    assert torch.isfinite(log_q.grad).all() and torch.isfinite(log_p.grad).all()


def test_gaussian_kl_by_hand_and_against_torch_distributions():
    mu = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 0.0]], dtype=torch.float64)
    logvar = torch.tensor([[0.0, 0.0], [0.0, 0.0], [math.log(2.0), 0.0]], dtype=torch.float64)
    assert gaussian_kl(mu, logvar).tolist() == pytest.approx([0.0, 0.5, 0.5 * (1 - math.log(2))], abs=1e-12)
    mu, logvar = torch.randn(4, 3, 7, dtype=torch.float64), torch.randn(4, 3, 7, dtype=torch.float64)
    posterior = torch.distributions.Normal(mu, (0.5 * logvar).exp())
    reference = torch.distributions.kl_divergence(posterior, torch.distributions.Normal(0.0, 1.0)).sum(-1)
    torch.testing.assert_close(gaussian_kl(mu, logvar), reference)


@dataclass
class FakeViMON:
    rgb: torch.Tensor
    mask_logits: torch.Tensor
    next_rgb: torch.Tensor
    next_mask_logits: torch.Tensor
    attn_log_masks: torch.Tensor
    mu: torch.Tensor
    logvar: torch.Tensor
    recon: torch.Tensor
    pred: torch.Tensor


def fake_vimon(B: int, steps: int, K: int, size: int, D: int) -> FakeViMON:
    f64 = torch.float64
    return FakeViMON(
        recon=torch.rand(B, steps, 3, size, size, dtype=f64),
        pred=torch.rand(B, steps, 3, size, size, dtype=f64),
        rgb=torch.rand(B, steps, K, 3, size, size, dtype=f64),
        mask_logits=torch.randn(B, steps, K, 1, size, size, dtype=f64),
        next_rgb=torch.rand(B, steps, K, 3, size, size, dtype=f64),
        next_mask_logits=torch.randn(B, steps, K, 1, size, size, dtype=f64),
        attn_log_masks=torch.randn(B, steps, K, 1, size, size, dtype=f64).log_softmax(dim=2),
        mu=torch.randn(B, steps, K, D, dtype=f64),
        logvar=torch.randn(B, steps, K, D, dtype=f64),
    )


def eager_kl_masks(log_p, q):
    """sum over everything of q (log q - log p), divided by the first dimension."""
    pairs = zip(q.flatten().tolist(), log_p.flatten().tolist(), strict=True)
    return sum(qi * (math.log(qi) - lp) for qi, lp in pairs if qi > 0) / q.shape[0]


def eager_kl_sum(mu, logvar):
    """sum over every latent vector of KL(N(mu, exp(logvar)) || N(0, 1)), one number at a time."""
    pairs = zip(mu.flatten().tolist(), logvar.flatten().tolist(), strict=True)
    return sum(-0.5 * (1 + lv - m * m - math.exp(lv)) for m, lv in pairs)


def test_vimon_losses_follow_the_reference_frame_bookkeeping():
    B, T, K, S, D = 2, 4, 3, 3, 2
    out, video = fake_vimon(B, T - 1, K, S, D), torch.rand(B, T, 3, S, S, dtype=torch.float64)
    losses = vimon_losses(out, video, beta=0.7, gamma=1.3)
    sig = slot_sigmas(K, dtype=torch.float64)
    recon = eager_mixture_nll(video[:, :-1], out.rgb, out.mask_logits.softmax(2), sig)
    pred = eager_mixture_nll(video[:, 2:], out.next_rgb[:, 1:], out.next_mask_logits[:, 1:].softmax(2), sig)
    attn = out.attn_log_masks.exp()
    curr_mask = eager_kl_masks(out.mask_logits.log_softmax(2), attn) / (T - 1)
    next_mask = eager_kl_masks(out.next_mask_logits.log_softmax(2)[:, 1:-1], attn[:, 2:]) / (T - 2)
    kl = eager_kl_sum(out.mu, out.logvar) / (B * (T - 1))  # mean over batch and frames, sum over slots
    for name, value in [
        ("recon", recon),
        ("pred", pred),
        ("curr_mask", curr_mask),
        ("next_mask", next_mask),
        ("kl", kl),
    ]:
        assert getattr(losses, name).item() == pytest.approx(value, rel=1e-10), name
    total = recon + pred + 0.7 * kl + 1.3 * (curr_mask + next_mask)
    assert losses.total().item() == pytest.approx(total, rel=1e-10)


def eager_image_nll(target, image, sigma):
    """sum over every pixel channel of -log N(target; image, sigma^2), one number at a time."""
    pairs = zip(target.flatten().tolist(), image.flatten().tolist(), strict=True)
    return sum(-math.log(gauss(x, m, sigma)) for x, m in pairs)


def test_vimon_losses_with_the_image_likelihood_by_an_eager_loop():
    B, T, K, S, D = 2, 4, 3, 3, 2
    out, video = fake_vimon(B, T - 1, K, S, D), torch.rand(B, T, 3, S, S, dtype=torch.float64)
    image = vimon_losses(out, video, sigmas=(0.09, 0.2), likelihood="image")
    recon = eager_image_nll(video[:, :-1], out.recon, 0.2) / (B * (T - 1))
    pred = eager_image_nll(video[:, 2:], out.pred[:, 1:], 0.2) / (B * (T - 2))
    assert image.recon.item() == pytest.approx(recon, rel=1e-10)
    assert image.pred.item() == pytest.approx(pred, rel=1e-10)
    mixture = vimon_losses(out, video, sigmas=(0.09, 0.2))
    for name in ("curr_mask", "next_mask", "kl"):  # only the likelihood changes
        assert getattr(image, name) == getattr(mixture, name), name
    assert image.recon != mixture.recon
    with pytest.raises(InputError, match="likelihood must be"):
        vimon_losses(out, video, likelihood="mse")  # type: ignore[arg-type]


def test_vimon_losses_the_last_frame_is_only_a_prediction_target():
    out, video = fake_vimon(1, 3, 2, 3, 2), torch.rand(1, 4, 3, 3, 3, dtype=torch.float64)
    changed = video.clone()
    changed[:, -1] = 1 - changed[:, -1]
    first, second = vimon_losses(out, video), vimon_losses(out, changed)
    assert first.recon == second.recon and first.pred != second.pred


def test_vimon_losses_reject_a_video_of_the_wrong_length():
    out = fake_vimon(1, 3, 2, 3, 2)
    with pytest.raises(InputError, match="needs 4"):
        vimon_losses(out, torch.rand(1, 3, 3, 3, 3, dtype=torch.float64))
    with pytest.raises(InputError, match="at least 3 frames"):
        vimon_losses(fake_vimon(1, 1, 2, 3, 2), torch.rand(1, 2, 3, 3, 3, dtype=torch.float64))


@dataclass
class FakeMONet:
    rgb: torch.Tensor
    mask_logits: torch.Tensor
    attn_log_masks: torch.Tensor
    mu: torch.Tensor
    logvar: torch.Tensor


def test_monet_losses_against_an_eager_loop():
    B, T, K, S, D = 2, 2, 3, 3, 2
    f64 = torch.float64
    out = FakeMONet(
        rgb=torch.rand(B, T, K, 3, S, S, dtype=f64),
        mask_logits=torch.randn(B, T, K, 1, S, S, dtype=f64),
        attn_log_masks=torch.randn(B, T, K, 1, S, S, dtype=f64).log_softmax(dim=2),
        mu=torch.randn(B, T, K, D, dtype=f64),
        logvar=torch.randn(B, T, K, D, dtype=f64),
    )
    video = torch.rand(B, T, 3, S, S, dtype=f64)
    losses = monet_losses(out, video, beta=0.5, gamma=0.25)
    attn = out.attn_log_masks.exp()
    recon = eager_mixture_nll(video, out.rgb, attn, slot_sigmas(K, dtype=f64))  # weights: attention masks
    mask = eager_kl_masks(out.mask_logits.log_softmax(2).flatten(0, 1), attn.flatten(0, 1))  # / (B * T)
    kl = eager_kl_sum(out.mu, out.logvar) / (B * T)
    assert losses.recon.item() == pytest.approx(recon, rel=1e-10)
    assert losses.mask.item() == pytest.approx(mask, rel=1e-10)
    assert losses.kl.item() == pytest.approx(kl, rel=1e-10)
    assert losses.total().item() == pytest.approx(recon + 0.5 * kl + 0.25 * mask, rel=1e-10)
    # the image likelihood mixes the image with the attention masks, the mixture's weights
    image = monet_losses(out, video, sigmas=(0.09, 0.2), likelihood="image")
    mixed = torch.zeros(B, T, 3, S, S, dtype=f64)
    for k in range(K):
        mixed += attn[:, :, k] * out.rgb[:, :, k]
    assert image.recon.item() == pytest.approx(eager_image_nll(video, mixed, 0.2) / (B * T), rel=1e-10)
    assert image.mask == losses.mask and image.kl == losses.kl


def autograd_mixture_nll(target, means, log_weights, sigmas, min_likelihood=1e-5):
    """The formula as plain autograd ops: the reference for mixture_nll's hand-written backward."""
    sigma = sigmas[:, None, None, None]
    log_density = -(means - target.unsqueeze(-4)).square() / (2 * sigma**2) - torch.log(
        sigma * math.sqrt(2 * math.pi)
    )
    log_mixture = torch.logsumexp(log_weights + log_density, dim=-4).clamp_min(math.log(min_likelihood))
    return -log_mixture.sum() / math.prod(target.shape[:-3])


@pytest.mark.parametrize("weight_chans", [1, 2])
def test_mixture_nll_gradients_match_autograd(weight_chans):
    gen = torch.Generator().manual_seed(0)
    B, T, K, C, H, W = 2, 3, 4, 2, 5, 5
    f64 = torch.float64
    target = torch.rand(B, T, C, H, W, dtype=f64, generator=gen)
    means = torch.rand(B, T, K, C, H, W, dtype=f64, generator=gen) * 1.6 - 0.3  # some pixels clamped
    logits = torch.randn(B, T, K, weight_chans, H, W, dtype=f64, generator=gen) * 2
    log_weights = logits.log_softmax(dim=2)
    log_weights[0, 0, 1:] = -math.inf  # one frame with a single live slot (masks that underflowed)
    sigmas = slot_sigmas(K, dtype=f64)
    grads = []
    for loss_fn in (mixture_nll, autograd_mixture_nll):
        inputs = [t.clone().requires_grad_() for t in (target, means, log_weights)]
        loss = loss_fn(*inputs, sigmas)
        grads.append((loss.detach(), *torch.autograd.grad(loss, inputs)))
    clamped = (means - target.unsqueeze(2)).abs().amin(dim=2) > 0.6
    assert clamped.any() and not clamped.all()  # both branches of the floor are exercised
    for ours, expected in zip(*grads, strict=True):
        torch.testing.assert_close(ours, expected, rtol=1e-10, atol=1e-12)


def test_mixture_nll_passes_gradcheck():
    gen = torch.Generator().manual_seed(1)
    f64 = torch.float64
    target = torch.rand(1, 2, 3, 3, dtype=f64, generator=gen).requires_grad_()
    means = torch.rand(1, 3, 2, 3, 3, dtype=f64, generator=gen).requires_grad_()
    log_weights = torch.randn(1, 3, 1, 3, 3, dtype=f64, generator=gen).log_softmax(dim=1).requires_grad_()
    sigmas = slot_sigmas(3, dtype=f64)
    assert torch.autograd.gradcheck(lambda *x: mixture_nll(*x, sigmas), (target, means, log_weights))


def test_mixture_nll_takes_bf16_means_in_the_targets_precision():
    # What autocast hands the loss: bf16 decoder means, fp32 targets and log-weights.
    gen = torch.Generator().manual_seed(2)
    target = torch.rand(2, 3, 4, 4, generator=gen)
    means = (torch.rand(2, 3, 3, 4, 4, generator=gen) * 1.2 - 0.1).bfloat16().requires_grad_()
    log_weights = torch.randn(2, 3, 1, 4, 4, generator=gen).log_softmax(dim=1).requires_grad_()
    sigmas = slot_sigmas(3)
    loss = mixture_nll(target, means, log_weights, sigmas)
    loss.backward()
    upcast = means.detach().double().requires_grad_()
    expected = autograd_mixture_nll(target.double(), upcast, log_weights.detach().double(), sigmas.double())
    expected.backward()
    assert loss.dtype == torch.float32 and means.grad.dtype == torch.bfloat16
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    torch.testing.assert_close(means.grad.double(), upcast.grad, rtol=1e-2, atol=1e-4)
