"""Aloe: invariances, choice batching, the masked-object loss, gradients, helpers, input checks."""

import dataclasses
import math

import pytest
import torch

from attnlab.errors import ConfigError, InputError
from attnlab.explain import capture
from attnlab.models import create_model, model_entry
from attnlab.models.video_qa.aloe import (
    Aloe,
    AloeConfig,
    AloeOutput,
    append_mask_summary,
    frame_indices,
    mask_summary,
    sample_object_mask,
    shuffle_objects,
    subsample_frames,
)
from attnlab.models.video_qa.frame_encoder import FrameEncoder, FrameEncoderConfig
from attnlab.objectives.aloe import aloe_loss_terms, masked_object_nce

TINY = AloeConfig(
    object_dim=6,
    width=32,
    depth=2,
    num_heads=4,
    mlp_ratio=2.0,
    dropout=0.0,
    question_vocab_size=20,
    answer_vocab_size=5,
    max_question_len=10,
    max_choice_len=6,
    max_frames=6,
    head_hidden=16,
    mask_ratio=0.25,
)
B, T, K, L, C, LC = 3, 4, 5, 6, 3, 4


pytestmark = pytest.mark.usefixtures("one_thread")  # small models: threads only add overhead


def tiny_model(**overrides) -> Aloe:
    torch.manual_seed(0)
    return Aloe(dataclasses.replace(TINY, **overrides)).eval()


def inputs(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    objects = torch.randn(B, T, K, TINY.object_dim, generator=g)
    question = torch.randint(1, TINY.question_vocab_size, (B, L), generator=g)
    question[0, 4:] = 0  # trailing padding in one clip
    choices = torch.randint(1, TINY.question_vocab_size, (B, C, LC), generator=g)
    choices[:, 1, 2:] = 0
    return objects, question, choices


def logits(out: AloeOutput) -> torch.Tensor:
    return out.answer_logits if out.answer_logits is not None else out.choice_logits


# ---------------------------------------------------------------- invariances


@pytest.mark.parametrize("multiple_choice", [False, True])
def test_object_order_within_a_frame_does_not_change_the_answer(multiple_choice: bool):
    model = tiny_model()
    objects, question, choices = inputs()
    shuffled, _ = shuffle_objects(objects, generator=torch.Generator().manual_seed(1))
    assert not torch.equal(shuffled, objects)
    kwargs = {"choices": choices} if multiple_choice else {}
    with torch.no_grad():
        ref, out = logits(model(objects, question, **kwargs)), logits(model(shuffled, question, **kwargs))
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=0)


@pytest.mark.parametrize("multiple_choice", [False, True])
def test_extra_padding_words_do_not_change_the_answer(multiple_choice: bool):
    model = tiny_model()
    objects, question, choices = inputs()
    padded_q = torch.cat([question, question.new_zeros(B, TINY.max_question_len - L)], dim=1)
    padded_c = torch.cat([choices, choices.new_zeros(B, C, TINY.max_choice_len - LC)], dim=2)
    with torch.no_grad():
        if multiple_choice:
            ref = model(objects, question, choices=choices).choice_logits
            out = model(objects, padded_q, choices=padded_c).choice_logits
        else:
            ref, out = model(objects, question).answer_logits, model(objects, padded_q).answer_logits
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=0)


def test_choices_batched_equal_each_choice_run_alone():
    model = tiny_model()
    objects, question, choices = inputs()
    with torch.no_grad():
        batched = model(objects, question, choices=choices).choice_logits  # (B, C)
        alone = [model(objects, question, choices=choices[:, c : c + 1]).choice_logits for c in range(C)]
    torch.testing.assert_close(batched, torch.cat(alone, dim=1), atol=1e-5, rtol=0)


def test_choice_logits_follow_the_choice_order():
    model = tiny_model()
    objects, question, choices = inputs()
    perm = torch.tensor([2, 0, 1])
    with torch.no_grad():
        ref = model(objects, question, choices=choices)
        out = model(objects, question, choices=choices[:, perm])
    torch.testing.assert_close(out.choice_logits, ref.choice_logits[:, perm], atol=1e-5, rtol=0)
    assert torch.equal(out.choice_mask, ref.choice_mask[:, perm])


# ---------------------------------------------------------------- masking and losses


def test_masked_object_nce_equals_a_hand_computed_value():
    predictions = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    candidates = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    positive = torch.tensor([0, 2])
    # scores: row 0 = [1, 0, 1] (positive 1), row 1 = [0, 2, 2] (positive 2)
    e = math.e
    expected = 0.5 * (-math.log(e / (2 * e + 1)) - math.log(e**2 / (1 + 2 * e**2)))
    loss = masked_object_nce(predictions, candidates, positive)
    assert loss.item() == pytest.approx(expected, rel=1e-6)

    stub = AloeOutput(
        answer_logits=None,
        choice_logits=None,
        choice_mask=None,
        object_mask=None,
        masked_predictions=predictions,
        masked_index=positive,
        object_targets=candidates.view(1, 1, 3, 2),
    )
    terms = aloe_loss_terms(stub, masked_object_weight=0.5)
    assert set(terms) == {"masked_object"}
    assert terms["masked_object"].item() == pytest.approx(0.5 * expected, rel=1e-6)


def test_masked_predictions_point_at_the_masked_objects():
    model = tiny_model()
    objects, question, choices = inputs()
    mask = sample_object_mask(B, T, K, 0.4, generator=torch.Generator().manual_seed(3))
    assert (mask.sum(-1) == 2).all()  # round(0.4 * 5) per frame
    out = model(objects, question, object_mask=mask)
    assert torch.equal(out.object_mask, mask)
    assert out.masked_predictions.shape == (int(mask.sum()), TINY.object_dim)
    assert torch.equal(out.masked_targets, objects[mask])
    mc = model(objects, question, choices=choices, object_mask=mask)
    assert mc.masked_predictions.shape == (C * int(mask.sum()), TINY.object_dim)  # every choice's run
    assert torch.equal(mc.masked_targets.view(B, C, -1, TINY.object_dim)[:, 1], objects[mask].view(B, -1, 6))


def test_standardize_feeds_aloe_the_scaled_tokens_and_predicts_them():
    objects, question, choices = inputs()
    objects = objects * torch.linspace(0.01, 5.0, TINY.object_dim) + 3.0  # features of unlike sizes
    model = tiny_model(standardize=True)
    model.token_scale.fit(objects)
    plain = tiny_model()
    plain.load_state_dict({k: v for k, v in model.state_dict().items() if not k.startswith("token_scale.")})
    flat = objects.flatten(0, 2).double()  # (B * T * K, D) the scale by hand, in float64
    scaled = ((objects.double() - flat.mean(0)) / flat.std(0, correction=0)).float()
    mask = sample_object_mask(B, T, K, 0.4, generator=torch.Generator().manual_seed(3))
    out, reference = model(objects, question, object_mask=mask), plain(scaled, question, object_mask=mask)
    torch.testing.assert_close(out.answer_logits, reference.answer_logits, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out.masked_targets, scaled[mask], rtol=1e-5, atol=1e-5)
    mc, mc_reference = model(objects, question, choices=choices), plain(scaled, question, choices=choices)
    torch.testing.assert_close(mc.choice_logits, mc_reference.choice_logits, rtol=1e-5, atol=1e-5)
    assert "token_scale.mean" not in plain.state_dict()  # off by default: the weights of old runs load


def test_masking_defaults_to_the_config_in_training_and_off_in_eval():
    model = tiny_model()
    objects, question, _ = inputs()
    assert model(objects, question).object_mask is None
    assert model(objects, question, mask_ratio=0.2).object_mask.sum() == B * T  # 1 per frame
    model.train()
    out = model(objects, question, generator=torch.Generator().manual_seed(0))
    assert (out.object_mask.sum(-1) == 1).all()  # round(0.25 * 5) = 1
    assert model(objects, question, mask_ratio=0.0).object_mask is None
    again = model(objects, question, generator=torch.Generator().manual_seed(0))
    assert torch.equal(again.object_mask, out.object_mask)


def test_loss_terms_and_gradients_reach_every_parameter():
    model = tiny_model()
    model.train()
    objects, question, choices = inputs()
    answers = torch.tensor([0, 3, 4])
    labels = torch.tensor([[1, 0, 0], [0, 1, 1], [0, 0, 1]])
    desc = aloe_loss_terms(model(objects, question), answers=answers)
    mc = aloe_loss_terms(model(objects, question, choices=choices), choice_labels=labels)
    assert set(desc) == {"answer", "masked_object"} and set(mc) == {"choice", "masked_object"}
    sum(desc.values()).add(sum(mc.values())).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    with pytest.raises(InputError, match="pass answers"):
        aloe_loss_terms(model(objects, question))
    with pytest.raises(InputError, match="no choice_logits"):
        aloe_loss_terms(model(objects, question), answers=answers, choice_labels=labels)


def test_padded_choices_are_left_out_of_the_choice_loss():
    model = tiny_model()
    objects, question, choices = inputs()
    choices[:, 2] = 0  # the third choice is absent everywhere
    out = model(objects, question, choices=choices)
    labels = torch.tensor([[1.0, 0.0, 1.0]]).expand(B, C)
    flipped = labels.clone()
    flipped[:, 2] = 1 - flipped[:, 2]
    assert not out.choice_mask[:, 2].any()
    loss = aloe_loss_terms(out, choice_labels=labels)["choice"]
    torch.testing.assert_close(loss, aloe_loss_terms(out, choice_labels=flipped)["choice"])


def test_attention_is_capturable():
    model = tiny_model()
    objects, question, choices = inputs()
    with capture(model) as rec:
        model(objects, question, choices=choices)
    n = 1 + L + LC + T * K
    assert list(rec) == ["blocks.0.attn", "blocks.1.attn"]
    assert rec["blocks.1.attn"].shape == (B * C, TINY.num_heads, n, n)
    padded_keys = rec["blocks.0.attn"][0, :, :, 1 + 4 : 1 + L]  # clip 0's padded question words
    assert padded_keys.abs().max() == 0


def test_overfits_eight_examples():
    torch.manual_seed(0)
    model = Aloe(dataclasses.replace(TINY, mask_ratio=0.0)).train()
    g = torch.Generator().manual_seed(0)
    objects = torch.randn(8, 3, 3, TINY.object_dim, generator=g)
    question = torch.randint(1, TINY.question_vocab_size, (8, 4), generator=g)
    answers = torch.arange(8) % TINY.answer_vocab_size
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(150):
        opt.zero_grad()
        sum(aloe_loss_terms(model(objects, question), answers=answers).values()).backward()
        opt.step()
    with torch.no_grad():
        accuracy = (model.eval()(objects, question).answer_logits.argmax(-1) == answers).float().mean()
    assert accuracy == 1.0


def test_overfits_eight_multiple_choice_questions():
    torch.manual_seed(0)
    model = Aloe(dataclasses.replace(TINY, mask_ratio=0.0)).train()
    g = torch.Generator().manual_seed(0)
    objects = torch.randn(8, 3, 3, TINY.object_dim, generator=g)
    question = torch.randint(1, TINY.question_vocab_size, (8, 4), generator=g)
    choices = torch.randint(1, TINY.question_vocab_size, (8, 3, 4), generator=g)
    labels = (torch.rand(8, 3, generator=g) > 0.5).float()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(300):
        opt.zero_grad()
        out = model(objects, question, choices=choices)
        sum(aloe_loss_terms(out, choice_labels=labels).values()).backward()
        opt.step()
    with torch.no_grad():
        logits = model.eval()(objects, question, choices=choices).choice_logits
    assert torch.equal((logits > 0).float(), labels)


# ---------------------------------------------------------------- frame encoder


def test_frame_encoder_gives_one_token_per_frame_that_aloe_reads():
    torch.manual_seed(0)
    encoder = FrameEncoder(FrameEncoderConfig(image_size=16, channels=(4, 8), out_dim=TINY.object_dim))
    video = torch.rand(2, 3, 3, 16, 16)
    tokens = encoder(video)
    assert tokens.shape == (2, 3, 1, TINY.object_dim)
    model = tiny_model()
    question = torch.randint(1, TINY.question_vocab_size, (2, 5))
    model(tokens, question).answer_logits.sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in encoder.parameters())
    with pytest.raises(InputError, match="video must be"):
        encoder(torch.rand(2, 3, 3, 15, 15))
    with pytest.raises(ConfigError, match="multiple of 4"):
        FrameEncoder(FrameEncoderConfig(image_size=18, channels=(4, 8)))


# ---------------------------------------------------------------- helpers


def test_frame_indices_follow_the_reference_sampling():
    assert frame_indices(128, num_frames=25).tolist() == list(range(0, 125, 5))
    assert frame_indices(10, stride=3).tolist() == [0, 3, 6]
    assert frame_indices(10, stride=2, num_frames=3).tolist() == [0, 2, 4]
    starts = {
        int(frame_indices(128, num_frames=25, generator=torch.Generator().manual_seed(s))[0])
        for s in range(40)
    }
    assert starts <= set(range(8)) and len(starts) > 1  # offsets 0..7 keep 25 frames at stride 5
    g1, g2 = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    assert torch.equal(frame_indices(50, stride=4, generator=g1), frame_indices(50, stride=4, generator=g2))
    x = torch.arange(2 * 10).view(2, 10, 1)
    assert subsample_frames(x, stride=3)[0, :, 0].tolist() == [0, 3, 6]
    with pytest.raises(InputError, match="span"):
        frame_indices(10, stride=4, num_frames=4)


def test_shuffle_objects_permutes_within_frames_reproducibly():
    objects = torch.arange(2 * 3 * 4, dtype=torch.float32).view(2, 3, 4, 1).expand(2, 3, 4, 2)
    masks = objects[..., :1, None, None].expand(2, 3, 4, 1, 5, 5).clone()
    out, out_masks = shuffle_objects(objects, generator=torch.Generator().manual_seed(0), masks=masks)
    again, _ = shuffle_objects(objects, generator=torch.Generator().manual_seed(0))
    assert torch.equal(out, again)
    assert torch.equal(out.sort(dim=2).values, objects)  # the same objects in every frame
    assert torch.equal(out_masks[:, :, :, 0, 0, 0], out[..., 0])  # masks moved with their objects


def test_mask_summary_gives_centroid_and_area():
    masks = torch.zeros(1, 1, 2, 4, 8)
    masks[0, 0, 0, 0:2, 4:8] = 1.0  # top-right quarter
    summary = mask_summary(masks)
    torch.testing.assert_close(summary[0, 0, 0], torch.tensor([0.75, 0.25, 0.25]))
    torch.testing.assert_close(summary[0, 0, 1], torch.tensor([0.5, 0.5, 0.0]))  # empty: centre
    objects = torch.randn(1, 1, 2, 6)
    assert append_mask_summary(objects, masks[:, :, :, None]).shape == (1, 1, 2, 9)


# ---------------------------------------------------------------- checks


def bad_cases():
    objects, question, choices = inputs()
    return {
        "objects rank": (objects[0], question, {}),
        "objects dtype": (objects.long(), question, {}),
        "objects dim": (objects[..., :5], question, {}),
        "too many frames": (torch.randn(B, 7, K, 6), question, {}),
        "nan": (objects.clone().fill_(float("nan")), question, {}),
        "question dtype": (objects, question.float(), {}),
        "question rank": (objects, question[0], {}),
        "question id too large": (objects, question.clone().fill_(20), {}),
        "question id negative": (objects, question.clone().fill_(-1), {}),
        "question too long": (objects, torch.ones(B, 11, dtype=torch.long), {}),
        "question batch": (objects, question[:2], {}),
        "choices rank": (objects, question, {"choices": choices[:, 0]}),
        "choices too long": (objects, question, {"choices": torch.ones(B, C, 7, dtype=torch.long)}),
        "choices batch": (objects, question, {"choices": choices[:2]}),
        "object_mask shape": (objects, question, {"object_mask": torch.ones(B, T, dtype=torch.bool)}),
        "mask_ratio": (objects, question, {"mask_ratio": 1.5}),
    }


@pytest.mark.parametrize("case", list(bad_cases()))
def test_bad_inputs_raise_one_line_input_errors(case: str):
    objects, question, kwargs = bad_cases()[case]
    with pytest.raises(InputError) as err:
        tiny_model()(objects, question, **kwargs)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    "overrides, match",
    [
        ({"width": 130}, "divisible"),
        ({"mask_ratio": 1.5}, "mask_ratio"),
        ({"dropout": 1.0}, "dropout"),
        ({"question_vocab_size": 1}, "padding"),
        ({"depth": 0}, "depth"),
    ],
)
def test_bad_configs_raise_config_errors(overrides: dict, match: str):
    with pytest.raises(ConfigError, match=match):
        create_model("aloe", **overrides)


def test_paper_preset_has_the_reference_sizes():
    c = model_entry("aloe-paper").config
    assert (c.width, c.depth, c.num_heads, int(c.width * c.mlp_ratio)) == (180, 28, 10, 1024)
    assert (c.object_dim, c.question_vocab_size, c.answer_vocab_size, c.max_frames) == (16, 82, 22, 25)
