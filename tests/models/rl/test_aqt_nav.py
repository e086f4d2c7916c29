"""The navigation Q-networks: DETR post-norm layers against torch.nn's, patches and query branch by
hand, attention through capture, the simulator's palette, one-line errors."""

import pytest
import torch
from torch import nn

from attnlab.errors import InputError
from attnlab.explain.capture import capture
from attnlab.models import create_model
from attnlab.models.rl import nav_obs
from attnlab.models.rl.aqt_layers import PostNormDecoderLayer, PostNormEncoderLayer
from attnlab.rl import navigation


def copy_attention(ours: nn.Module, theirs: nn.MultiheadAttention) -> None:
    d = theirs.embed_dim
    with torch.no_grad():
        ours.q_proj.weight.copy_(theirs.in_proj_weight[:d])
        ours.q_proj.bias.copy_(theirs.in_proj_bias[:d])
        ours.kv_proj.weight.copy_(theirs.in_proj_weight[d:])
        ours.kv_proj.bias.copy_(theirs.in_proj_bias[d:])
        ours.proj.weight.copy_(theirs.out_proj.weight)
        ours.proj.bias.copy_(theirs.out_proj.bias)


def copy_ffn_norms(ours: nn.Module, theirs: nn.Module, norms: int) -> None:
    with torch.no_grad():
        ours.mlp.fc1.load_state_dict(theirs.linear1.state_dict())
        ours.mlp.fc2.load_state_dict(theirs.linear2.state_dict())
        for i in range(1, norms + 1):
            getattr(ours, f"norm{i}").load_state_dict(getattr(theirs, f"norm{i}").state_dict())
            getattr(ours, f"norm{i}").weight.normal_()  # not the identity, so the norms are checked


def test_post_norm_layers_equal_torch_transformer_layers_in_float64():
    torch.manual_seed(0)
    d, h, ffn = 16, 4, 24
    enc_ref = nn.TransformerEncoderLayer(d, h, ffn, dropout=0.0, batch_first=True).double().eval()
    dec_ref = nn.TransformerDecoderLayer(d, h, ffn, dropout=0.0, batch_first=True).double().eval()
    enc, dec = PostNormEncoderLayer(d, h, ffn, 0.0).double(), PostNormDecoderLayer(d, h, ffn, 0.0).double()
    copy_attention(enc.self_attn, enc_ref.self_attn)
    copy_ffn_norms(enc, enc_ref, 2)
    copy_attention(dec.self_attn, dec_ref.self_attn)
    copy_attention(dec.cross_attn, dec_ref.multihead_attn)
    copy_ffn_norms(dec, dec_ref, 3)
    enc_ref.norm1.load_state_dict(enc.norm1.state_dict())
    enc_ref.norm2.load_state_dict(enc.norm2.state_dict())
    for i in (1, 2, 3):
        getattr(dec_ref, f"norm{i}").load_state_dict(getattr(dec, f"norm{i}").state_dict())
    src, tgt = torch.randn(2, 9, d, dtype=torch.float64), torch.randn(2, 4, d, dtype=torch.float64)
    memory = enc(src)
    torch.testing.assert_close(memory, enc_ref(src), rtol=0, atol=1e-12)
    torch.testing.assert_close(dec(tgt, memory), dec_ref(tgt, memory), rtol=0, atol=1e-12)


def test_patches_are_the_12x12_grid_of_7x7_blocks_row_major():
    model = create_model("aqt-nav")
    image = torch.randn(2, 3, 84, 84)
    patches = model.patches(image)
    assert patches.shape == (2, 144, 147)
    for gy, gx in ((0, 0), (0, 11), (5, 7), (11, 3)):
        block = image[:, :, 7 * gy : 7 * gy + 7, 7 * gx : 7 * gx + 7].reshape(2, -1)
        torch.testing.assert_close(patches[:, 12 * gy + gx], block, rtol=0, atol=0)


def test_action_queries_are_a_linear_map_of_one_hot_and_goal():
    model = create_model("aqt-nav")
    goal = torch.randn(3, 3)
    w, b = model.query_branch.weight, model.query_branch.bias  # (dim, 4 + 3)
    queries = model.queries(goal)
    for a in range(4):
        torch.testing.assert_close(queries[:, a], w[:, a] + goal @ w[:, 4:].T + b)


def test_the_network_sees_the_simulators_colours_and_goal():
    assert tuple(tuple(int(v) for v in row) for row in navigation.PALETTE) == nav_obs.PALETTE
    env = navigation.make_navigation("attnlab/Nav-v0")
    obs, _ = env.reset(seed=0)
    image, goal = nav_obs.split_observation(
        torch.from_numpy(obs)[None], 84, nav_obs.palette_tensor(nav_obs.PALETTE), "test"
    )
    expected = torch.from_numpy(env.render()).permute(2, 0, 1).float() / 255
    torch.testing.assert_close(image[0], expected)
    torch.testing.assert_close(goal[0], torch.from_numpy(obs[-3:]))


@pytest.mark.parametrize("name", ["aqt-nav", "cnn_dqn-nav"])
def test_q_values_depend_on_the_goal_and_bad_shapes_are_one_line(name: str):
    model = create_model(name).eval()
    obs = model.example_inputs(2)["obs"]
    other = obs.clone()
    other[:, -3:] = torch.tensor([0.5, -1.0, 0.0])
    assert model(obs).q_values.shape == (2, 4)
    assert not torch.allclose(model(obs).q_values, model(other).q_values)
    with pytest.raises(InputError, match=r"takes float navigation observations \(B, 7059\)") as err:
        model(obs[:, :-1])
    assert "\n" not in str(err.value)


def test_capture_gives_the_encoder_and_each_action_querys_attention():
    model = create_model("aqt-nav").eval()
    with torch.no_grad(), capture(model) as rec:
        model(model.example_inputs(2)["obs"])
    assert rec["encoder.layers.0.self_attn"].shape == (2, 4, 144, 144)
    cross = rec["decoder.layers.0.cross_attn"]
    assert cross.shape == (2, 4, 4, 144)  # (B, heads, actions, patches)
    torch.testing.assert_close(cross.sum(-1), torch.ones(2, 4, 4))
