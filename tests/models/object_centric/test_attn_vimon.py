"""AttnViMON on a small configuration: causality, masks, losses, capture, validation."""

import dataclasses

import pytest
import torch

from attnlab.errors import ConfigError, InputError
from attnlab.explain.capture import capture
from attnlab.layers.unet_attention import UNet
from attnlab.models._registry import create_model
from attnlab.models.object_centric.attn_vimon import AttnViMON, AttnViMONConfig, unet_down, unet_up
from attnlab.models.outputs import ObjectCentricOutput
from attnlab.objectives.object_centric import vimon_losses
from tests.models.object_centric import SMALL_SLOT_VAE

SMALL = SMALL_SLOT_VAE | dict(
    attn_dim=8,
    num_heads=2,
    num_layers=2,
    mask_attn_dim=8,
    mask_num_heads=2,
)
K = SMALL["num_slots"]


pytestmark = pytest.mark.usefixtures("one_thread")  # small models: threads only add overhead


def small(use_mean: bool = False, seed: int = 0) -> AttnViMON:
    torch.manual_seed(seed)
    return AttnViMON(AttnViMONConfig(**SMALL, use_mean=use_mean))


def video(B: int = 2, T: int = 4, seed: int = 1) -> torch.Tensor:
    return torch.rand(B, T, 3, 16, 16, generator=torch.Generator().manual_seed(seed))


def fields(out: ObjectCentricOutput) -> dict[str, torch.Tensor]:
    """The output's tensors (fields the model leaves None are left out)."""
    return {f.name: v for f in dataclasses.fields(out) if (v := getattr(out, f.name)) is not None}


def test_preset_is_the_seed_setting():
    model = create_model("attn-vimon")
    c = model.config
    assert (c.num_slots, c.latent_dim, c.image_size) == (8, 16, 64)
    assert isinstance(model, AttnViMON) and len(model.attention.temporal) == 7  # one per U-Net slot


def test_shapes_finite_and_masks_sum_to_one_over_slots():
    out = small()(video(T=3))
    assert isinstance(out, ObjectCentricOutput)
    for name in ["masks", "next_masks", "attn_masks"]:
        masks = getattr(out, name)
        assert masks.shape == (2, 3, K, 1, 16, 16), name
        torch.testing.assert_close(masks.sum(dim=2), torch.ones(2, 3, 1, 16, 16))
    assert out.recon.shape == out.pred.shape == (2, 3, 3, 16, 16)
    assert out.mu.shape == out.z_pred.shape == (2, 3, K, 4)
    for name, value in fields(out).items():
        assert torch.isfinite(value).all(), name


def test_the_unet_split_is_the_unet():
    unet = UNet(4, image_size=16, channels=4, num_blocks=3, mlp_hidden=8)
    x = torch.randn(5, 4, 16, 16)
    torch.testing.assert_close(unet_up(unet, *unet_down(unet, x)), unet(x), rtol=0, atol=0)


def test_chunked_encoding_equals_one_sample_at_a_time():
    model = small()
    x = torch.rand(70, 4, SMALL["image_size"], SMALL["image_size"])  # two chunks and a remainder
    torch.testing.assert_close(model.encoder(x), torch.cat([model.encoder(xi[None]) for xi in x]))


def test_outputs_up_to_frame_t_ignore_later_frames():
    model = small().eval()
    x = video(T=4)
    with torch.no_grad():
        base = fields(model(x))
        for t in range(3):
            changed = x.clone()
            changed[:, t + 1 :] = torch.rand_like(changed[:, t + 1 :])
            other = fields(model(changed))
            for name in base:
                assert torch.equal(base[name][:, : t + 1], other[name][:, : t + 1]), (t, name)
            # the change is visible from frame t + 1 on, so the comparison above can fail
            assert not torch.equal(base["attn_masks"][:, t + 1], other["attn_masks"][:, t + 1])
            assert not torch.equal(base["mu"][:, t + 1], other["mu"][:, t + 1])


def test_a_prefix_of_the_video_gives_the_same_outputs():
    model = small().eval()
    x = video(T=4)
    with torch.no_grad():
        whole = fields(model(x))
        prefix = fields(model(x[:, :2]))
    for name in prefix:
        torch.testing.assert_close(prefix[name], whole[name][:, :2], msg=name)


@pytest.mark.parametrize("name", ["attn_log_masks", "mu", "next_mask_logits", "pred"])
def test_gradients_reach_the_past_and_never_the_future(name):
    model = small(use_mean=True)
    x = video(B=1, T=4).requires_grad_()
    out = getattr(model(x), name)
    t = 2
    weights = torch.randn(out[:, t].shape, generator=torch.Generator().manual_seed(3))
    (out[:, t] * weights).sum().backward()
    assert x.grad is not None
    assert torch.equal(x.grad[:, t + 1 :], torch.zeros_like(x.grad[:, t + 1 :]))
    # the past does reach frame t: through the mask network's per-slot attention
    # (attn_log_masks) and through the latent attention (mu and what decodes it)
    for past in range(t + 1):
        assert x.grad[:, past].abs().sum() > 0, past


def test_the_latent_attention_mixes_slots():
    model = small(use_mean=True)
    x = video(B=1, T=2)
    features = model._encode(x, model.attention(x)).detach().requires_grad_()  # (1, T, K, 2D)
    mu = model.latent(features)[..., :4]  # (1, T, K, D)
    mu[0, 1, 0].sum().backward()
    assert features.grad is not None
    assert torch.all(features.grad[0].abs().sum(dim=-1) > 0)  # every slot of frames 0 and 1


def test_vimon_losses_train_every_parameter():
    model = small()
    x = video(T=4)
    out = model(x[:, :-1])
    losses = vimon_losses(out, x)
    for term in ["recon", "pred", "curr_mask", "next_mask", "kl"]:
        assert torch.isfinite(getattr(losses, term)), term
    assert torch.isfinite(losses.total())
    losses.total().backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, pname


def test_capture_shows_causal_slot_frame_attention():
    model = small().eval()
    x = video(B=2, T=3)
    with torch.no_grad():
        plain = model(x)
        with capture(model) as rec:
            out = model(x)
    T, H = 3, SMALL["num_heads"]
    torch.testing.assert_close(out.mu, plain.mu, rtol=0, atol=0)  # capture does not change outputs
    for layer in range(SMALL["num_layers"]):
        weights = rec[f"latent.blocks.{layer}.attn"]
        assert weights.shape == (2, H, T * K, T * K)
        blocks = weights.view(2, H, T, K, T, K)  # (B, H, query frame, query slot, key frame, key slot)
        torch.testing.assert_close(weights.sum(dim=-1), torch.ones(2, H, T * K))
        for tq in range(T):
            for tk in range(T):
                block = blocks[:, :, tq, :, tk, :]
                if tk > tq:
                    assert torch.equal(block, torch.zeros_like(block)), (tq, tk)
                else:
                    assert torch.all(block > 0), (tq, tk)  # every slot of every past frame
    for k in range(K - 1):
        weights = rec[f"attention.temporal.{k}.attn"]
        assert weights.shape == (2, SMALL["mask_num_heads"], T, T)
        upper = torch.ones(T, T, dtype=torch.bool).triu(1)
        assert torch.equal(weights[..., upper], torch.zeros_like(weights[..., upper]))
        assert torch.all(weights[..., ~upper] > 0)
    masks = rec["attention"]  # the mask network's masks, (B*T, K, H, W)
    torch.testing.assert_close(masks, out.attn_masks.flatten(0, 1).squeeze(2))


def test_differentiable_capture_keeps_the_outputs():
    model = small(use_mean=True)
    x = video(B=1, T=3)
    plain = model(x)
    with capture(model, differentiable=True) as rec:
        out = model(x)
    torch.testing.assert_close(out.recon, plain.recon)
    recorded = [rec["latent.blocks.0.attn"], rec["attention.temporal.0.attn"], rec["attention"]]
    grads = torch.autograd.grad(out.recon.sum(), recorded)
    for grad in grads:
        assert torch.isfinite(grad).all() and grad.abs().sum() > 0


def test_use_mean_is_deterministic_eval_takes_the_mean_and_sampling_is_not():
    x = video(T=3)
    model = small(use_mean=True).train()
    first, second = model(x), model(x)
    assert torch.equal(first.recon, second.recon) and torch.equal(first.z, first.mu)
    sampling = small().train()
    assert not torch.equal(sampling(x).z, sampling(x).z)
    sampling.eval()
    with torch.no_grad():
        a, b = fields(sampling(x)), fields(sampling(x))
    assert torch.equal(a["z"], a["mu"])
    for name in a:
        assert torch.equal(a[name], b[name]), name


def test_clips_are_independent():
    model = small().eval()
    x = video(B=2, T=3)
    with torch.no_grad():
        both, alone = model(x), model(x[1:])
    torch.testing.assert_close(alone.recon[0], both.recon[1])
    torch.testing.assert_close(alone.mu[0], both.mu[1])


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        (torch.rand(2, 3, 16, 16), "must be"),  # no time axis
        (torch.rand(2, 3, 3, 16, 12), "must be"),
        (torch.rand(2, 3, 1, 16, 16), "must be"),
        ((torch.rand(2, 3, 3, 16, 16) * 255).to(torch.uint8), "float"),
        (torch.rand(2, 3, 3, 16, 16) * 2, r"\[0, 1\]"),
        (torch.rand(2, 3, 3, 16, 16) - 0.5, r"\[0, 1\]"),
        (torch.full((2, 3, 3, 16, 16), float("nan")), "NaN"),
        (torch.rand(2, 0, 3, 16, 16), "at least one"),
    ],
)
def test_input_validation(bad, match):
    with pytest.raises(InputError, match=match):
        small()(bad)


@pytest.mark.parametrize(
    ("override", "match"),
    [
        (dict(attn_dim=10), "attn_dim=10"),  # not divisible by 4
        (dict(num_heads=3), "num_heads=3"),
        (dict(mask_attn_dim=9, mask_num_heads=3), "mask_attn_dim=9"),
        (dict(num_layers=0), "num_layers"),
        (dict(num_slots=0), "num_slots"),
        (dict(num_heads=0), "num_heads must be"),
    ],
)
def test_config_validation(override, match):
    with pytest.raises(ConfigError, match=match):
        AttnViMON(AttnViMONConfig(**{**SMALL, **override}))
