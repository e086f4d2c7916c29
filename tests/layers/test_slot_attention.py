"""SlotAttention and QueryObjectExtractor against float64 eager computations and symmetry properties."""

import math

import pytest
import torch

from attnlab.errors import InputError
from attnlab.explain import capture
from attnlab.layers.slot_attention import QueryObjectExtractor, SlotAttention, VideoSlotAttention

P = dict[str, torch.Tensor]


def params64(m: torch.nn.Module) -> P:
    return {k: v.double() for k, v in m.state_dict().items()}


def ln64(x: torch.Tensor, p: P, name: str) -> torch.Tensor:
    mean = x.mean(-1, keepdim=True)
    var = ((x - mean) ** 2).mean(-1, keepdim=True)
    return (x - mean) / torch.sqrt(var + 1e-5) * p[f"{name}.weight"] + p[f"{name}.bias"]


def gru64(x: torch.Tensor, h: torch.Tensor, p: P) -> torch.Tensor:
    """torch.nn.GRUCell's documented equations; weight rows are stacked [reset | update | new]."""
    w_ir, w_iz, w_in = p["gru.weight_ih"].chunk(3)
    w_hr, w_hz, w_hn = p["gru.weight_hh"].chunk(3)
    b_ir, b_iz, b_in = p["gru.bias_ih"].chunk(3)
    b_hr, b_hz, b_hn = p["gru.bias_hh"].chunk(3)
    r = torch.sigmoid(x @ w_ir.T + b_ir + h @ w_hr.T + b_hr)
    z = torch.sigmoid(x @ w_iz.T + b_iz + h @ w_hz.T + b_hz)
    n = torch.tanh(x @ w_in.T + b_in + r * (h @ w_hn.T + b_hn))
    return (1 - z) * n + z * h


def slot_attention64(
    m: SlotAttention,
    x: torch.Tensor,
    slots: torch.Tensor,
    iterations: int,
    positions: torch.Tensor | None = None,
    centres: torch.Tensor | None = None,
):
    """Algorithm 1 of the paper in float64, softmax over slots written out; with positions (N, P)
    and centres (B, K, P), minus position_weight times the squared distance in the logits and
    the centres moved to each slot's weighted mean position after every iteration."""
    p = params64(m)
    x, slots = x.double(), slots.double()
    xn = ln64(x, p, "norm_inputs")
    k, v = xn @ p["k_proj.weight"].T, xn @ p["v_proj.weight"].T
    attns = []
    for _ in range(iterations):
        q = ln64(slots, p, "norm_slots") @ p["q_proj.weight"].T
        logits = torch.einsum("bkd,bnd->bkn", q, k) / math.sqrt(m.dim)
        if positions is not None and centres is not None:
            diff = centres.double()[:, :, None, :] - positions.double()[None, None]  # (B, K, N, P)
            logits = logits - m.position_weight * (diff**2).sum(-1)
        e = torch.exp(logits - logits.amax(1, keepdim=True))
        attn = e / e.sum(1, keepdim=True)  # every input distributes one unit over the slots
        attns.append(attn)
        weights = (attn + 1e-8) / (attn + 1e-8).sum(2, keepdim=True)
        updates = torch.einsum("bkn,bnd->bkd", weights, v)
        if positions is not None:
            centres = torch.einsum("bkn,np->bkp", weights, positions.double())
        slots = gru64(updates, slots, p)
        hidden = torch.relu(ln64(slots, p, "norm_mlp") @ p["mlp.0.weight"].T + p["mlp.0.bias"])
        slots = slots + hidden @ p["mlp.2.weight"].T + p["mlp.2.bias"]
    return slots, attns


@pytest.mark.parametrize(("iterations", "kv_dim"), [(1, None), (3, 6)])
def test_slot_attention_equals_float64_reference(iterations: int, kv_dim: int | None):
    m = SlotAttention(8, num_slots=4, kv_dim=kv_dim, num_iterations=iterations)
    x = torch.randn(2, 10, kv_dim or 8)
    init = torch.randn(2, 4, 8)
    with capture(m) as rec:
        out = m(x, slots=init)
    expected, attns = slot_attention64(m, x, init, iterations)
    assert out.shape == (2, 4, 8)
    torch.testing.assert_close(out.double(), expected, atol=1e-5, rtol=1e-4)
    calls = rec.calls("")
    assert len(calls) == iterations
    for got, want in zip(calls, attns, strict=True):
        assert got.shape == (2, 4, 10)
        torch.testing.assert_close(got.sum(1), torch.ones(2, 10))  # normalised over slots
        torch.testing.assert_close(got.double(), want, atol=1e-6, rtol=1e-5)
    assert rec[""] is calls[-1]


@pytest.mark.parametrize("bilevel", [False, True])
def test_position_term_equals_float64_reference(bilevel: bool):
    m = SlotAttention(8, num_slots=3, num_iterations=3, position_weight=4.0, bilevel=bilevel)
    x, init = torch.randn(2, 9, 8), torch.randn(2, 3, 8)
    positions, centres = torch.rand(9, 2), torch.rand(2, 3, 2)
    with capture(m) as rec:
        out = m.with_attention(x, slots=init, positions=positions, centres=centres)[0]
    expected, attns = slot_attention64(m, x, init, 3, positions, centres)
    torch.testing.assert_close(out.double(), expected, atol=1e-5, rtol=1e-4)
    for got, want in zip(rec.calls(""), attns, strict=True):
        torch.testing.assert_close(got.double(), want, atol=1e-6, rtol=1e-5)


def test_position_term_gives_look_alike_inputs_to_the_nearest_slot():
    """Two groups of identical inputs at opposite corners and identical slots: without the term
    every input splits evenly; with it each group goes to the slot whose centre is near it."""
    m = SlotAttention(4, num_slots=2, num_iterations=1, position_weight=10.0)
    x = torch.randn(1, 1, 4).expand(1, 4, 4)  # four identical inputs
    positions = torch.tensor([[0.0, 0.0], [0.1, 0.0], [1.0, 1.0], [0.9, 1.0]])
    slots = torch.randn(1, 1, 4).expand(1, 2, 4).contiguous()  # two identical slots
    centres = torch.tensor([[[0.0, 0.0], [1.0, 1.0]]])
    attention = m.with_attention(x, slots=slots, positions=positions, centres=centres)[1]
    # logit difference between the slots for input (0.1, 0): 10 * (1.81 + 1 - 0.01) = 28 in favour of slot 0
    torch.testing.assert_close(attention[0, 0], torch.tensor([1.0, 1.0, 0.0, 0.0]), atol=1e-6, rtol=0)
    plain = SlotAttention(4, num_slots=2, num_iterations=1)
    plain.load_state_dict(m.state_dict())
    torch.testing.assert_close(plain.with_attention(x, slots=slots)[1], torch.full((1, 2, 4), 0.5))


def test_float64_module_matches_reference_tightly():
    m = SlotAttention(8, num_slots=3, num_iterations=2).double()
    x, init = torch.randn(2, 5, 8, dtype=torch.float64), torch.randn(2, 3, 8, dtype=torch.float64)
    expected, _ = slot_attention64(m, x, init, 2)
    torch.testing.assert_close(m(x, slots=init), expected, atol=1e-12, rtol=1e-10)


def test_equivariant_to_slot_permutation_and_invariant_to_token_permutation():
    m = SlotAttention(8, num_slots=5)
    x, init = torch.randn(2, 12, 8), torch.randn(2, 5, 8)
    with capture(m) as rec:
        out = m(x, slots=init)
    attn = rec[""]
    perm = torch.randperm(5)
    torch.testing.assert_close(m(x, slots=init[:, perm]), out[:, perm], atol=1e-5, rtol=1e-5)
    tokens = torch.randperm(12)
    with capture(m) as rec:
        torch.testing.assert_close(m(x[:, tokens], slots=init), out, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(rec[""], attn[..., tokens], atol=1e-6, rtol=1e-5)


def test_slot_initialisation_sampled_from_learned_gaussian_or_mean():
    m = SlotAttention(4, num_slots=2)
    with torch.no_grad():
        m.slots_mu.copy_(torch.tensor([1.0, -2.0, 0.0, 3.0]))
        m.slots_log_sigma.copy_(torch.log(torch.tensor([0.5, 1.0, 2.0, 0.1])))
    s = m.initial_slots(20000)
    assert s.shape == (20000, 2, 4)
    torch.testing.assert_close(s.mean((0, 1)), torch.tensor([1.0, -2.0, 0.0, 3.0]), atol=0.05, rtol=0)
    torch.testing.assert_close(s.std((0, 1)), torch.tensor([0.5, 1.0, 2.0, 0.1]), atol=0.05, rtol=0.05)
    mean = m.initial_slots(3, num_slots=6, deterministic=True)
    assert torch.equal(mean, torch.tensor([1.0, -2.0, 0.0, 3.0]).expand(3, 6, 4))


def test_deterministic_mode_is_reproducible_and_sampling_is_not():
    m = SlotAttention(8, num_slots=3)
    x = torch.randn(2, 6, 8)
    a, b = m(x, deterministic=True), m(x, deterministic=True)
    assert torch.equal(a, b)
    torch.testing.assert_close(a, m(x, slots=m.slots_mu.expand(2, 3, 8).detach()))
    assert not torch.allclose(m(x), m(x))


@pytest.mark.parametrize("bilevel", [False, True])
def test_with_attention_returns_the_slots_and_the_last_attention_with_its_gradient(bilevel: bool):
    m = SlotAttention(8, num_slots=4, num_iterations=3, bilevel=bilevel)
    x = torch.randn(2, 10, 8, requires_grad=True)
    init = torch.randn(2, 4, 8)
    slots, attention = m.with_attention(x, slots=init)
    expected, attns = slot_attention64(m, x.detach(), init, 3)
    torch.testing.assert_close(slots.double(), expected, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(attention.double(), attns[-1], atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(m(x, slots=init), slots)
    # a loss of the attention alone reaches the inputs (the masks are trained through it)
    (grad,) = torch.autograd.grad((attention[:, 0] * torch.randn(2, 10)).sum(), x)
    assert grad.abs().sum() > 0


@pytest.mark.parametrize("carry", [False, True])
def test_video_slot_attention_gives_each_frames_attention(carry: bool):
    m = VideoSlotAttention(8, num_slots=3, carry=carry).eval()
    x = torch.randn(2, 4, 10, 8)
    with capture(m) as rec:
        slots, attention = m.with_attention(x)
    assert slots.shape == (2, 4, 3, 8) and attention.shape == (2, 4, 3, 10)
    torch.testing.assert_close(m(x), slots)
    torch.testing.assert_close(attention.sum(2), torch.ones(2, 4, 10))
    calls = rec.calls("slot_attention")
    # with carry one call per frame (3 iterations each, (B, K, N)), else one for all (B*T, K, N)
    last = torch.stack([calls[3 * t + 2] for t in range(4)], dim=1) if carry else calls[-1].view(2, 4, 3, 10)
    torch.testing.assert_close(attention, last)


@pytest.mark.parametrize("carry", [False, True])
def test_video_slot_attention_position_term_uses_the_grid_and_the_learned_centres(carry: bool):
    m = VideoSlotAttention(8, num_slots=3, carry=carry, position_weight=5.0, grid=(2, 3)).eval()
    cells = torch.tensor([[y, x] for y in (0.25, 0.75) for x in (1 / 6, 0.5, 5 / 6)])
    torch.testing.assert_close(m.positions, cells)  # row-major cell centres, (y, x)
    x = torch.randn(2, 3, 6, 8)
    slots, attention = m.with_attention(x)
    sa, centres, init = m.slot_attention, m.centres.expand(2, -1, -1), m.initial_slots(2, x)
    for t in range(3):
        want_slots, want_attention = sa.with_attention(x[:, t], slots=init, positions=cells, centres=centres)
        torch.testing.assert_close(slots[:, t], want_slots)
        torch.testing.assert_close(attention[:, t], want_attention)
        if carry:  # the next frame starts where this one ended
            init = want_slots
            weights = want_attention + sa.epsilon
            centres = (weights / weights.sum(-1, keepdim=True)) @ cells
    (grad,) = torch.autograd.grad(slots.sum(), m.centres)
    assert grad.abs().sum() > 0  # the learned starting centres are trained
    bilevel = VideoSlotAttention(8, num_slots=3, carry=carry, position_weight=5.0, grid=(2, 3), bilevel=True)
    bilevel(x).sum().backward()
    assert bilevel.centres.grad is None  # BO-QSA's gradient reaches the starting slots, not the centres


def test_differentiable_capture_gives_gradients_with_respect_to_the_weights():
    m = SlotAttention(8, num_slots=3, num_iterations=2)
    x = torch.randn(2, 6, 8)
    with capture(m, differentiable=True) as rec:
        out = m(x, deterministic=True)
    first = rec.calls("")[0]
    (grad,) = torch.autograd.grad(out.pow(2).sum(), first)
    assert grad.abs().sum() > 0


def test_gradcheck_float64():
    m = SlotAttention(4, num_slots=2, kv_dim=3, num_iterations=2).double()
    x = torch.randn(2, 3, 3, dtype=torch.float64, requires_grad=True)
    init = torch.randn(2, 2, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, s: m(a, slots=s), (x, init))


@pytest.mark.parametrize("iterations", [1, 3])
def test_bilevel_keeps_the_values_and_gives_the_last_iterations_gradient(iterations: int):
    """BO-QSA: the slots are those of plain slot attention; the gradient of the initial slots
    and of the inputs is the one a single iteration run from the (fixed) penultimate slots gives."""
    m = SlotAttention(8, num_slots=3, kv_dim=5, num_iterations=iterations, bilevel=True).double()
    x = torch.randn(2, 6, 5, dtype=torch.float64, requires_grad=True)
    init = torch.randn(2, 3, 8, dtype=torch.float64, requires_grad=True)
    out = m(x, slots=init)
    target = torch.randn_like(out)
    gx, ginit = torch.autograd.grad((out * target).sum(), (x, init))

    expected, _ = slot_attention64(m, x, init, iterations)
    torch.testing.assert_close(out, expected, rtol=1e-10, atol=1e-12)
    penultimate, _ = slot_attention64(m, x.detach(), init.detach(), iterations - 1)
    penultimate.requires_grad_(True)
    last, _ = slot_attention64(m, x, penultimate, 1)
    ref_gx, ref_gs = torch.autograd.grad((last * target).sum(), (x, penultimate))
    torch.testing.assert_close(gx, ref_gx, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(ginit, ref_gs, rtol=1e-10, atol=1e-12)
    if iterations > 1:  # not the full gradient
        full_gx, _ = torch.autograd.grad(
            (slot_attention64(m, x, init, iterations)[0] * target).sum(), (x, init)
        )
        assert not torch.allclose(gx, full_gx)


def test_every_parameter_gets_a_gradient():
    m = SlotAttention(8, num_slots=3, kv_dim=5)
    m(torch.randn(2, 7, 5)).sum().backward()
    for name, p in m.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_slot_attention_bad_inputs():
    m = SlotAttention(8, num_slots=3)
    with pytest.raises(InputError, match="inputs must be"):
        m(torch.randn(6, 8))
    with pytest.raises(InputError, match="inputs must be"):
        m(torch.randn(2, 6, 7))
    with pytest.raises(InputError, match="inputs must be"):
        m(torch.ones(2, 6, 8, dtype=torch.long))
    with pytest.raises(InputError, match="slots must be"):
        m(torch.randn(2, 6, 8), slots=torch.randn(3, 3, 8))
    with pytest.raises(InputError, match="slots must be"):
        m(torch.randn(2, 6, 8), slots=torch.randn(2, 3, 4))
    with pytest.raises(InputError, match="slots must be"):
        m(torch.randn(2, 6, 8), slots=torch.randn(2, 3, 8, dtype=torch.float64))
    with pytest.raises(InputError, match="num_slots"):
        SlotAttention(8, num_slots=0)
    with pytest.raises(InputError, match="positions and centres need"):
        m.with_attention(torch.randn(2, 6, 8), positions=torch.rand(6, 2))
    spatial = SlotAttention(8, num_slots=3, position_weight=1.0)
    with pytest.raises(InputError, match="needs positions"):
        spatial.with_attention(torch.randn(2, 6, 8), centres=torch.rand(2, 3, 2))
    with pytest.raises(InputError, match="needs positions"):
        spatial.with_attention(torch.randn(2, 6, 8), positions=torch.rand(5, 2), centres=torch.rand(2, 3, 2))
    with pytest.raises(InputError, match="needs centres"):
        spatial.with_attention(torch.randn(2, 6, 8), positions=torch.rand(6, 2), centres=torch.rand(2, 2, 2))
    with pytest.raises(InputError, match="position_weight must be"):
        SlotAttention(8, num_slots=3, position_weight=-1.0)
    with pytest.raises(InputError, match="needs the token grid"):
        VideoSlotAttention(8, num_slots=3, position_weight=1.0)
    with pytest.raises(InputError, match="one token per grid cell"):
        VideoSlotAttention(8, num_slots=3, position_weight=1.0, grid=(2, 2))(torch.randn(1, 2, 5, 8))

    with pytest.raises(InputError, match="num_slots"):
        m.initial_slots(2, num_slots=0)


# --- QueryObjectExtractor ---------------------------------------------------------

H = 2


def mha64(q_in: torch.Tensor, kv_in: torch.Tensor, p: P, name: str):
    dim = p[f"{name}.q_proj.weight"].shape[0]
    q = q_in @ p[f"{name}.q_proj.weight"].T + p[f"{name}.q_proj.bias"]
    kv = kv_in @ p[f"{name}.kv_proj.weight"].T + p[f"{name}.kv_proj.bias"]
    k, v = kv[..., :dim], kv[..., dim:]
    dh = dim // H
    heads = []
    for h in range(H):
        sl = slice(h * dh, (h + 1) * dh)
        w = torch.softmax(q[..., sl] @ k[..., sl].transpose(-1, -2) / math.sqrt(dh), -1)
        heads.append(w @ v[..., sl])
    return torch.cat(heads, -1) @ p[f"{name}.proj.weight"].T + p[f"{name}.proj.bias"]


def extractor64(m: QueryObjectExtractor, x: torch.Tensor) -> torch.Tensor:
    """Learned queries; per layer q += MHA(q, LN(x)); q += MLP(LN(q)) with exact GELU."""
    p = params64(m)
    x = x.double()
    q = p["queries"].expand(x.shape[0], -1, -1)
    for i in range(len(m.blocks)):
        b = f"blocks.{i}"
        q = q + mha64(q, ln64(x, p, f"{b}.norm1"), p, f"{b}.attn")
        h = ln64(q, p, f"{b}.norm2") @ p[f"{b}.mlp.fc1.weight"].T + p[f"{b}.mlp.fc1.bias"]
        h = 0.5 * h * (1 + torch.erf(h / math.sqrt(2)))
        q = q + h @ p[f"{b}.mlp.fc2.weight"].T + p[f"{b}.mlp.fc2.bias"]
    return q


@pytest.mark.parametrize("num_layers", [1, 2])
def test_extractor_equals_float64_reference(num_layers: int):
    m = QueryObjectExtractor(8, num_slots=3, kv_dim=6, num_heads=H, num_layers=num_layers).eval()
    x = torch.randn(2, 10, 6)
    out = m(x)
    assert out.shape == (2, 3, 8)
    torch.testing.assert_close(out.double(), extractor64(m, x), atol=1e-5, rtol=1e-4)


def test_extractor_video_uses_the_same_queries_for_every_frame():
    m = QueryObjectExtractor(8, num_slots=3, num_heads=H).eval()
    video = torch.randn(2, 4, 5, 8)  # (B, T, N, D)
    with capture(m) as rec:
        out = m(video)
    assert out.shape == (2, 4, 3, 8)
    for t in range(4):
        torch.testing.assert_close(out[:, t], m(video[:, t]), atol=1e-6, rtol=1e-5)
    w = rec["blocks.0.attn"]
    assert w.shape == (2 * 4, H, 3, 5)
    torch.testing.assert_close(w.sum(-1), torch.ones(8, H, 3))


def test_extractor_is_invariant_to_token_permutation_and_slots_differ():
    m = QueryObjectExtractor(8, num_slots=4, num_heads=H).eval()
    x = torch.randn(2, 9, 8)
    perm = torch.randperm(9)
    out = m(x)
    torch.testing.assert_close(m(x[:, perm]), out, atol=1e-5, rtol=1e-5)
    assert (out[:, 0] - out[:, 1]).abs().amax() > 1e-3


def test_extractor_gradcheck_and_gradients():
    m = QueryObjectExtractor(4, num_slots=2, kv_dim=3, num_heads=H, mlp_ratio=1.0).double()
    x = torch.randn(2, 3, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(m, (x,))
    m = QueryObjectExtractor(8, num_slots=3, num_heads=H, num_layers=2)
    m(torch.randn(2, 2, 5, 8)).sum().backward()
    for name, p in m.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_extractor_bad_inputs():
    m = QueryObjectExtractor(8, num_slots=3, kv_dim=6, num_heads=H)
    with pytest.raises(InputError, match="features must be"):
        m(torch.randn(5, 6))
    with pytest.raises(InputError, match="features must be"):
        m(torch.randn(2, 5, 8))
    with pytest.raises(InputError, match="features must be"):
        m(torch.randn(1, 2, 3, 5, 6))
    with pytest.raises(InputError, match="floating"):
        m(torch.ones(2, 5, 6, dtype=torch.long))
    with pytest.raises(InputError, match="num_slots"):
        QueryObjectExtractor(8, num_slots=0)


def test_gaussian_video_slots_share_one_draw_per_clip_and_evaluate_deterministically():
    m = VideoSlotAttention(8, num_slots=3, init="gaussian")
    frame = torch.randn(2, 1, 5, 8)
    video = frame.expand(-1, 4, -1, -1)  # four equal frames
    slots = m(video)  # training mode: a fresh draw per clip
    assert slots.shape == (2, 4, 3, 8)
    torch.testing.assert_close(slots, slots[:, :1].expand_as(slots))  # the frames of a clip start alike
    assert not torch.allclose(slots[0], slots[1])  # clips do not
    assert not torch.allclose(m(video), slots)  # and a second call draws again
    m.eval()
    torch.testing.assert_close(m(video), m(video), rtol=0, atol=0)
    # the eval draw is the layer's own Gaussian with a generator seeded with 0
    noise = torch.randn(2, 3, 8, generator=torch.Generator().manual_seed(0))
    sa = m.slot_attention
    expected = sa(frame[:, 0], slots=sa.slots_mu + sa.slots_log_sigma.exp() * noise)
    torch.testing.assert_close(m(video)[:, 0], expected)
    assert not hasattr(m, "queries")
    with pytest.raises(InputError, match="init must be"):
        VideoSlotAttention(8, num_slots=3, init="zeros")  # type: ignore[arg-type]


def test_reading_clusters_is_one_iteration_with_the_clusters_as_its_attention():
    m = SlotAttention(8, num_slots=3, kv_dim=6, num_iterations=1)
    x, start = torch.randn(2, 7, 6), torch.randn(2, 3, 8)
    slots, attention = m.with_attention(x, slots=start)
    torch.testing.assert_close(m.read_clusters(x, attention, start), slots)
    # one-hot clusters: slot k reads the float64 mean of its cluster's values (an empty one, all's)
    nearest = torch.tensor([[0, 0, 1, 1, 1, 0, 0], [2, 2, 2, 0, 0, 0, 0]])
    clusters = torch.nn.functional.one_hot(nearest, 3).transpose(1, 2).float()  # (B, K, N)
    p = params64(m)
    v = ln64(x.double(), p, "norm_inputs") @ p["v_proj.weight"].T  # (B, N, D)
    means = torch.stack(
        [
            torch.stack(
                [v[b, nearest[b] == k].mean(0) if (nearest[b] == k).any() else v[b].mean(0) for k in range(3)]
            )
            for b in range(2)
        ]
    )  # (B, K, D)
    expected = gru64(means, start.double(), p)
    hidden = torch.relu(ln64(expected, p, "norm_mlp") @ p["mlp.0.weight"].T + p["mlp.0.bias"])
    expected = expected + hidden @ p["mlp.2.weight"].T + p["mlp.2.bias"]
    torch.testing.assert_close(m.read_clusters(x, clusters, start).double(), expected, rtol=1e-5, atol=1e-5)
    with pytest.raises(InputError, match="clusters must be"):
        m.read_clusters(x, clusters[:, :2], start)


@pytest.mark.parametrize("position_weight", [0.0, 5.0])
def test_kmeans_video_slots_start_each_frame_from_its_clusters(position_weight: float):
    grid = (2, 3) if position_weight else None
    m = VideoSlotAttention(8, num_slots=3, init="kmeans", position_weight=position_weight, grid=grid)
    x = torch.randn(2, 4, 6, 8)
    nearest = torch.randint(0, 3, (2, 4, 6), generator=torch.Generator().manual_seed(0))
    clusters = torch.nn.functional.one_hot(nearest, 3).transpose(2, 3).float()  # (B, T, K, N)
    slots, attention = m.with_attention(x, clusters)
    sa, queries = m.slot_attention, m.queries.expand(2, -1, -1)
    for t in range(4):
        start = sa.read_clusters(x[:, t], clusters[:, t], queries)
        positions = centres = None
        if position_weight:  # each slot's centre starts at its cluster's mean cell
            positions = m.positions
            centres = sa.mean_weights(clusters[:, t]) @ positions
        want_slots, want_attention = sa.with_attention(
            x[:, t], slots=start, positions=positions, centres=centres
        )
        torch.testing.assert_close(slots[:, t], want_slots)
        torch.testing.assert_close(attention[:, t], want_attention)
    (grad,) = torch.autograd.grad(slots.sum(), m.queries)
    assert grad.abs().sum() > 0  # the learned vectors the clusters' update starts from are trained
    with pytest.raises(InputError, match="clusters are given with init 'kmeans'"):
        m(x)
    with pytest.raises(InputError, match="clusters are given with init 'kmeans'"):
        VideoSlotAttention(8, num_slots=3)(x, clusters)
    with pytest.raises(InputError, match="carry would drop them"):
        VideoSlotAttention(8, num_slots=3, init="kmeans", carry=True)
