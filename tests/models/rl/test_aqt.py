"""aqt-atari against the official AQT's forward golden (shared/reference/aqt): outputs and the
head-averaged encoder / decoder attention maps captured through attnlab.explain.capture."""

from pathlib import Path

import pytest
import torch

from attnlab.errors import InputError
from attnlab.explain.capture import capture
from attnlab.models import create_model
from attnlab.models.rl.aqt import OFFICIAL_KEYS, ActionQTransformer, AQTConfig
from attnlab.runs.convert import rename_keys
from attnlab.runs.official import load_official_aqt, split_in_proj

REFERENCE = Path(__file__).resolve().parents[4] / "shared" / "reference" / "aqt"
GOLDEN = REFERENCE / "aqt_small_golden.pt"
ENC, DEC = "encoder.layers.0.self_attn", "decoder.layers.0.cross_attn"


@pytest.fixture(scope="module")
def golden() -> dict:
    if not GOLDEN.is_file():
        pytest.skip(f"the AQT golden is not there: {GOLDEN}")
    return torch.load(GOLDEN, map_location="cpu", weights_only=True)


@pytest.fixture(scope="module")
def weights(golden: dict, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("aqt") / "official.pt"
    torch.save(golden["state_dict"], path)
    return path


def test_official_weights_reproduce_the_golden_outputs_and_attention(golden: dict, weights: Path):
    model = load_official_aqt(weights, AQTConfig(hidden_size=32))
    assert not model.training
    with torch.no_grad(), capture(model, layers=[ENC, DEC]) as rec:
        out = model(golden["input"])
    torch.testing.assert_close(out.value, golden["v"], rtol=0, atol=1e-5)
    torch.testing.assert_close(out.advantage, golden["adv"], rtol=0, atol=1e-5)
    torch.testing.assert_close(out.log_probs, golden["log_q_probs"], rtol=0, atol=1e-5)
    torch.testing.assert_close(out.probs, golden["q_probs"], rtol=0, atol=1e-6)
    torch.testing.assert_close(out.q_values, golden["q_values"], rtol=0, atol=1e-5)
    torch.testing.assert_close(model.support, golden["support"], rtol=0, atol=0)
    enc, dec = rec[ENC].mean(dim=1), rec[DEC].mean(dim=1)  # heads averaged, as the release's hooks
    assert enc.shape == (2, 49, 49) and dec.shape == (2, 6, 49)
    torch.testing.assert_close(enc, golden["enc_attn_last_layer"], rtol=0, atol=1e-6)
    torch.testing.assert_close(dec, golden["dec_cross_attn_last_layer"], rtol=0, atol=1e-6)
    # the release's 7x7 pictures: encoder = mean over queries, decoder = one map per action
    torch.testing.assert_close(enc.view(2, 49, 7, 7).mean(1), golden["encoder_map_7x7"], rtol=0, atol=1e-6)
    torch.testing.assert_close(dec.view(2, 6, 7, 7), golden["decoder_maps_7x7"], rtol=0, atol=1e-6)


def test_training_mode_uses_the_noise_buffers_of_the_checkpoint(golden: dict, weights: Path):
    model = load_official_aqt(weights, AQTConfig(hidden_size=32, dropout=0.0)).train()
    with torch.no_grad():
        noisy = model(golden["input"]).q_values
    assert not torch.allclose(noisy, golden["q_values"], atol=1e-4)  # sigma * epsilon is on


def test_official_keys_cover_the_full_size_release():
    """The default preset takes the release's A = 6, hidden 512 key list with the same shapes."""
    lines = (REFERENCE / "aqt_default_hidden512_A6_keys.txt").read_text().splitlines()
    if not lines:
        pytest.skip("no key list")
    shapes = {}
    for line in lines:
        key, _, shape = line.partition(" ")
        shapes[key] = tuple(int(n) for n in shape.strip("()").split(",") if n.strip())
    state = {k: torch.empty(s, device="meta") for k, s in shapes.items()}
    renamed, _ = rename_keys(split_in_proj(state), OFFICIAL_KEYS)
    ours = create_model("aqt-atari").state_dict()
    assert {k: tuple(v.shape) for k, v in renamed.items()} == {k: tuple(v.shape) for k, v in ours.items()}
    assert sum(p.numel() for p in create_model("aqt-atari").parameters()) == 10_588_268


def test_wrong_checkpoint_and_bad_obs_are_one_line(tmp_path: Path, golden: dict):
    path = tmp_path / "bad.pt"
    state = dict(golden["state_dict"])
    state.pop("row_embed")
    torch.save(state, path)
    with pytest.raises(InputError, match="row_embed") as err:
        load_official_aqt(path, AQTConfig(hidden_size=32))
    assert "\n" not in str(err.value)
    model = ActionQTransformer(AQTConfig(hidden_size=32))
    with pytest.raises(InputError, match=r"takes float \(B, 4, 84, 84\)"):
        model(torch.rand(2, 3, 84, 84))


def test_dueling_head_against_float64_maths():
    torch.manual_seed(0)
    model = ActionQTransformer(AQTConfig(hidden_size=16)).eval().double()
    out = model(torch.rand(3, 4, 84, 84, dtype=torch.float64))
    logits = out.value + out.advantage - out.advantage.mean(1, keepdim=True)
    probs = torch.exp(logits) / torch.exp(logits).sum(-1, keepdim=True)
    torch.testing.assert_close(out.probs, probs)
    torch.testing.assert_close(
        out.q_values, (probs * torch.linspace(-10, 10, 51, dtype=torch.float64)).sum(-1)
    )
