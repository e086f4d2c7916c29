"""The GRU encoder-decoder: teacher forcing against a decoding loop written here from the papers'
equations (float64), padding, greedy decoding, local windows and one-line errors."""

from __future__ import annotations

import pytest
import torch

from attnlab.errors import InputError
from attnlab.explain.capture import capture
from attnlab.models import create_model
from attnlab.models.seq2seq.gru_attention import GRUSeq2Seq

BOS = 1


def batch(vocab: int = 23) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    source = torch.randint(3, vocab, (3, 6), generator=gen)
    mask = torch.zeros(3, 6, dtype=torch.bool)
    mask[1, 4:] = True  # 4 words
    mask[2, 2:] = True  # 2 words
    target = torch.randint(3, vocab, (3, 7), generator=gen)
    target_input = torch.cat([torch.full((3, 1), BOS), target[:, :-1]], 1)
    return {"source": source.masked_fill(mask, 0), "source_mask": mask, "target_input": target_input}


def gru_cell(x: torch.Tensor, h: torch.Tensor, cell: torch.nn.GRUCell) -> torch.Tensor:
    """PyTorch's GRU equations (r, z, n gates), written out."""
    gi = x @ cell.weight_ih.T + cell.bias_ih  # (B, 3H)
    gh = h @ cell.weight_hh.T + cell.bias_hh
    (ir, iz, inn), (hr, hz, hn) = gi.chunk(3, -1), gh.chunk(3, -1)
    r, z = torch.sigmoid(ir + hr), torch.sigmoid(iz + hz)
    n = torch.tanh(inn + r * hn)
    return (1 - z) * n + z * h


def softmax_masked(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return scores.masked_fill(mask, float("-inf")).softmax(-1)


def reference_logits(model: GRUSeq2Seq, source, source_mask, target_input) -> torch.Tensor:  # type: ignore[no-untyped-def]
    """Decoding loop from Bahdanau et al. (2015) / Luong et al. (2015, general score, input feeding)."""
    annotations, s = model.encoder(source, source_mask)  # (B, S, H), (B, H)
    feed = torch.zeros_like(s)
    out = []
    for t in range(target_input.shape[1]):
        e = model.embed.weight[target_input[:, t]]  # (B, E)
        kind = model.config.attention
        if kind == "none":
            s = gru_cell(e, s, model.cell)
            out.append(model.out(s))
            continue
        att, combine = model.attention, model.combine
        if kind == "bahdanau":  # e_j = v^T tanh(W_q s_{t-1} + W_k h_j + b), from the previous state
            query = s @ att.q_proj.weight.T  # (B, A)
            keys = annotations @ att.k_proj.weight.T + att.k_proj.bias  # (B, S, A)
            hidden = torch.tanh(query[:, None, :] + keys)  # (B, S, A)
            scores = (hidden @ att.score.weight.T).squeeze(-1)  # (B, S)
            a = softmax_masked(scores, source_mask)
            c = (a[:, :, None] * annotations).sum(1)
            s = gru_cell(torch.cat([e, c], -1), s, model.cell)
            feed = torch.tanh(torch.cat([s, c, e], -1) @ combine.weight.T + combine.bias)
        else:  # Luong: s_t first, then score(s_t, h_j) = s_t^T W_a h_j
            s = gru_cell(torch.cat([e, feed], -1), s, model.cell)
            scores = torch.einsum("bh,bsh->bs", s, annotations @ att.w_a.weight.T)
            a = softmax_masked(scores, source_mask)
            c = (a[:, :, None] * annotations).sum(1)
            feed = torch.tanh(torch.cat([c, s], -1) @ combine.weight.T + combine.bias)
        out.append(feed @ model.out.weight.T + model.out.bias)
    return torch.stack(out, 1)


@pytest.mark.parametrize("name", ["seq2seq-none", "seq2seq-bahdanau", "seq2seq-luong"])
def test_teacher_forcing_equals_the_papers_decoding_loop(name: str):
    torch.manual_seed(0)
    model = create_model(name).double().eval()
    x = batch()
    with torch.no_grad():
        got = model(**x).logits
        want = reference_logits(model, **x)
    assert got.shape == (3, 7, 23)
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("name", ["seq2seq-none", "seq2seq-bahdanau", "seq2seq-luong", "seq2seq-luong-local"])
def test_padding_changes_nothing_and_gets_no_attention(name: str):
    torch.manual_seed(0)
    model = create_model(name).double().eval()
    x = batch()
    other = dict(x, source=x["source"].masked_fill(x["source_mask"], 7))  # other ids under the padding
    with torch.no_grad():
        full = model(**x).logits
        torch.testing.assert_close(model(**other).logits, full, rtol=0, atol=0)
        # the padded sequence alone, unpadded, in a batch of one: the same logits
        alone = model(x["source"][2:, :2], x["source_mask"][2:, :2], x["target_input"][2:]).logits
    torch.testing.assert_close(alone, full[2:], rtol=1e-10, atol=1e-10)
    if name != "seq2seq-none":
        with torch.no_grad(), capture(model) as rec:
            model(**x)
        weights = torch.cat(rec.calls("attention"), 1)  # (B, T, S)
        assert weights.shape == (3, 7, 6)
        assert weights[1, :, 4:].eq(0).all() and weights[2, :, 2:].eq(0).all()


def test_local_p_weights_vanish_outside_the_window_around_the_predicted_position():
    torch.manual_seed(0)
    model = create_model("seq2seq-luong-local", half_width=1).eval()
    x = batch()
    with torch.no_grad(), capture(model) as rec:
        model(**x)
    for t, w in enumerate(rec.calls("attention")):  # (B, 1, S) per step
        p = model.attention.positions if t == 6 else None  # positions hold the last step's p_t
        assert w.shape == (3, 1, 6)
        if p is not None:
            lengths = (~x["source_mask"]).sum(1)
            assert ((p[:, 0] >= 0) & (p[:, 0] <= lengths)).all()  # p_t = S sigmoid(.) in [0, S]
            far = (torch.arange(6)[None] - p).abs() > 1  # (B, S)
            assert w[:, 0][far].eq(0).all()


@pytest.mark.parametrize("name", ["seq2seq-none", "seq2seq-bahdanau", "seq2seq-luong-local"])
def test_greedy_decoding_feeds_back_its_own_argmax(name: str):
    torch.manual_seed(1)
    model = create_model(name).eval()
    x = batch()
    tokens = model.generate(x["source"], x["source_mask"], 7)
    fed = torch.cat([torch.full((3, 1), BOS), tokens[:, :-1]], 1)
    with torch.no_grad():
        assert torch.equal(model(x["source"], x["source_mask"], fed).logits.argmax(-1), tokens)


def test_bad_input_is_one_line():
    model = create_model("seq2seq-luong")
    x = batch()
    with pytest.raises(InputError, match="all padding"):
        model(x["source"], x["source_mask"] | True, x["target_input"])
    with pytest.raises(InputError, match=r"token ids must be in \[0, 23\)"):
        model(x["source"] + 30, x["source_mask"], x["target_input"])
    with pytest.raises(InputError, match="source_mask must be bool"):
        model(x["source"], x["source_mask"].long(), x["target_input"])
    with pytest.raises(InputError, match="target_input must be long"):
        model(x["source"], x["source_mask"], x["target_input"][:2])


@pytest.mark.parametrize(
    ("score", "window"), [("dot", "global"), ("concat", "global"), ("general", "local-m")]
)
def test_every_luong_score_and_window_decodes(score: str, window: str):
    model = create_model("seq2seq-luong", score=score, window=window).eval()
    x = batch()
    with torch.no_grad(), capture(model) as rec:
        logits = model(**x).logits
    weights = torch.cat(rec.calls("attention"), 1)  # (B, T, S)
    assert logits.shape == (3, 7, 23) and torch.isfinite(logits).all()
    assert weights[2, :, 2:].eq(0).all()  # padding
    if window == "local-m":  # p_t = t, D = 3: step 0 reads source 0-3 only
        assert weights[0, 0, 4:].eq(0).all() and weights[0, 0, :4].gt(0).all()
