"""The video-qa task: metrics on hand-made logits, model/data checks, and smoke runs of the Aloe recipes."""

import json
import runpy
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import load_file, save_file

import attnlab.data.clevrer_lite_data
import attnlab.data.clevrer_qa
import attnlab.models.video_qa.aloe_frames
import attnlab.models.video_qa.aloe_slots  # registers the models, datamodules and task
from attnlab.catalog import TASKS
from attnlab.cli import main
from attnlab.data.clevrer import ClevrerAnnotation, ClevrerObject, Collision
from attnlab.errors import ConfigError, InputError
from attnlab.models.video_qa.aloe import Aloe, AloeConfig
from attnlab.models.video_qa.aloe_frames import AloeFrames, AloeFramesConfig
from attnlab.models.video_qa.aloe_slots import AloeSlots, AloeSlotsConfig, object_latents, repeated_clips
from attnlab.runs.config import OptimConfig
from attnlab.train.composite import build_model
from attnlab.train.video_qa import METRICS, VideoQATask, accuracies, check_data_fits_model, qa_counts

QUIET = ["--trainer.progress_bar", "false", "--trainer.limit_val_batches", "1"]
QUIET += ["--trainer.limit_test_batches", "1"]
TINY_DATA = [
    "--data.train_size",
    "3",
    "--data.val_size",
    "1",
    "--data.test_size",
    "1",
    "--data.batch_size",
    "4",
]
TINY_DATA += ["--data.eval_batch_size", "32", "--data.workers", "1"]
TINY_ALOE = [
    "--model.width",
    "16",
    "--model.depth",
    "1",
    "--model.num_heads",
    "2",
    "--model.head_hidden",
    "16",
]
TWO_STEPS = ["--trainer.max_steps", "2", "--trainer.val_every", "2", "--trainer.checkpoint_every", "2"]
TINY_SFA = ["--model.num_slots", "3", "--model.latent_dim", "4", "--model.encoder_channels", "[8, 8]"]
TINY_SFA += ["--model.encoder_strides", "[2, 2]", "--model.dim", "16", "--model.num_heads", "2"]
TINY_SFA += ["--model.decoder_channels", "8", "--model.decoder_layers", "2"]


BREAKDOWN = Path(__file__).parents[2] / "scripts" / "qa_breakdown.py"
VISIBILITY = Path(__file__).parents[2] / "scripts" / "collision_visibility.py"

pytestmark = pytest.mark.usefixtures("one_thread")  # small models: threads only add overhead


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> list[str]:
    return ["--data.cache_dir", str(tmp_path_factory.mktemp("clevrer_cache"))]


def run(recipe: str, run_dir: Path, *args: str) -> dict[str, float]:
    assert main(["run", recipe, "--run-dir", str(run_dir), *QUIET, *TINY_DATA, *TWO_STEPS, *args]) == 0
    assert (run_dir / "figures" / "accuracy_per_type.png").is_file()
    return json.loads((run_dir / "metrics.json").read_text())


def test_registered():
    assert TASKS.get("video-qa").cls is VideoQATask


def test_accuracies_on_hand_made_logits():
    # rows: descriptive (right), descriptive (wrong), explanatory (all 3 options right),
    # counterfactual (2 of 3 options right, the 4th is padding), predictive (1 of 2 right)
    question_type = torch.tensor([0, 0, 1, 3, 2])
    answers = torch.tensor([2, 0, -1, -1, -1])
    labels = torch.tensor([[0, 0, 0, 0], [0, 0, 0, 0], [1, 0, 1, 0], [0, 1, 1, 0], [1, 0, 0, 0]]).float()
    answer_logits = torch.tensor([[0.0, 1.0, 5.0], [0.0, 3.0, 1.0]])  # argmax 2 (right), 1 (wrong)
    choice_logits = torch.tensor([[2.0, -1.0, 0.5], [-1.0, 2.0, -3.0], [-1.0, -2.0, 0.0]])
    choice_mask = torch.tensor([[True, True, True], [True, True, True], [True, True, False]])
    counts = qa_counts(question_type, answers, labels, answer_logits, choice_logits, choice_mask)
    assert counts.shape == (len(METRICS), 2)
    acc = accuracies(counts)
    assert acc["acc"] == pytest.approx(2 / 5)  # one descriptive + the explanatory question
    assert acc["acc/descriptive"] == 0.5
    assert acc["acc/explanatory"] == 1.0 and acc["acc/counterfactual"] == 0.0 and acc["acc/predictive"] == 0.0
    assert acc["question_acc"] == pytest.approx(1 / 3)
    assert acc["option_acc"] == pytest.approx((3 + 2 + 1) / 8)  # the padded option does not count
    assert acc["option_acc/counterfactual"] == pytest.approx(2 / 3)
    assert acc["option_acc/predictive"] == 0.5
    only_descriptive = qa_counts(question_type[:2], answers[:2], labels[:2], answer_logits, None, None)
    assert set(accuracies(only_descriptive)) == {"acc", "acc/descriptive"}


def test_the_task_checks_the_data_against_the_model(tmp_path):
    data = attnlab.data.clevrer_qa.ClevrerQAData(seed=0, cache_dir=str(tmp_path))
    aloe = Aloe(AloeConfig(object_dim=16, answer_vocab_size=24, max_question_len=24, max_choice_len=16))
    with pytest.raises(ConfigError, match=r"set --model\.question_vocab_size 58"):
        check_data_fits_model(data, Aloe(AloeConfig(object_dim=16, question_vocab_size=8)), "objects")
    with pytest.raises(ConfigError, match=r"set --model\.object_dim 16"):
        check_data_fits_model(data, Aloe(AloeConfig(object_dim=5)), "objects")
    check_data_fits_model(data, aloe, "objects")
    frames = AloeFrames(AloeFramesConfig(channels=(4,), object_dim=8, answer_vocab_size=24))
    with pytest.raises(ConfigError, match=r"set --data\.encoder frames"):
        check_data_fits_model(data, frames, "video")
    with pytest.raises(ConfigError, match="video-qa task trains Aloe models"):
        VideoQATask(model=torch.nn.Linear(2, 2), optim=OptimConfig())


def test_frame_tokens_are_masked_per_frame_not_all():
    model = AloeFrames(AloeFramesConfig(image_size=16, channels=(4,), object_dim=8, mask_ratio=0.25))
    inputs = model.example_inputs(batch_size=2)
    inputs["video"] = torch.rand(2, 8, 3, 16, 16)
    out = model(**inputs)
    assert out.object_mask.shape == (2, 8, 1) and out.object_mask.sum(1).eq(2).all()
    model.eval()
    assert model(**inputs).object_mask is None


def test_oracle_and_frames_recipes_smoke_run(tmp_path, cache):
    oracle = run("aloe-oracle-clevrer_lite", tmp_path / "oracle", *cache, *TINY_ALOE)
    assert {"test/loss", "test/acc", "test/acc/descriptive", "test/question_acc"} <= set(oracle)
    # scripts/qa_breakdown.py re-reads the question file: its totals must be the task's metrics
    total, right = runpy.run_path(str(BREAKDOWN))["tally"]([tmp_path / "oracle"])
    groups = {
        "test/acc/descriptive": [k for k in total if k.startswith("descriptive ")],
        "test/option_acc": [k for k in total if " option: " in k],
        "test/question_acc": [k for k in total if k.endswith(" question")],
    }
    groups |= {f"test/acc/{t}": [f"{t} question"] for t in ("explanatory", "predictive", "counterfactual")}
    for metric, kinds in groups.items():
        counted = sum(total[k] for k in kinds)
        assert (metric in oracle) == (counted > 0)  # the task leaves out a metric with nothing to count
        if counted:
            assert sum(right[k][1] for k in kinds) / counted == pytest.approx(oracle[metric])
    # scripts/collision_visibility.py reads the same run: discs of radius 0.5 barely overlap
    pairs = runpy.run_path(str(VISIBILITY))["split_pairs"](tmp_path / "oracle")
    assert set(pairs) == {"train", "test"} and all(len(p) and p[:, 0].min() > 0.8 for p in pairs.values())
    tiny_frames = ["--model.channels", "[4, 4, 4]", "--model.object_dim", "8"]
    frames = run("aloe-frames-clevrer_lite", tmp_path / "frames", *cache, *TINY_ALOE, *tiny_frames)
    assert 0 <= frames["test/acc"] <= 1


def test_slot_recipe_on_a_trained_sfa_run_and_end_to_end(tmp_path, cache, capsys):
    assert main(["run", "aloe-sfa-clevrer_lite", "--run-dir", str(tmp_path / "no_encoder")]) == 2
    assert "train it first with `attnlab run sfa-clevrer_lite" in capsys.readouterr().err
    sfa = tmp_path / "sfa"
    encoder = ["--trainer.max_steps", "1", "--trainer.val_every", "1", "--data.batch_size", "2"]
    args = [*QUIET, *TINY_DATA, *cache, *TINY_SFA, *encoder]
    assert main(["run", "sfa-clevrer_lite", "--run-dir", str(sfa), *args]) == 0
    assert {"test/fg_ari", "test/mota", "test/recon_mse"} <= set(
        json.loads((sfa / "metrics.json").read_text())
    )
    slots = ["--data.encoder", str(sfa), "--model.object_dim", "7", "--model.standardize", "true", *TINY_ALOE]
    metrics = run("aloe-sfa-clevrer_lite", tmp_path / "aloe_sfa", *cache, *slots)
    assert 0 <= metrics["test/acc"] <= 1
    weights = load_file(tmp_path / "aloe_sfa" / "model.safetensors")  # the scale the task fitted, saved
    assert weights["token_scale.fitted"] and not torch.equal(weights["token_scale.std"], torch.ones(7))
    root = Path(cache[1])
    assert len(list(root.glob("*/.attnlab-cache/latents-*.safetensors"))) == 3  # one per split
    # end to end: the encoder inside the model, trained by the question loss
    e2e = ["--model.name", "aloe-slots", "--model.encoder", str(sfa), "--data.encoder", "frames"]
    run("aloe-sfa-clevrer_lite", tmp_path / "e2e", *cache, *TINY_ALOE, "--model.object_dim", "7", *e2e)
    # fine-tuning: Aloe starts from the run trained on the frozen latents, its token scale too
    tuned = run(
        "aloe-sfa-clevrer_lite",
        tmp_path / "tuned",
        *cache,
        *slots,
        *e2e,
        "--model.aloe_init",
        str(tmp_path / "aloe_sfa"),
    )
    assert 0 <= tuned["test/acc"] <= 1


def test_repeated_clips_keeps_one_clip_per_run():
    a, b = torch.zeros(2, 3), torch.ones(2, 3)
    unique, inverse = repeated_clips(torch.stack([a, a, b, a]))
    assert torch.equal(unique, torch.stack([a, b, a])) and inverse.tolist() == [0, 0, 1, 2]
    empty, index = repeated_clips(torch.zeros(0, 2, 3))
    assert empty.shape == (0, 2, 3) and index.shape == (0,)


def test_aloe_slots_encodes_each_repeated_clip_once():
    model = AloeSlots(AloeSlotsConfig(encoder="sfa", width=16, depth=1, num_heads=2, head_hidden=16)).eval()
    inputs = model.example_inputs(batch_size=3)
    video = inputs["video"][[0, 0, 1, 2, 2]]  # questions 0-1 and 3-4 share a video
    question, choices = inputs["question"][[0, 1, 2, 0, 1]], inputs["choices"][[0, 1, 2, 0, 1]]
    seen = []
    model.encoder.register_forward_hook(lambda module, args, out: seen.append(args[0].shape[0]))
    with torch.no_grad():
        batched = model(video, question, choices=choices).choice_logits
        alone = torch.cat(
            [
                model(video[i : i + 1], question[i : i + 1], choices=choices[i : i + 1]).choice_logits
                for i in range(5)
            ]
        )
    assert seen[0] == 3  # three distinct clips, not five
    torch.testing.assert_close(batched, alone, rtol=1e-5, atol=1e-6)


def test_aloe_slots_starts_from_an_aloe_run(tmp_path):
    sizes = {"width": 16, "depth": 1, "num_heads": 2, "head_hidden": 16}
    trained = Aloe(AloeConfig(object_dim=19, **sizes))
    config = {"task": {"name": "video-qa"}, "data": {"name": "clevrer-qa"}}
    config["model"] = {"name": "aloe", "object_dim": 19, **sizes}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    save_file(trained.state_dict(), tmp_path / "model.safetensors")
    model = build_model("aloe-slots", AloeSlotsConfig(encoder="sfa", aloe_init=str(tmp_path), **sizes))
    for name, value in trained.state_dict().items():
        assert torch.equal(model.aloe.state_dict()[name], value), name
    with pytest.raises(
        InputError, match=r"model\.aloe_init \(an aloe run's weights\) does not fit the model"
    ):
        build_model(
            "aloe-slots", AloeSlotsConfig(encoder="sfa", aloe_init=str(tmp_path), **(sizes | {"width": 32}))
        )
    with pytest.raises(InputError, match=r"model\.aloe_init\.init_from: no run folder"):
        build_model("aloe-slots", AloeSlotsConfig(encoder="sfa", aloe_init=str(tmp_path / "missing")))
    with pytest.raises(ConfigError, match=r"model\.aloe_init\.init_from is loaded by the engine"):
        AloeSlots(AloeSlotsConfig(encoder="sfa", aloe_init=str(tmp_path), **sizes))


def test_aloe_slots_brings_the_aloe_run_s_token_scale_along(tmp_path):
    sizes = {"width": 16, "depth": 1, "num_heads": 2, "head_hidden": 16}
    torch.manual_seed(0)
    trained = Aloe(AloeConfig(object_dim=19, standardize=True, **sizes)).eval()
    trained.token_scale.fit(torch.randn(50, 19) * 3 + 1)
    config = {"task": {"name": "video-qa"}, "data": {"name": "clevrer-qa"}}
    config["model"] = {"name": "aloe", "object_dim": 19, "standardize": True, **sizes}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    save_file(trained.state_dict(), tmp_path / "model.safetensors")
    tuned = AloeSlotsConfig(encoder="sfa", aloe_init=str(tmp_path), standardize=True, **sizes)
    model = build_model("aloe-slots", tuned).eval()
    inputs = model.example_inputs(batch_size=2)
    with torch.no_grad():
        tokens, _ = object_latents(model.encoder, inputs["video"])  # (B, T, K, 19) unscaled
        expected = trained(tokens, inputs["question"]).answer_logits  # the aloe run on the extracted tokens
        out = model(inputs["video"], inputs["question"]).answer_logits
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-6)
    with pytest.raises(ConfigError, match=r"trained with standardize true: set --model\.standardize true"):
        build_model("aloe-slots", AloeSlotsConfig(encoder="sfa", aloe_init=str(tmp_path), **sizes))
    with pytest.raises(ConfigError, match=r"aloe-slots takes the token scale from model\.aloe_init"):
        AloeSlots(AloeSlotsConfig(encoder="sfa", standardize=True, **sizes))


def test_aloe_slots_trains_the_encoder(tmp_path):
    model = AloeSlots(AloeSlotsConfig(encoder="sfa", width=16, depth=1, num_heads=2, head_hidden=16))
    inputs = model.example_inputs(batch_size=2)
    out = model(inputs["video"], inputs["question"])
    assert out.answer_logits.shape == (2, model.config.answer_vocab_size)
    out.answer_logits.sum().backward()
    assert model.encoder.posterior.weight.grad.abs().sum() > 0
    with pytest.raises(ConfigError, match=r"model\.object_dim must be 19"):
        AloeSlots(AloeSlotsConfig(encoder="sfa", object_dim=16))


def test_qa_breakdown_prior_is_per_question_text_then_per_kind():
    priors = runpy.run_path(str(BREAKDOWN))["priors"]
    colour, shape = ("kind", "What colour?", "red"), ("kind", "What shape?", "cube")
    prior = priors([[colour], [colour], [shape], [shape], [shape]])
    assert prior["What colour?"] == "red" and prior["What shape?"] == "cube" and prior["kind"] == "cube"


def test_collision_visibility_pairs_on_a_hand_made_annotation():
    # A still at the origin; B slides in and hits A at frame 4; C is hidden (at 1.1 from A) in
    # frames 0 and 2 and shown at (0, 3) in frame 4; B hits C at frame 5, after the clip;
    # D is never shown. The clip is frames 0, 2, 4.
    objects = tuple(ClevrerObject(i, "red", "metal", "cube") for i in (5, 7, 9, 11))
    locations = np.zeros((6, 4, 3), np.float32)
    locations[:, 1, 0] = [4, 3, 2, 1.5, 1.2, 1.0]
    locations[:, 2, 1] = [1.1, 1.1, 1.1, 1.1, 3, 3]
    in_view = np.ones((6, 4), bool)
    in_view[[0, 2], 2] = False
    in_view[:, 3] = False
    collisions = (Collision((5, 7), 4, (0, 0, 0)), Collision((9, 7), 5, (0, 0, 0)))
    annotation = ClevrerAnnotation(0, None, objects, locations, in_view, collisions)
    pairs = runpy.run_path(str(VISIBILITY))["pair_distances"](annotation, [0, 2, 4])
    np.testing.assert_allclose(pairs, [[1.2, 1], [3, 0], [np.hypot(1.2, 3), 0]], rtol=1e-6)


def test_collision_visibility_threshold_and_auc_on_hand_values():
    script = runpy.run_path(str(VISIBILITY))
    pairs = np.array([[1.0, 1], [1.5, 1], [1.5, 0], [2.0, 0], [3.0, 0]])
    # t = 1.0 and t = 1.5 (the tie, both said collided) are right 4 of 5 times: the smaller wins
    assert script["fit_threshold"](pairs) == 1.0
    assert script["rule_accuracy"](pairs, 1.0) == 0.8 and script["rule_accuracy"](pairs, 2.0) == 0.6
    assert script["auc"](pairs) == pytest.approx(5.5 / 6)
    assert script["fit_threshold"](np.array([[2.0, 1], [1.0, 0]])) == -np.inf  # no t beats "never"
