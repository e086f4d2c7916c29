import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from attnlab.errors import ConfigError, InputError
from attnlab.explain import capture
from attnlab.layers.transformer import TransformerBlock
from attnlab.objectives.distill import (
    DistillConfig,
    attention_confidence,
    attention_kl,
    distill_loss,
    layer_attention,
    output_kl,
    resample_attention,
    select_head,
)


def rand_maps(*shape, seed=0, sharp=2.0):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=gen, dtype=torch.float64).mul(sharp).softmax(-1)


def ref_output_kl(s, t, temp):
    """torch's kl_div in float64: input log p_S, target p_T, batchmean."""
    log_s = F.log_softmax(s.double() / temp, -1)
    p_t = F.softmax(t.double() / temp, -1)
    return F.kl_div(log_s, p_t, reduction="batchmean")


def ref_attention_kl(t, s):
    """(B, N, N) maps: kl_div over keys for every (image, query) row, mean over the rows."""
    rows = t.shape[0] * t.shape[1]
    return F.kl_div(s.double().log().reshape(rows, -1), t.double().reshape(rows, -1), reduction="batchmean")


def loop_confidence(attn, skip=0):
    """(H,) float64: for every head, mean over images and queries of the largest weight."""
    b, h, n, _ = attn.shape
    out = []
    for head in range(h):
        vals = [
            max(float(attn[i, head, q, k]) for k in range(skip, n)) for i in range(b) for q in range(skip, n)
        ]
        out.append(sum(vals) / len(vals))
    return torch.tensor(out, dtype=torch.float64)


# ---- output KD ---------------------------------------------------------------------------------


def test_output_kl_hand_values_with_and_without_temperature():
    s = torch.zeros(1, 2)
    t = torch.tensor([[math.log(3.0), 0.0]])  # p_T = (3/4, 1/4), p_S = (1/2, 1/2)
    expected = 0.75 * math.log(1.5) + 0.25 * math.log(0.5)
    assert output_kl(s, t).item() == pytest.approx(expected)
    a = math.sqrt(3) / (1 + math.sqrt(3))  # softmax((ln 3 / 2, 0)) = (sqrt3, 1) / (1 + sqrt3)
    at_t2 = a * math.log(2 * a) + (1 - a) * math.log(2 * (1 - a))
    assert output_kl(s, t, temperature=2.0, temperature_squared=False).item() == pytest.approx(at_t2)
    assert output_kl(s, t, temperature=2.0).item() == pytest.approx(4 * at_t2)


def test_output_kd_matches_kl_div_in_float64_with_lambda1():
    gen = torch.Generator().manual_seed(1)
    s, t1, t2 = (torch.randn(5, 7, generator=gen) for _ in range(3))
    config = DistillConfig(lambda1=0.3, temperature=3.0, attention_weight=0.0)
    loss = distill_loss(config, s, (t1, t2))
    k1, k2 = (9 * ref_output_kl(s, t, 3.0) for t in (t1, t2))
    torch.testing.assert_close(loss.kd[0].double(), k1, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(loss.kd[1].double(), k2, rtol=1e-5, atol=1e-6)
    assert set(loss.terms()) == {"kd_teacher1", "kd_teacher2"}
    torch.testing.assert_close(loss.total().double(), 0.3 * k1 + 0.7 * k2, rtol=1e-5, atol=1e-6)


# ---- Attention Confidence ----------------------------------------------------------------------


def test_attention_confidence_hand_values_and_cls_handling():
    sink = torch.tensor([[0.9, 0.05, 0.05]] * 3)  # every query on CLS (token 0)
    spread = torch.tensor([[0.5, 0.25, 0.25], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6]])
    attn = torch.stack([sink, spread])[None]  # (1, 2, 3, 3)
    torch.testing.assert_close(attention_confidence(attn), torch.tensor([0.9, (0.5 + 0.8 + 0.6) / 3]))
    assert select_head(attn) == 0
    excl = attention_confidence(attn, num_prefix_tokens=1, exclude_prefix=True)
    torch.testing.assert_close(excl, torch.tensor([0.05, (0.8 + 0.6) / 2]))  # not renormalised
    assert select_head(attn, num_prefix_tokens=1, exclude_prefix=True) == 1


def test_attention_confidence_matches_a_loop():
    attn = rand_maps(3, 4, 6, 6, seed=2)
    torch.testing.assert_close(attention_confidence(attn), loop_confidence(attn))
    torch.testing.assert_close(
        attention_confidence(attn, num_prefix_tokens=1, exclude_prefix=True), loop_confidence(attn, skip=1)
    )


# ---- attention KD ------------------------------------------------------------------------------


def test_attention_kl_hand_value_and_kl_div():
    t = torch.tensor([[[0.5, 0.5], [1.0, 0.0]]])  # a zero teacher weight contributes nothing
    s = torch.tensor([[[0.25, 0.75], [0.5, 0.5]]])
    expected = (0.5 * math.log(2) + 0.5 * math.log(2 / 3) + math.log(2)) / 2
    assert attention_kl(t, s).item() == pytest.approx(expected)
    a, b = rand_maps(2, 5, 5, seed=3), rand_maps(2, 5, 5, seed=4)
    torch.testing.assert_close(attention_kl(a, b), ref_attention_kl(a, b))


def test_attention_kd_selects_confident_teacher_heads_and_matches_kl_div():
    teachers = (rand_maps(2, 3, 17, 17, seed=5, sharp=4.0), rand_maps(2, 4, 17, 17, seed=6, sharp=1.0))
    student = rand_maps(2, 3, 17, 17, seed=7).requires_grad_(True)
    config = DistillConfig(lambda1=0.5, lambda2=0.25, attention_weight=2.0)
    logits = torch.zeros(2, 4)
    loss = distill_loss(
        config, logits, (logits, logits), student_attention=student, teacher_attention=teachers
    )
    heads = tuple(int(loop_confidence(t).argmax()) for t in teachers)
    assert loss.teacher_heads == heads
    for i, (t, sh) in enumerate(zip(teachers, (0, 1), strict=True)):
        torch.testing.assert_close(
            loss.attention[i], ref_attention_kl(t[:, heads[i]], student[:, sh].detach())
        )
    terms = loss.terms()
    torch.testing.assert_close(terms["attn_teacher1"], 2.0 * 0.25 * loss.attention[0])
    torch.testing.assert_close(terms["attn_teacher2"], 2.0 * 0.75 * loss.attention[1])


def test_fixed_heads_and_the_thesis_default_needs_only_the_mim_teacher():
    mim = rand_maps(1, 2, 5, 5, seed=8)
    student = rand_maps(1, 3, 5, 5, seed=9).requires_grad_(True)
    logits = torch.zeros(1, 3)
    config = DistillConfig(teacher_heads=(None, 1), student_heads=(2, 0))
    loss = distill_loss(
        config, logits, (logits, logits), student_attention=student, teacher_attention=(None, mim)
    )
    assert loss.attention[0] is None and loss.teacher_heads == (None, 1)
    assert "attn_teacher1" not in loss.terms()
    torch.testing.assert_close(loss.attention[1], ref_attention_kl(mim[:, 1], student[:, 0].detach()))


def test_gradients_reach_only_the_student():
    gen = torch.Generator().manual_seed(10)
    s_logits = torch.randn(2, 5, generator=gen, requires_grad=True)
    t_logits = [torch.randn(2, 5, generator=gen, requires_grad=True) for _ in range(2)]
    t_maps = [rand_maps(2, 2, 5, 5, seed=s).requires_grad_(True) for s in (11, 12)]
    s_maps = rand_maps(2, 3, 5, 5, seed=13).requires_grad_(True)
    config = DistillConfig(lambda2=0.5, num_prefix_tokens=1)
    loss = distill_loss(
        config,
        s_logits,
        (t_logits[0], t_logits[1]),
        student_attention=s_maps,
        teacher_attention=(t_maps[0], t_maps[1]),
    )
    loss.total().backward()
    assert all(t.grad is None for t in (*t_logits, *t_maps))
    assert s_logits.grad is not None and s_logits.grad.abs().sum() > 0
    assert s_maps.grad is not None
    assert s_maps.grad[:, 0].abs().sum() > 0 and s_maps.grad[:, 1].abs().sum() > 0
    assert s_maps.grad[:, 2].abs().sum() == 0  # only the two student heads are taught


def test_with_transformer_blocks_captured_teachers_and_a_differentiable_student():
    torch.manual_seed(0)
    teachers = [nn.Sequential(*[TransformerBlock(8, num_heads=2) for _ in range(2)]) for _ in range(2)]
    student = nn.Sequential(*[TransformerBlock(8, num_heads=2) for _ in range(2)])
    x = torch.randn(3, 1 + 9, 8)  # CLS + 3x3 patches
    maps = []
    with torch.no_grad():
        for teacher in teachers:
            with capture(teacher) as rec:
                teacher(x)
            maps.append(layer_attention(rec, None, "teacher"))
    with capture(student, differentiable=True) as rec:
        student(x)
    s_maps = layer_attention(rec, "1.attn", "student")
    logits = torch.zeros(3, 2)
    loss = distill_loss(
        DistillConfig(lambda2=0.5),
        logits,
        (logits, logits),
        student_attention=s_maps,
        teacher_attention=(maps[0], maps[1]),
    )
    loss.total().backward()
    assert all(p.grad is None for t in teachers for p in t.parameters())
    assert student[1].attn.q_proj.weight.grad.abs().sum() > 0
    with pytest.raises(ConfigError, match="unknown student attention layer"):
        layer_attention(rec, "2.attn", "student")


# ---- grids -------------------------------------------------------------------------------------


def test_resample_same_grid_is_the_identity():
    maps = rand_maps(2, 3, 17, 17, seed=14)
    torch.testing.assert_close(resample_attention(maps, (4, 4), (4, 4), num_prefix_tokens=1), maps)


def test_resample_4x4_to_2x2_is_block_sums_over_keys_and_block_means_over_queries():
    a = rand_maps(1, 17, 17, seed=15)[0]  # CLS + 4x4
    got = resample_attention(a, (4, 4), (2, 2), num_prefix_tokens=1)

    def block(i):  # tokens of the 2x2 block i of the 4x4 grid, after CLS
        r, c = divmod(i, 2)
        return [1 + (2 * r + dr) * 4 + 2 * c + dc for dr in (0, 1) for dc in (0, 1)]

    ref = torch.zeros(5, 5, dtype=torch.float64)
    ref[0, 0] = a[0, 0]
    for j in range(4):
        ref[0, 1 + j] = sum(a[0, k] for k in block(j))
        ref[1 + j, 0] = sum(a[q, 0] for q in block(j)) / 4
        for i in range(4):
            ref[1 + i, 1 + j] = sum(a[q, k] for q in block(i) for k in block(j)) / 4
    torch.testing.assert_close(got, ref)
    one_hot = torch.zeros(16, 16, dtype=torch.float64)
    one_hot[:, 2 * 4 + 3] = 1.0  # every query on patch (2, 3) of the 4x4 grid
    down = resample_attention(one_hot, (4, 4), (2, 2), num_prefix_tokens=0)
    torch.testing.assert_close(down, torch.eye(4, dtype=torch.float64)[[3, 3, 3, 3]])  # patch (1, 1)


def test_resample_upsampling_keeps_rows_distributions_and_cls_weight():
    a = rand_maps(2, 2, 5, 5, seed=16)  # CLS + 2x2
    up = resample_attention(a, (2, 2), (3, 4), num_prefix_tokens=1)
    assert up.shape == (2, 2, 13, 13)
    torch.testing.assert_close(up.sum(-1), torch.ones(2, 2, 13, dtype=torch.float64))
    torch.testing.assert_close(up[..., 0, 0], a[..., 0, 0])  # CLS -> CLS kept
    torch.testing.assert_close(up[..., 0, 1:].sum(-1), a[..., 0, 1:].sum(-1))  # CLS row's patch mass kept
    uniform = resample_attention(torch.full((4, 4), 0.25), (2, 2), (3, 3), num_prefix_tokens=0)
    torch.testing.assert_close(uniform, torch.full((9, 9), 1 / 9))


def test_grid_mismatch_is_an_error_unless_bilinear_is_configured():
    teacher = rand_maps(1, 2, 17, 17, seed=17)  # CLS + 4x4
    student = rand_maps(1, 2, 5, 5, seed=18).requires_grad_(True)  # CLS + 2x2
    logits = torch.zeros(1, 3)
    with pytest.raises(InputError, match=r"teacher2's token grid 4x4 differs from the student's 2x2"):
        distill_loss(
            DistillConfig(),
            logits,
            (logits, logits),
            student_attention=student,
            teacher_attention=(None, teacher),
        )
    config = DistillConfig(interpolation="bilinear", teacher_heads=(None, 1))
    loss = distill_loss(
        config, logits, (logits, logits), student_attention=student, teacher_attention=(None, teacher)
    )
    target = resample_attention(teacher[:, 1], (4, 4), (2, 2), num_prefix_tokens=1)
    torch.testing.assert_close(loss.attention[1], ref_attention_kl(target, student[:, 1].detach()))


def test_bad_inputs_are_one_line_errors():
    logits = torch.zeros(1, 3)
    maps = rand_maps(1, 2, 5, 5, seed=19)
    student = maps.clone().requires_grad_(True)
    with pytest.raises(InputError, match="teacher2 head 4 is out of range: its layer has 2 heads"):
        distill_loss(
            DistillConfig(teacher_heads=(None, 4)),
            logits,
            (logits, logits),
            student_attention=student,
            teacher_attention=(None, maps),
        )
    with pytest.raises(InputError, match="student head 5 is out of range"):
        distill_loss(
            DistillConfig(student_heads=(0, 5)),
            logits,
            (logits, logits),
            student_attention=student,
            teacher_attention=(None, maps),
        )
    with pytest.raises(InputError, match="carries no gradient"):
        distill_loss(
            DistillConfig(), logits, (logits, logits), student_attention=maps, teacher_attention=(None, maps)
        )
    with pytest.raises(InputError, match="teacher2's attention is missing"):
        distill_loss(DistillConfig(), logits, (logits, logits), student_attention=student)
    with pytest.raises(InputError, match="same shape"):
        output_kl(torch.zeros(2, 3), torch.zeros(2, 4))
    with pytest.raises(InputError, match="not a square grid"):
        distill_loss(
            DistillConfig(),
            logits,
            (logits, logits),
            student_attention=student,
            teacher_attention=(None, rand_maps(1, 2, 7, 7)),
        )
    with pytest.raises(InputError, match="3x2 grid"):
        distill_loss(
            DistillConfig(),
            logits,
            (logits, logits),
            student_attention=student,
            teacher_attention=(None, maps),
            teacher_grids=(None, (3, 2)),
        )


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("lambda1", 1.5, "lambda1 must be in"),
        ("temperature", 0.0, "temperature must be"),
        ("student_heads", (1, 1), "two different heads"),
        ("teacher_heads", (-1, None), "head indices"),
        ("interpolation", "bicubic", "unknown distill interpolation"),
    ],
)
def test_config_errors(field, value, message):
    with pytest.raises(ConfigError, match=message):
        DistillConfig(**{field: value})


def test_thesis_defaults():
    c = DistillConfig()
    assert (c.lambda1, c.lambda2, c.temperature, c.student_heads) == (0.5, 0.0, 1.0, (0, 1))
    assert c.attention_weights == (0.0, 1.0)
