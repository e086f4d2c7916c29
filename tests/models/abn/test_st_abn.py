import pytest
import torch

from attnlab.errors import InputError
from attnlab.explain import capture
from attnlab.models import create_model


def tiny(**overrides):
    return create_model("st-abn-r3d-tiny", num_frames=6, **overrides).eval()


def video(b: int = 2, t: int = 6) -> torch.Tensor:
    return torch.rand(b, 3, t, 32, 32)


def test_maps_are_per_frame_at_stage_three_resolution():
    out = tiny()(video())
    assert out.logits.shape == out.att_logits.shape == (2, 9)
    assert out.temporal.shape == (2, 6)
    assert out.spatial.shape == (2, 6, 4, 4)  # 32 -> 16 (stem) -> 8 -> 4, time untouched
    assert ((out.spatial > 0) & (out.spatial < 1)).all() and ((out.temporal > 0) & (out.temporal < 1)).all()


@pytest.mark.parametrize("which", ["spatial", "temporal"])
def test_inverting_a_half_map_changes_nothing_and_a_real_map_changes_the_prediction(which: str):
    model, x = tiny(), video()
    kwargs = {f"invert_{which}": True}
    plain, inverted = model(x), model(x, **kwargs)
    assert not torch.allclose(plain.logits, inverted.logits)
    torch.testing.assert_close(plain.att_logits, inverted.att_logits)  # the branch itself is untouched
    torch.testing.assert_close(
        getattr(plain, which), getattr(inverted, which)
    )  # maps reported before inversion
    with torch.no_grad():  # make the map exactly 0.5 everywhere: 1 - M = M
        if which == "spatial":
            model.branch.spatial.norm.weight.zero_()
            model.branch.spatial.norm.bias.zero_()
        else:
            model.branch.temporal.fc[2].weight.zero_()
            model.branch.temporal.fc[2].bias.zero_()
    torch.testing.assert_close(model(x).logits, model(x, **kwargs).logits)


def test_attention_is_capturable_by_name():
    model = tiny()
    with capture(model) as rec:
        model(video())
    assert set(rec) == {"branch.spatial", "branch.temporal"}


def test_baseline_and_input_errors():
    r3d = create_model("r3d-tiny").eval()
    assert r3d(video(t=5)).logits.shape == (2, 9)
    with pytest.raises(InputError, match="built for 6 frames"):
        tiny()(video(t=5))
    with pytest.raises(InputError, match="video must be"):
        tiny()(torch.rand(2, 6, 32, 32))
