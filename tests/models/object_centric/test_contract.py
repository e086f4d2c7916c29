"""Every registered object-centric model keeps one output contract (ObjectCentricOutput)."""

import dataclasses

import pytest
import torch

from attnlab.errors import ConfigError
from attnlab.models import create_model, list_models, model_entry
from attnlab.models.outputs import ObjectCentricModel, ObjectCentricOutput
from attnlab.objectives.families import OBJECTIVES, objective
from attnlab.objectives.object_centric import vimon_losses
from attnlab.objectives.terms import weighted_sum
from tests.models.object_centric import SMALL_SLOT_VAE

pytestmark = pytest.mark.usefixtures("one_thread")

OBJECT_CENTRIC = [n for n in list_models() if issubclass(model_entry(n).cls, ObjectCentricModel)]
# Small sizes; each model takes the ones its config has.
SMALL = SMALL_SLOT_VAE | dict(
    gru_dim=8,
    attn_dim=16,
    mask_attn_dim=16,
    num_heads=2,
    mask_num_heads=2,
    dim=16,
)
PREDICTS = {"vimon": True, "monet": False, "sfa": True}  # the objective's model predicts frame t + 1
MASK_NETWORK = {"vimon": True, "monet": True, "sfa": False}


def small(name: str, **overrides: str) -> ObjectCentricModel:
    fields = {f.name for f in dataclasses.fields(model_entry(name).config)}
    model = create_model(name, **{k: v for k, v in SMALL.items() if k in fields}, **overrides)
    assert isinstance(model, ObjectCentricModel)
    return model


def test_every_object_centric_family_is_registered():
    classes = {model_entry(n).cls.__name__ for n in OBJECT_CENTRIC}
    assert classes == {"MONet", "ViMON", "AttnViMON", "SFA"}
    assert {model_entry(n).cls.objective for n in OBJECT_CENTRIC} == set(OBJECTIVES)


@pytest.mark.parametrize("name", OBJECT_CENTRIC)
def test_output_contract(name):
    model = small(name).eval()
    B, T, K, D, S = 2, 3, 3, 4, 16
    with torch.no_grad():
        out = model(torch.rand(B, T, 3, S, S))
    assert type(out) is ObjectCentricOutput
    shapes = {
        "masks": (B, T, K, 1, S, S),
        "recon": (B, T, 3, S, S),
        "rgb": (B, T, K, 3, S, S),
        "mask_logits": (B, T, K, 1, S, S),
        "mu": (B, T, K, D),
        "logvar": (B, T, K, D),
        "z": (B, T, K, D),
    }
    kind = type(model).objective
    if PREDICTS[kind]:
        shapes |= {
            "pred": (B, T, 3, S, S),
            "next_masks": (B, T, K, 1, S, S),
            "next_rgb": (B, T, K, 3, S, S),
            "next_mask_logits": (B, T, K, 1, S, S),
            "z_pred": (B, T, K, D),
        }
    if MASK_NETWORK[kind]:
        shapes |= {
            "attn_masks": (B, T, K, 1, S, S),
            "attn_log_masks": (B, T, K, 1, S, S),
            "recon_attn": (B, T, 3, S, S),
        }
    if kind == "sfa":
        shapes["slots"] = (B, T, K, SMALL["dim"])
    for field in dataclasses.fields(out):
        value = getattr(out, field.name)
        if field.name in shapes:
            assert value is not None and tuple(value.shape) == shapes[field.name], field.name
            assert torch.isfinite(value).all(), field.name
        else:
            assert value is None, f"{name} fills {field.name}, which its kind does not have"
    # the same name means the same thing in every model
    torch.testing.assert_close(out.masks, out.mask_logits.softmax(dim=2))
    torch.testing.assert_close(out.recon, (out.masks * out.rgb).sum(dim=2))
    torch.testing.assert_close(out.z, out.mu)  # eval: the posterior mean
    if out.pred is not None:
        torch.testing.assert_close(out.pred, (out.next_masks * out.next_rgb).sum(dim=2))
    if out.attn_masks is not None:
        torch.testing.assert_close(out.recon_attn, (out.attn_masks * out.rgb).sum(dim=2))
        torch.testing.assert_close(out.attn_masks, out.attn_log_masks.exp())


@pytest.mark.parametrize("name", OBJECT_CENTRIC)
def test_objective_trains_from_the_contract(name):
    """The model's objective reads only contract fields: its terms are finite and reach every parameter
    the loss should train."""
    model = small(name).train()
    goal = objective(type(model).objective)
    video = torch.rand(2, 4, 3, 16, 16)
    out = model(video[:, :-1] if goal.drop_last else video)
    terms = goal.terms(out, video, beta=goal.beta, gamma=goal.gamma, sigmas=(0.09, 0.11))
    assert set(terms) == {"recon", "kl"} | ({"pred"} if goal.drop_last else set()) | (
        {"mask"} if goal.gamma is not None else set()
    )
    weighted_sum(terms).backward()
    assert all(torch.isfinite(t) for t in terms.values())
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert missing == []
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_first_frames_slices_every_tensor_and_keeps_none():
    out = small("monet").eval()(torch.rand(1, 3, 3, 16, 16))
    first = out.first_frames(2)
    assert first.pred is None and first.masks.shape[1] == 2 and first.recon_attn.shape[1] == 2
    torch.testing.assert_close(first.mu, out.mu[:, :2])


@pytest.mark.parametrize("name", ["vimon", "attn-vimon"])
def test_attention_masks_mix_the_reconstruction_and_leave_the_rest(name):
    """masks="attention" (ViMON, AttnViMON): the reconstruction is mixed by the attention
    network's masks, as MONet's; every other output is the decoder-mask model's, same weights."""
    torch.manual_seed(0)
    model = small(name, masks="attention").eval()
    plain = small(name).eval()
    plain.load_state_dict(model.state_dict())
    clip = torch.rand(2, 4, 3, 16, 16)
    with torch.no_grad():
        out, ref = model(clip), plain(clip)
    attention = ref.attn_log_masks.exp()  # (B, T, K, 1, H, W)
    torch.testing.assert_close(out.masks, attention)
    torch.testing.assert_close(out.recon, (attention * ref.rgb).sum(2))
    for field in ("rgb", "next_masks", "next_rgb", "pred", "mu", "attn_log_masks"):
        torch.testing.assert_close(getattr(out, field), getattr(ref, field), msg=field)
    assert not torch.allclose(out.masks, ref.masks)
    # the reconstruction's mask term compares the attention with itself; the next frame's still fits
    losses = vimon_losses(out.first_frames(3), clip, min_likelihood=0.0)
    assert losses.curr_mask.abs() < 1e-6 < losses.next_mask


@pytest.mark.parametrize("name", ["vimon", "attn-vimon", "sfa"])
def test_an_unknown_mask_source_is_a_config_error(name):
    with pytest.raises(ConfigError, match="masks must be 'decoder' or 'attention'"):
        small(name, masks="slots")
