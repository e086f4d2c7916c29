"""SFA (Slots and Frames Attention) on a tiny configuration, and its loss."""

import copy
import dataclasses
import math
from dataclasses import dataclass

import pytest
import torch

from attnlab.errors import ConfigError, InputError
from attnlab.explain.capture import capture
from attnlab.models.object_centric.colour import chromaticity
from attnlab.models.object_centric.frame_clusters import frame_clusters
from attnlab.models.object_centric.gaussian_masks import gaussian_log_masks
from attnlab.models.object_centric.sfa import SFA, SFAConfig
from attnlab.models.outputs import ObjectCentricOutput
from attnlab.objectives.sfa import sfa_losses

SMALL = dict(
    num_slots=3,
    latent_dim=4,
    image_size=16,
    encoder_channels=(8, 8),
    encoder_strides=(2, 1),
    dim=16,
    num_heads=2,
    mlp_ratio=2.0,
    decoder_channels=8,
    decoder_layers=2,
)
PER_SLOT = ["masks", "next_masks", "rgb", "next_rgb", "mask_logits", "next_mask_logits"]
PER_SLOT += ["mu", "logvar", "z", "z_pred", "slots"]


pytestmark = pytest.mark.usefixtures("one_thread")  # small models: threads only add overhead


def small(use_mean: bool = False, **changes) -> SFA:
    return SFA(SFAConfig(**{**SMALL, **changes}, use_mean=use_mean))


def video(B: int = 2, T: int = 4, size: int = 16) -> torch.Tensor:
    return torch.rand(B, T, 3, size, size)


def fields(out: ObjectCentricOutput) -> dict[str, torch.Tensor]:
    """The output's tensors (fields the model leaves None are left out)."""
    return {f.name: v for f in dataclasses.fields(out) if (v := getattr(out, f.name)) is not None}


def test_shapes_and_masks_sum_to_one():
    B, T, K = 2, 4, SMALL["num_slots"]
    out = small()(video(B, T))
    assert out.masks.shape == out.next_masks.shape == (B, T, K, 1, 16, 16)
    assert out.recon.shape == out.pred.shape == (B, T, 3, 16, 16)
    assert out.rgb.shape == out.next_rgb.shape == (B, T, K, 3, 16, 16)
    assert out.mu.shape == out.z_pred.shape == (B, T, K, SMALL["latent_dim"])
    assert out.slots.shape == (B, T, K, SMALL["dim"])
    for masks in (out.masks, out.next_masks):
        torch.testing.assert_close(masks.sum(dim=2), torch.ones(B, T, 1, 16, 16))
    torch.testing.assert_close(out.recon, (out.masks * out.rgb).sum(dim=2))
    torch.testing.assert_close(out.pred, (out.next_masks * out.next_rgb).sum(dim=2))


def test_eval_uses_the_mean_and_training_samples():
    model, clip = small(), video()
    assert not torch.equal(model(clip).z, model(clip).mu)
    torch.testing.assert_close(model.eval()(clip).z, model(clip).mu, rtol=0, atol=0)
    mean_model = small(use_mean=True)
    out = mean_model(clip)
    assert mean_model.training and torch.equal(out.z, out.mu)


@pytest.mark.parametrize("t", [0, 1, 2])
def test_outputs_up_to_frame_t_ignore_later_frames(t):
    model, clip = small().eval(), video(T=4)
    changed = clip.clone()
    changed[:, t + 1 :] = torch.rand_like(changed[:, t + 1 :])
    with torch.no_grad():
        first, second = fields(model(clip)), fields(model(changed))
        prefix = fields(model(clip[:, : t + 1]))
    for name in first:
        torch.testing.assert_close(first[name][:, : t + 1], second[name][:, : t + 1], msg=name)
        torch.testing.assert_close(prefix[name], first[name][:, : t + 1], msg=name)
    # not vacuous: the changed frames themselves do change
    assert not torch.allclose(first["recon"][:, t + 1 :], second["recon"][:, t + 1 :])


def test_no_gradient_from_the_future_and_the_past_reaches_the_present():
    model, T = small(), 4  # training mode: the sampling path too
    clip = video(T=T).requires_grad_(True)
    out = model(clip)
    t = 1
    score = sum(v[:, : t + 1].square().sum() for v in fields(out).values())
    (grad,) = torch.autograd.grad(score, clip, retain_graph=True)
    assert torch.all(grad[:, t + 1 :] == 0)
    assert all(grad[:, s].abs().sum() > 0 for s in range(t + 1))
    # the slots x frames attention carries frame 0 into the last frame's outputs
    (grad_last,) = torch.autograd.grad(out.recon[:, -1].sum(), clip)
    assert grad_last[:, 0].abs().sum() > 0


def test_permuting_the_slot_queries_permutes_the_slots():
    model, clip = small().eval(), video()
    perm = torch.tensor([2, 0, 1])
    permuted = copy.deepcopy(model)
    with torch.no_grad():
        # every per-slot parameter: the Extractor's queries and the slot position embedding
        permuted.extractor.queries.copy_(model.extractor.queries[:, perm])
        permuted.slot_embed.copy_(model.slot_embed[perm])
        out, out_perm = fields(model(clip)), fields(permuted(clip))
    assert not torch.allclose(out["masks"], out["masks"][:, :, perm])  # the slots differ
    for name in PER_SLOT:
        torch.testing.assert_close(out_perm[name], out[name][:, :, perm], msg=name)
    for name in ("recon", "pred"):
        torch.testing.assert_close(out_perm[name], out[name], msg=name)


def test_capture_records_the_extractor_and_the_causal_slot_frame_attention():
    model, (B, T) = small().eval(), (2, 3)
    K, H, N = SMALL["num_slots"], SMALL["num_heads"], 8 * 8  # 16 px, one stride 2: 8 x 8 tokens
    clip = video(B, T)
    with torch.no_grad():
        plain = model(clip)
        with capture(model) as rec:
            captured = model(clip)
    torch.testing.assert_close(captured.recon, plain.recon)
    extractor, slot_time = rec["extractor.blocks.0.attn"], rec["transformer.0.attn"]
    assert extractor.shape == (B * T, H, K, N)
    assert slot_time.shape == (B, H, T * K, T * K)
    frame = torch.arange(T * K) // K  # frame-major tokens: index t * K + k
    future = frame[None, :] > frame[:, None]  # (query, key)
    assert torch.all(slot_time[:, :, future] == 0)
    assert torch.all(slot_time[:, :, ~future] > 0)
    torch.testing.assert_close(slot_time.sum(-1), torch.ones(B, H, T * K))


def test_every_parameter_gets_a_gradient_through_the_loss():
    model, clip = small(), video(T=4)
    losses = sfa_losses(model(clip[:, :-1]), clip)
    losses.total().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


BAD_VIDEOS = [
    (torch.rand(2, 3, 3, 15, 15), r"\(B, T, 3, 16, 16\)"),
    (torch.rand(2, 3, 1, 16, 16), r"\(B, T, 3, 16, 16\)"),
    (torch.rand(3, 3, 16, 16), r"\(B, T, 3, 16, 16\)"),
    (torch.zeros(2, 0, 3, 16, 16), "at least one clip and one frame"),
    (torch.zeros(2, 3, 3, 16, 16, dtype=torch.uint8), "float tensor"),
    (torch.full((1, 2, 3, 16, 16), math.nan), "NaN"),
    (torch.full((1, 2, 3, 16, 16), 1.5), r"\[0, 1\]"),
    (torch.full((1, 2, 3, 16, 16), -0.1), r"\[0, 1\]"),
]


@pytest.mark.parametrize(("bad", "message"), BAD_VIDEOS)
def test_the_model_rejects_bad_videos(bad, message):
    with pytest.raises(InputError, match=message):
        small()(bad)


def test_the_video_check_does_not_break_a_compiled_graph():
    from attnlab.models._checks import check_video

    compiled = torch.compile(check_video, fullgraph=True, backend="eager")  # a graph break raises
    compiled(torch.rand(1, 2, 3, 16, 16), 16)
    with pytest.raises(InputError, match="float tensor"):  # the shape and dtype checks still run
        torch.compile(check_video, backend="eager")(torch.zeros(1, 2, 3, 16, 16, dtype=torch.uint8), 16)


def test_the_config_is_checked():
    with pytest.raises(ConfigError, match="same length"):
        small(encoder_strides=(2,))
    with pytest.raises(ConfigError, match="extractor must be"):
        small(extractor="slots")
    with pytest.raises(ConfigError, match="slot_iterations"):
        small(extractor="slot_attention", slot_iterations=0)
    with pytest.raises(ConfigError, match="carry_slots needs"):
        small(carry_slots=True)
    with pytest.raises(ConfigError, match="slot_init needs"):
        small(slot_init="gaussian")
    with pytest.raises(ConfigError, match="slot_init must be"):
        small(extractor="slot_attention", slot_init="zeros")
    with pytest.raises(ConfigError, match="slot_init needs"):
        small(slot_init="kmeans")
    with pytest.raises(ConfigError, match="not with carry_slots"):
        small(extractor="slot_attention", slot_init="kmeans", carry_slots=True)
    with pytest.raises(ConfigError, match="kmeans_colour must be"):
        small(extractor="slot_attention", slot_init="kmeans", kmeans_colour="hsv")
    for weight in (-1.0, math.nan):
        with pytest.raises(ConfigError, match="kmeans_position_weight must be"):
            small(extractor="slot_attention", slot_init="kmeans", kmeans_position_weight=weight)
    for field in ("slot_bilevel", "slot_position_weight"):
        with pytest.raises(ConfigError, match="slot_bilevel and slot_position_weight need"):
            small(**{field: 1})
    for weight in (-1.0, math.inf):
        with pytest.raises(ConfigError, match="slot_position_weight must be"):
            small(extractor="slot_attention", slot_position_weight=weight)
    for power in (0.5, math.inf):
        with pytest.raises(ConfigError, match="gaussian_power must be"):
            small(extractor="slot_attention", masks="gaussian", gaussian_power=power)
    for masks in ("attention", "gaussian"):
        with pytest.raises(ConfigError, match=f"masks '{masks}' needs"):
            small(masks=masks)
    with pytest.raises(ConfigError, match="masks must be"):
        small(extractor="slot_attention", masks="pixels")
    with pytest.raises(ConfigError, match="encoder_positions must be"):
        small(encoder_positions="learned")
    with pytest.raises(ConfigError, match="encoder_input must be"):
        small(encoder_input="hsv")


# ---- the slot-attention Object Extractor (extractor="slot_attention") ----


@pytest.mark.parametrize("position_weight", [0.0, 5.0])
@pytest.mark.parametrize("init", ["learned", "gaussian"])
@pytest.mark.parametrize("carry", [False, True])
def test_slot_attention_extractor_keeps_the_contract_and_causality(carry, init, position_weight):
    model = small(
        extractor="slot_attention", carry_slots=carry, slot_init=init, slot_position_weight=position_weight
    ).eval()
    if position_weight:  # one position per token of the encoder's 8 x 8 grid
        assert model.extractor.positions.shape == (64, 2)
    clip = video(T=4)
    changed = clip.clone()
    changed[:, 2:] = torch.rand_like(changed[:, 2:])
    with torch.no_grad():
        first, second = fields(model(clip)), fields(model(changed))
    assert first["masks"].shape == (2, 4, SMALL["num_slots"], 1, 16, 16)
    for name in first:
        torch.testing.assert_close(first[name][:, :2], second[name][:, :2], msg=name)
    assert not torch.allclose(first["recon"][:, 2:], second["recon"][:, 2:])


@pytest.mark.parametrize("masks", ["decoder", "attention"])
def test_kmeans_slots_start_from_each_frames_clusters_and_stay_causal(masks):
    model = small(
        extractor="slot_attention", slot_init="kmeans", kmeans_position_weight=0.5, masks=masks, use_mean=True
    ).eval()
    clip = video(T=4)
    with torch.no_grad():
        tokens = model.encoder(clip.flatten(0, 1)).view(2, 4, 64, -1)  # the encoder's 8 x 8 grid
        clusters = frame_clusters(clip, (8, 8), SMALL["num_slots"], "chromaticity", 0.5)
        want = model.extractor(tokens, clusters)
        torch.testing.assert_close(model.extract(clip), want)
        changed = clip.clone()
        changed[:, 2:] = torch.rand_like(changed[:, 2:])
        first, second = fields(model(clip)), fields(model(changed))
    for name in first:  # frame t's clusters start from frame t-1's: nothing reads a later frame
        torch.testing.assert_close(first[name][:, :2], second[name][:, :2], msg=name)
    model.train()
    model(clip).recon.sum().backward()
    assert model.extractor.queries.grad.abs().sum() > 0


@pytest.mark.parametrize("carry", [False, True])
def test_bilevel_slots_give_the_same_outputs_and_train_the_initial_slots(carry):
    """BO-QSA's gradient changes what is learned, not what is computed."""
    plain = small(extractor="slot_attention", carry_slots=carry).eval()
    bilevel = small(extractor="slot_attention", carry_slots=carry, slot_bilevel=True).eval()
    bilevel.load_state_dict(plain.state_dict())
    clip = video(T=3)
    out_plain, out_bilevel = fields(plain(clip)), fields(bilevel(clip))
    for name in out_plain:
        torch.testing.assert_close(out_bilevel[name], out_plain[name], msg=name)
    out_bilevel["recon"].sum().backward()
    out_plain["recon"].sum().backward()
    queries_plain, queries_bilevel = plain.extractor.queries.grad, bilevel.extractor.queries.grad
    assert queries_bilevel is not None and queries_bilevel.abs().sum() > 0
    assert not torch.allclose(queries_bilevel, queries_plain)


def test_slot_attention_competes_over_slots_for_every_token():
    model = small(extractor="slot_attention").eval()
    with torch.no_grad(), capture(model) as rec:
        model(video(B=2, T=3))
    weights = rec["extractor.slot_attention"]  # last iteration, (B*T, K, N)
    assert weights.shape == (6, SMALL["num_slots"], 64)
    torch.testing.assert_close(weights.sum(1), torch.ones(6, 64))  # softmax over slots
    assert len(rec.calls("extractor.slot_attention")) == 3  # one per iteration


def mixed_beside(other: SFA, **changes) -> tuple[ObjectCentricOutput, ObjectCentricOutput, torch.Tensor]:
    """A slot-attention SFA with ``changes`` and ``other``'s weights, both on one clip (B 2, T 3): the
    outputs of each and the Extractor's last attention on the 8x8 token grid (B*T, K, h, w)."""
    model = small(extractor="slot_attention", **changes).eval()
    model.load_state_dict(other.state_dict())
    clip = video(B=2, T=3)
    with torch.no_grad(), capture(model) as rec:
        out = model(clip)
        plain = other.eval()(clip)
    return out, plain, rec["extractor.slot_attention"].view(6, SMALL["num_slots"], 8, 8)


def test_attention_masks_are_the_extractors_last_attention_resized_to_the_frame():
    """masks="attention": the reconstruction mixes with the Extractor's attention (an 8x8 token
    grid here, resized bilinearly to 16x16); the prediction keeps the decoder's masks."""
    out, plain, weights = mixed_beside(small(extractor="slot_attention"), masks="attention")
    # a bilinear resize of 8 -> 16 by hand: each output pixel's centre (i + 0.5) / 2 - 0.5 in the
    # input grid, clamped at the borders, interpolated between its two neighbours on each axis
    pos = ((torch.arange(16) + 0.5) / 2 - 0.5).clamp(0, 7)
    lo = pos.floor().long()
    hi = (lo + 1).clamp(max=7)
    frac = pos - lo
    rows = weights[:, :, lo] * (1 - frac)[:, None] + weights[:, :, hi] * frac[:, None]  # (6, K, 16, 8)
    resized = rows[..., lo] * (1 - frac) + rows[..., hi] * frac  # (6, K, 16, 16)
    torch.testing.assert_close(out.masks.view(6, SMALL["num_slots"], 16, 16), resized)
    torch.testing.assert_close(out.recon, (out.masks * out.rgb).sum(2))
    for name in ("rgb", "next_masks", "next_rgb", "pred", "mu"):
        torch.testing.assert_close(getattr(out, name), getattr(plain, name), msg=name)
    assert not torch.allclose(out.masks, plain.masks)


@pytest.mark.parametrize("power", [1.0, 4.0])
def test_gaussian_masks_are_one_blob_per_slot_fitted_to_the_extractors_last_attention(power):
    attention_masks = small(extractor="slot_attention", masks="attention")
    out, plain, weights = mixed_beside(attention_masks, masks="gaussian", gaussian_power=power)
    blobs = gaussian_log_masks(weights, (16, 16), power).exp()
    torch.testing.assert_close(out.masks.view(6, SMALL["num_slots"], 16, 16), blobs)
    torch.testing.assert_close(out.recon, (out.masks * out.rgb).sum(2))
    for name in ("rgb", "next_masks", "slots"):
        torch.testing.assert_close(getattr(out, name), getattr(plain, name), msg=name)
    model = small(extractor="slot_attention", masks="gaussian", gaussian_power=power)
    out = model(video(T=3))
    (out.masks * torch.randn_like(out.masks)).sum().backward()  # the masks alone
    assert model.extractor.slot_attention.k_proj.weight.grad.abs().sum() > 0


def test_attention_masks_train_the_extractor_through_the_reconstruction():
    model = small(extractor="slot_attention", masks="attention", slot_bilevel=True)
    out = model(video(T=3))
    (out.masks * torch.randn_like(out.masks)).sum().backward()  # the masks alone
    assert model.extractor.slot_attention.k_proj.weight.grad.abs().sum() > 0
    assert model.encoder.proj.weight.grad.abs().sum() > 0


def test_soft_encoder_positions_are_slot_attentions_encoder_head():
    """encoder_positions="soft": features + a linear map of the grid, LayerNorm, then the MLP."""
    model = small(encoder_positions="soft").eval()
    frames = torch.rand(3, 3, 16, 16)
    maps = model.encoder.convs(frames).flatten(2).transpose(1, 2)  # (3, 64, C): an 8x8 grid
    ys, xs = torch.meshgrid(torch.linspace(0, 1, 8), torch.linspace(0, 1, 8), indexing="ij")
    ramps = torch.stack([ys, xs, 1 - ys, 1 - xs], -1).reshape(64, 4)
    pos = model.encoder.pos_embed.proj
    norm, first, _, second = model.encoder.proj
    hidden = torch.relu(first(norm(maps + ramps @ pos.weight.T + pos.bias)))
    torch.testing.assert_close(model.encoder(frames), second(hidden))
    assert model(video(T=3)).masks.shape == (2, 3, SMALL["num_slots"], 1, 16, 16)


def test_chromaticity_is_the_same_for_a_colour_lit_and_shaded():
    lit = torch.tensor([0.6, 0.3, 0.15]).view(1, 3, 1, 1).expand(1, 3, 2, 2)
    chroma = chromaticity(torch.cat([lit, 0.25 * lit, torch.zeros_like(lit)]))  # lit, shaded, black
    by_hand = torch.tensor([0.6, 0.3, 0.15]) / 1.05
    torch.testing.assert_close(chroma[0, :, 0, 0], by_hand, atol=1e-3, rtol=0)
    torch.testing.assert_close(chroma[1, :, 0, 0], by_hand, atol=4e-3, rtol=0)
    torch.testing.assert_close(chroma[2, :, 0, 0], torch.full((3,), 1 / 3))


def test_the_rgb_chroma_encoder_reads_the_frame_and_its_chromaticity():
    model = small(encoder_input="rgb_chroma").eval()
    assert model.encoder.convs[0].in_channels == 6
    frames = torch.rand(3, 3, 16, 16) * 0.9 + 0.1
    recorded = {}
    model.encoder.convs[0].register_forward_hook(lambda _m, args, _out: recorded.update(x=args[0]))
    model.encoder(frames)
    torch.testing.assert_close(recorded["x"][:, :3], frames)
    torch.testing.assert_close(recorded["x"][:, 3:], frames / frames.sum(1, keepdim=True), atol=2e-3, rtol=0)
    assert model(video(T=3)).masks.shape == (2, 3, SMALL["num_slots"], 1, 16, 16)


def test_a_detached_prediction_trains_the_transition_but_not_the_slots():
    plain = small(use_mean=True, extractor="slot_attention")  # the mean: no sampling noise
    detached = small(use_mean=True, extractor="slot_attention", detach_prediction=True)
    detached.load_state_dict(plain.state_dict())
    clip = video(T=3)
    out_plain, out_detached = plain(clip), detached(clip)
    torch.testing.assert_close(out_detached.pred, out_plain.pred)  # the same values
    for model, out, reaches_slots in ((plain, out_plain, True), (detached, out_detached, False)):
        out.pred.sum().backward()
        assert model.transition.weight.grad.abs().sum() > 0
        assert (model.extractor.slot_attention.q_proj.weight.grad.abs().sum() > 0) == reaches_slots


def test_carried_slots_start_each_frame_from_the_previous_one():
    """With carry_slots, frame 1's slots depend on frame 0's pixels even before the slots x
    frames attention; without it, the Extractor sees each frame alone."""
    for carry in (False, True):
        model = small(extractor="slot_attention", carry_slots=carry)
        clip = video(T=2).requires_grad_(True)
        (grad,) = torch.autograd.grad(model.extract(clip)[:, 1].sum(), clip)
        assert (grad[:, 0].abs().sum() > 0) == carry


# ---- the loss against a float64 computation, one number at a time ----


@dataclass
class FakeSFA:
    rgb: torch.Tensor
    mask_logits: torch.Tensor
    next_rgb: torch.Tensor
    next_mask_logits: torch.Tensor
    mu: torch.Tensor
    logvar: torch.Tensor


def fake_output(B: int, steps: int, K: int, size: int, D: int) -> FakeSFA:
    f64 = torch.float64
    return FakeSFA(
        rgb=torch.rand(B, steps, K, 3, size, size, dtype=f64) * 1.6 - 0.3,  # some pixels hit the clamp
        mask_logits=torch.randn(B, steps, K, 1, size, size, dtype=f64) * 2,
        next_rgb=torch.rand(B, steps, K, 3, size, size, dtype=f64) * 1.6 - 0.3,
        next_mask_logits=torch.randn(B, steps, K, 1, size, size, dtype=f64) * 2,
        mu=torch.randn(B, steps, K, D, dtype=f64),
        logvar=torch.randn(B, steps, K, D, dtype=f64),
    )


def normal_pdf(x: float, mean: float, sigma: float) -> float:
    return math.exp(-((x - mean) ** 2) / (2 * sigma**2)) / (sigma * math.sqrt(2 * math.pi))


def eager_nll(target, means, logits, sigmas) -> float:
    """-sum over pixels and channels of log max(sum_k softmax_k(logits) N(x; mean_k, sigma_k), 1e-5)."""
    B, T, K, C, H, W = means.shape
    total = 0.0
    for b in range(B):
        for t in range(T):
            for h in range(H):
                for w in range(W):
                    exps = [math.exp(logits[b, t, k, 0, h, w].item()) for k in range(K)]
                    weights = [e / sum(exps) for e in exps]
                    for c in range(C):
                        x = target[b, t, c, h, w].item()
                        p = sum(
                            weights[k] * normal_pdf(x, means[b, t, k, c, h, w].item(), sigmas[k])
                            for k in range(K)
                        )
                        total -= math.log(max(p, 1e-5))
    return total


def eager_kl(mu, logvar) -> float:
    pairs = zip(mu.flatten().tolist(), logvar.flatten().tolist(), strict=True)
    return sum(-0.5 * (1 + lv - m * m - math.exp(lv)) for m, lv in pairs)


def test_the_loss_matches_a_float64_eager_computation():
    B, T, K, S, D = 2, 4, 3, 3, 2
    out, clip = fake_output(B, T - 1, K, S, D), torch.rand(B, T, 3, S, S, dtype=torch.float64)
    losses = sfa_losses(out, clip, sigmas=(0.2, 0.15), beta=0.3)
    sigmas = [0.2] + [0.15] * (K - 1)
    # frames 1..T-1 reconstructed; frames 3..T predicted from frames 2..T-1
    recon = eager_nll(clip[:, :-1], out.rgb, out.mask_logits, sigmas) / (B * (T - 1))
    pred = eager_nll(clip[:, 2:], out.next_rgb[:, 1:], out.next_mask_logits[:, 1:], sigmas) / (B * (T - 2))
    kl = eager_kl(out.mu, out.logvar) / (B * (T - 1))  # mean over batch and frames, sum over slots
    assert losses.recon.item() == pytest.approx(recon, rel=1e-10)
    assert losses.pred.item() == pytest.approx(pred, rel=1e-10)
    assert losses.kl.item() == pytest.approx(kl, rel=1e-10)
    assert losses.total().item() == pytest.approx(recon + pred + 0.3 * kl, rel=1e-10)


def test_the_last_frame_is_only_a_prediction_target_and_the_first_prediction_is_not_scored():
    out, clip = fake_output(1, 3, 2, 3, 2), torch.rand(1, 4, 3, 3, 3, dtype=torch.float64)
    changed = clip.clone()
    changed[:, -1] = 1 - changed[:, -1]
    first, second = sfa_losses(out, clip), sfa_losses(out, changed)
    assert first.recon == second.recon and first.pred != second.pred
    out.next_rgb[:, 0] += 1.0
    assert sfa_losses(out, clip).pred == first.pred


def test_the_loss_rejects_mismatched_inputs():
    out = fake_output(1, 3, 2, 3, 2)
    with pytest.raises(InputError, match="needs 4"):
        sfa_losses(out, torch.rand(1, 3, 3, 3, 3, dtype=torch.float64))
    with pytest.raises(InputError, match="at least 3 frames"):
        sfa_losses(fake_output(1, 1, 2, 3, 2), torch.rand(1, 2, 3, 3, 3, dtype=torch.float64))
    with pytest.raises(InputError, match="does not match"):
        sfa_losses(out, torch.rand(1, 4, 3, 5, 5, dtype=torch.float64))
    out.mask_logits = out.mask_logits[:, :, :1]
    with pytest.raises(InputError, match="mask_logits"):
        sfa_losses(out, torch.rand(1, 4, 3, 3, 3, dtype=torch.float64))


def test_the_image_likelihood_is_a_gaussian_of_the_mixed_image():
    model, clip = small(use_mean=True), video(T=4)
    out = model(clip[:, :-1])
    losses = sfa_losses(out, clip, likelihood="image", sigmas=(0.09, 0.2))
    const = math.log(0.2 * math.sqrt(2 * math.pi))
    want = (0.5 * ((out.recon.double() - clip[:, :-1].double()) / 0.2) ** 2 + const).sum() / (2 * 3)
    torch.testing.assert_close(losses.recon.double(), want, rtol=1e-5, atol=1e-3)
    want_pred = (0.5 * ((out.pred[:, 1:].double() - clip[:, 2:].double()) / 0.2) ** 2 + const).sum() / (2 * 2)
    torch.testing.assert_close(losses.pred.double(), want_pred, rtol=1e-5, atol=1e-3)
    # the KL is the mixture loss's
    torch.testing.assert_close(losses.kl, sfa_losses(out, clip).kl)
    with pytest.raises(InputError, match="likelihood"):
        sfa_losses(out, clip, likelihood="mse")


def test_motion_channels_paint_two_more_channels_that_the_loss_scores():
    model = small(use_mean=True, motion_channels=2)
    clip = video(T=3)
    out = model(clip)
    assert out.rgb.shape == (2, 3, SMALL["num_slots"], 5, 16, 16) and out.recon.shape == (2, 3, 5, 16, 16)
    torch.testing.assert_close(out.recon, (out.masks * out.rgb).sum(2))
    assert out.masks.shape == (2, 3, SMALL["num_slots"], 1, 16, 16)
    target = torch.cat([torch.rand(2, 4, 3, 16, 16), torch.zeros(2, 4, 2, 16, 16)], dim=2)  # (B, T, 5, H, W)
    out = model(target[:, :-1, :3])
    loss = sfa_losses(out, target)
    moved = target.clone()
    moved[:, :, 3:] = 0.5
    assert sfa_losses(out, moved).recon > loss.recon  # the motion channels reach the likelihood
    with pytest.raises(InputError, match="does not match the outputs"):
        sfa_losses(out, target[:, :, :3])  # the frames alone: the channels disagree
    with pytest.raises(ConfigError, match="motion_channels must be 0 or 2"):
        small(motion_channels=1)


def test_appearance_channels_paint_three_more_channels_before_the_motion():
    model = small(use_mean=True, appearance_channels=3, motion_channels=2)
    out = model(video(T=3))
    assert out.rgb.shape == (2, 3, SMALL["num_slots"], 8, 16, 16) and out.recon.shape == (2, 3, 8, 16, 16)
    torch.testing.assert_close(out.recon, (out.masks * out.rgb).sum(2))
    with pytest.raises(ConfigError, match="appearance_channels must be 0 or 3"):
        small(appearance_channels=1)
