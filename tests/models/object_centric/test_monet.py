"""MONet and ViMON on small configurations, and the layers they share.

The official-weight comparison of ViMON is in test_vimon_reference.py.
"""

import dataclasses

import pytest
import torch

from attnlab.errors import InputError
from attnlab.explain.capture import capture
from attnlab.layers._chunking import CPU_CHUNK
from attnlab.layers.broadcast_decoder import BroadcastDecoder, coordinate_grid, fourier_grid
from attnlab.layers.component_vae import ComponentEncoder
from attnlab.layers.unet_attention import StickBreakingAttention, UNet
from attnlab.models.object_centric.monet import MONet, MONetConfig
from attnlab.models.object_centric.vimon import ViMON, ViMONConfig
from tests.models.object_centric import SMALL_SLOT_VAE

SMALL = SMALL_SLOT_VAE


pytestmark = pytest.mark.usefixtures("one_thread")  # small models: threads only add overhead


def small(kind: str, use_mean: bool = False) -> MONet | ViMON:
    if kind == "monet":
        return MONet(MONetConfig(**SMALL, use_mean=use_mean))
    return ViMON(ViMONConfig(**SMALL, gru_dim=8, use_mean=use_mean))


def video(B: int = 2, T: int = 3, size: int = 16) -> torch.Tensor:
    return torch.rand(B, T, 3, size, size)


def tensors(out: object) -> dict[str, torch.Tensor]:
    """The output's tensors (fields the model leaves None are left out)."""
    return {f.name: v for f in dataclasses.fields(out) if (v := getattr(out, f.name)) is not None}


MASKS = {"monet": ["masks", "attn_masks"], "vimon": ["masks", "next_masks", "attn_masks"]}


@pytest.mark.parametrize("kind", ["monet", "vimon"])
def test_shapes_and_masks_sum_to_one(kind):
    out = small(kind)(video())
    K = SMALL["num_slots"]
    for name in MASKS[kind]:
        masks = getattr(out, name)
        assert masks.shape == (2, 3, K, 1, 16, 16), name
        torch.testing.assert_close(masks.sum(dim=2), torch.ones(2, 3, 1, 16, 16))
    assert out.recon.shape == out.recon_attn.shape == (2, 3, 3, 16, 16)
    assert out.mu.shape == out.logvar.shape == out.z.shape == (2, 3, K, 4)
    for name, value in tensors(out).items():
        assert torch.isfinite(value).all(), name


@pytest.mark.parametrize("kind", ["monet", "vimon"])
def test_every_parameter_gets_a_gradient(kind):
    model = small(kind)
    out = model(video())
    loss = sum(v.square().mean() for v in tensors(out).values())
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


@pytest.mark.parametrize("kind", ["monet", "vimon"])
def test_use_mean_is_deterministic_and_sampling_is_not(kind):
    x = video()
    model = small(kind, use_mean=True).train()
    first, second = model(x), model(x)
    assert torch.equal(first.recon, second.recon) and torch.equal(first.z, first.mu)
    sampling = small(kind).train()
    assert not torch.equal(sampling(x).z, sampling(x).z)
    sampling.eval()  # eval takes the mean
    assert torch.equal(sampling(x).z, sampling(x).mu)


@pytest.mark.parametrize("kind", ["monet", "vimon"])
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
def test_input_validation(kind, bad, match):
    with pytest.raises(InputError, match=match):
        small(kind)(bad)


def test_monet_frames_are_decomposed_independently():
    model = small("monet").eval()
    x = video(B=2, T=3)
    whole = model(x)
    for t in range(3):
        alone = model(x[:, t : t + 1])
        torch.testing.assert_close(alone.rgb[:, 0], whole.rgb[:, t])
        torch.testing.assert_close(alone.attn_masks[:, 0], whole.attn_masks[:, t])


def test_vimon_is_causal_so_training_on_the_first_frames_matches():
    model = small("vimon").eval()
    x = video(B=2, T=4)
    whole, prefix = model(x), model(x[:, :3])
    for name in ["rgb", "next_mask_logits", "attn_log_masks", "mu"]:
        torch.testing.assert_close(getattr(prefix, name), getattr(whole, name)[:, :3])


def test_vimon_attention_reads_the_masks_predicted_by_the_previous_frame():
    model = small("vimon").eval()
    calls = []
    handle = model.attention.unet.register_forward_pre_hook(lambda _m, args: calls.append(args[0]))
    with torch.no_grad():
        out = model(video(B=1, T=2))
    handle.remove()
    K = SMALL["num_slots"]
    assert len(calls) == 2 * (K - 1)
    assert torch.equal(calls[0][:, 4], torch.zeros(1, 16, 16))  # frame 0: no prediction yet
    predicted = out.next_mask_logits[:, 0].log_softmax(dim=1)  # (1, K, 1, H, W)
    for k in range(K - 1):
        torch.testing.assert_close(calls[K - 1 + k][:, 4:], predicted[:, k])


def test_vimon_batched_slots_equal_one_slot_at_a_time():
    """The batched encoder/GRU/decoder against the reference's per-slot loop, in float64."""
    model = small("vimon").double().eval()
    x = video(B=2, T=3).double()
    out = model(x)
    B, K = 2, SMALL["num_slots"]
    hidden = [torch.zeros(B, 8, dtype=torch.float64) for _ in range(K)]
    prev = torch.zeros(B, K, 1, 16, 16, dtype=torch.float64)
    for t in range(3):
        log_masks = model.attention(x[:, t], extra=prev)
        logits = []
        for k in range(K):
            feature = model.encoder(torch.cat([x[:, t], log_masks[:, k]], dim=1))
            hidden[k] = model.gru(feature / 5, hidden[k])
            mu = model.posterior(hidden[k] * 5)[:, :4]
            curr = model.decoder.forward_tiled(mu)
            nxt = model.decoder.forward_tiled(model.transition(mu))
            torch.testing.assert_close(out.rgb[:, t, k], curr[:, :3])
            torch.testing.assert_close(out.next_mask_logits[:, t, k], nxt[:, 3:])
            logits.append(nxt[:, 3:])
        prev = torch.stack(logits, dim=1).log_softmax(dim=1)


def test_stick_breaking_scopes():
    layer = StickBreakingAttention(num_slots=4, image_size=8, channels=4, num_blocks=2, mlp_hidden=8).double()
    inputs, alphas = [], []

    def keep(_module, args, out):
        inputs.append(args[0])
        alphas.append(out)

    layer.unet.register_forward_hook(keep)
    log_masks = layer(torch.rand(2, 3, 8, 8, dtype=torch.float64))
    assert len(alphas) == 3 and log_masks.shape == (2, 4, 1, 8, 8)
    sig = [torch.sigmoid(a) for a in alphas]
    scope = torch.ones_like(sig[0])
    for k in range(3):
        torch.testing.assert_close(inputs[k][:, 3:4].exp(), scope)  # the scope fed to slot k
        torch.testing.assert_close(log_masks[:, k].exp(), scope * sig[k])
        scope = scope * (1 - sig[k])
    torch.testing.assert_close(log_masks[:, 3].exp(), scope)  # the last slot takes the rest


def test_attention_capture_records_the_masks():
    model = small("monet").eval()
    x = video(B=1, T=2)
    plain = model(x)
    with capture(model) as rec:
        recorded = model(x)
    torch.testing.assert_close(rec["attention"], plain.attn_masks.flatten(0, 1).squeeze(2))
    assert torch.equal(recorded.attn_log_masks, plain.attn_log_masks)
    with capture(model, differentiable=True) as rec:
        out = model(x)
    torch.testing.assert_close(out.attn_log_masks, plain.attn_log_masks)
    (grad,) = torch.autograd.grad(out.recon_attn.sum(), rec["attention"])
    assert grad.abs().sum() > 0


def test_broadcast_decoder_shortcut_equals_tiling():
    decoder = BroadcastDecoder(5, out_chans=4, image_size=(12, 10), channels=6, num_layers=3).double()
    z = torch.randn(7, 5, dtype=torch.float64)
    out = decoder(z)
    assert out.shape == (7, 4, 12, 10)
    torch.testing.assert_close(out, decoder.forward_tiled(z), rtol=1e-12, atol=1e-12)


def test_broadcast_decoder_in_cpu_chunks_equals_tiling():
    decoder = BroadcastDecoder(5, out_chans=4, image_size=(12, 10), channels=6, num_layers=3).double()
    z = torch.randn(2 * CPU_CHUNK + 6, 5, dtype=torch.float64)  # three chunks, the last one short
    torch.testing.assert_close(decoder(z), decoder.forward_tiled(z), rtol=1e-12, atol=1e-12)


def test_broadcast_decoder_with_fourier_bands_equals_tiling():
    decoder = BroadcastDecoder(5, image_size=(12, 10), channels=6, num_layers=2, fourier_bands=3).double()
    assert decoder.convs[0].in_channels == 5 + 2 + 4 * 3
    z = torch.randn(4, 5, dtype=torch.float64)
    torch.testing.assert_close(decoder(z), decoder.forward_tiled(z), rtol=1e-12, atol=1e-12)


def test_fourier_grid_by_hand():
    grid = fourier_grid(3, 2, 2)  # rows at -1, 0, 1; columns at -1, 1
    assert grid.shape == (2 + 4 * 2, 3, 2)
    torch.testing.assert_close(grid[:2], coordinate_grid(3, 2))
    # channels 2..5: sin of (pi rows, pi cols, 2 pi rows, 2 pi cols); 6..9 the cosines
    torch.testing.assert_close(grid[2:6], torch.zeros(4, 3, 2), atol=1e-6, rtol=0)
    torch.testing.assert_close(grid[6, :, 0], torch.tensor([-1.0, 1.0, -1.0]))  # cos(pi * row)
    torch.testing.assert_close(grid[7, 0], torch.tensor([-1.0, -1.0]))  # cos(pi * col), col = -1 and 1
    torch.testing.assert_close(grid[8:], torch.ones(2, 3, 2))  # cos(2 pi k) = 1
    with pytest.raises(InputError, match="fourier_bands"):
        BroadcastDecoder(4, image_size=8, fourier_bands=-1)


def test_coordinate_grid_first_channel_varies_along_rows():
    grid = coordinate_grid(3, 5)
    assert grid[0, :, 0].tolist() == [-1.0, 0.0, 1.0] and torch.equal(grid[0, :, 0:1].expand(3, 5), grid[0])
    assert grid[1, 0].tolist() == [-1.0, -0.5, 0.0, 0.5, 1.0] and torch.equal(
        grid[1, 0:1].expand(3, 5), grid[1]
    )


def test_layer_input_errors():
    with pytest.raises(InputError, match="divisible"):
        UNet(4, image_size=20, num_blocks=4)
    layer = StickBreakingAttention(num_slots=2, extra_chans=1, image_size=8, num_blocks=2, channels=4)
    with pytest.raises(InputError, match="extra must be"):
        layer(torch.rand(1, 3, 8, 8))
    with pytest.raises(InputError, match="image must be"):
        layer(torch.rand(1, 3, 9, 9), extra=torch.zeros(1, 2, 1, 9, 9))
    with pytest.raises(InputError, match="encoder input"):
        ComponentEncoder(image_size=16)(torch.rand(1, 4, 8, 8))
    with pytest.raises(InputError, match="z must be"):
        BroadcastDecoder(4, image_size=8)(torch.rand(2, 5))
