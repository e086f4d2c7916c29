"""The distillation task: its terms against an independent computation, what trains, bad input via the CLI."""

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import yaml
from safetensors.torch import save_file

from attnlab.cli import main
from attnlab.errors import ConfigError, InputError
from attnlab.explain import capture
from attnlab.models._submodel import SubModel
from attnlab.models.classifiers.vit import VisionTransformer, ViTConfig
from attnlab.models.vit.classifier import AdaptedViT, AdaptedViTConfig
from attnlab.models.vit.distill import Distillation, DistillationConfig
from attnlab.models.vit.mae import MAE, MAE_TINY_P4, MAEConfig
from attnlab.objectives.distill import DistillConfig
from attnlab.runs.config import OptimConfig
from attnlab.train.composite import build_model
from attnlab.train.distill import DistillationTask

pytestmark = pytest.mark.usefixtures("one_thread")

PRESETS = [
    *("--model.teacher1.init_from", "null", "--model.teacher1.name", "mae-vit-tiny-p4"),
    *("--model.teacher2.init_from", "null", "--model.teacher2.name", "mae-vit-tiny-p4"),
]
SMOKE = [
    *("--trainer.max_steps", "2", "--trainer.val_every", "2", "--trainer.progress_bar", "false"),
    *("--trainer.limit_val_batches", "1", "--trainer.limit_test_batches", "1"),
    *("--data.batch_size", "4", "--data.eval_batch_size", "8"),
]


def task(distill: DistillConfig, seed: int = 0, **config: object) -> DistillationTask:
    torch.manual_seed(seed)
    model = Distillation(DistillationConfig(**config))  # type: ignore[arg-type]
    return DistillationTask(model=model, optim=OptimConfig(), distill=distill)


def batch(n: int = 6, seed: int = 1) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return {
        "input": torch.randn(n, 1, 28, 28, generator=gen),
        "label": torch.randint(0, 10, (n,), generator=gen),
    }


def kl_rows(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """float64 KL(p || q) over the last dim of (rows..., K) probabilities, mean over rows (kl_div)."""
    p, q = p.double().flatten(0, -2), q.double().flatten(0, -2)
    return F.kl_div(q.log(), p, reduction="batchmean")


def test_terms_match_an_independent_computation():
    c = DistillConfig(lambda1=0.3, lambda2=0.25, attention_weight=2.0, kd_weight=0.5, temperature=2.0)
    t = task(c)
    t.eval()  # no dropout anywhere; eval keeps Lightning's logging out of the test
    b = batch()
    with torch.enable_grad():
        terms = t.loss_terms(b)
    net, x, y = t.net, b["input"], b["label"]
    with torch.no_grad():
        with capture(net.student) as rec:
            s = net.student(x).logits
        a_s = rec["vit.blocks.3.attn"]  # (B, 3, 50, 50)
        expected = {"ce_student": F.cross_entropy(s, y)}
        for i, teacher in enumerate(net.teachers, start=1):
            with capture(teacher) as rec:
                logits = teacher(x).logits
            expected[f"ce_teacher{i}"] = F.cross_entropy(logits, y)
            kd = kl_rows(F.softmax(logits / 2, -1), F.softmax(s / 2, -1)) * 4  # T² = 4
            expected[f"kd_teacher{i}"] = 0.5 * (0.3 if i == 1 else 0.7) * kd
            a_t = rec["backbone.blocks.3.attn"]  # (B, 4, 50, 50)
            confidence = [float(a_t[:, h].max(-1).values.mean()) for h in range(4)]
            head = max(range(4), key=lambda h: confidence[h])
            weight = 2.0 * (0.25 if i == 1 else 0.75)
            expected[f"attn_teacher{i}"] = weight * kl_rows(a_t[:, head], a_s[:, i - 1])
    assert set(terms) == set(expected)
    for name, value in expected.items():
        torch.testing.assert_close(terms[name].double(), value.double(), rtol=1e-5, atol=1e-6, msg=name)


def test_attention_is_captured_only_where_its_weight_is_not_zero():
    t = task(DistillConfig(lambda2=0.0, attention_weight=1.0))
    _, _, maps = t._forward(batch()["input"])
    assert maps["teacher1"] is None and maps["teacher2"] is not None and maps["student"].requires_grad
    _, _, maps = task(DistillConfig(attention_weight=0.0))._forward(batch()["input"])
    assert all(m is None for m in maps.values())


def test_baseline_has_zero_kd_and_only_the_teachers_adapted_parts_and_the_student_train():
    t = task(DistillConfig(kd_weight=0.0, attention_weight=1.0))
    net = t.net
    before = {n: p.detach().clone() for n, p in net.named_parameters()}
    net.train()
    opt = torch.optim.SGD([p for p in net.parameters() if p.requires_grad], lr=0.1)
    terms = t._terms(batch())[0]
    assert float(terms["kd_teacher1"].detach()) == 0.0 == float(terms["kd_teacher2"].detach())
    torch.stack(list(terms.values())).sum().backward()
    opt.step()
    for name, p in net.named_parameters():
        teacher_trains = name.startswith(("teacher1.", "teacher2.")) and (
            ".head." in name or ".backbone.blocks.3." in name or ".backbone.norm." in name
        )
        should = name.startswith("student.") or teacher_trains
        assert (not torch.equal(p, before[name])) == should, name
        if not should:
            assert p.grad is None, name
    for teacher in net.teachers:
        assert not teacher.backbone.blocks[0].training and teacher.backbone.blocks[3].training
    # trainable parameters by hand: student (everything) + per teacher last block (12 D² + 13 D), norm, head
    d = 64
    teacher = 12 * d * d + 13 * d + 2 * d + d * 10 + 10
    student = sum(p.numel() for p in net.student.parameters())
    assert sum(p.numel() for p in net.parameters() if p.requires_grad) == student + 2 * teacher


def test_kd_gradient_reaches_only_the_student():
    t = task(DistillConfig(attention_weight=1.0))
    terms = t._terms(batch())[0]
    (terms["kd_teacher1"] + terms["kd_teacher2"] + terms["attn_teacher2"]).backward()
    assert all(p.grad is None for p in t.net.teachers[0].parameters())
    assert all(p.grad is None for p in t.net.teachers[1].parameters())
    assert t.net.student.head.weight.grad is not None
    assert all(k.startswith("model.") for k in t.state_dict())  # the checkpoint holds the model once


def test_bad_heads_and_grids_are_one_line():
    with pytest.raises(ConfigError, match=r"teacher_heads\[1\] = 4 is out of range: teacher2 has 4 heads"):
        task(DistillConfig(teacher_heads=(None, 4)))
    with pytest.raises(ConfigError, match=r"student_heads\[1\] = 3 is out of range: the student has 3 heads"):
        task(DistillConfig(student_heads=(0, 3)))
    with pytest.raises(ConfigError, match=r"unknown task.distill.student_layer 'vit.blocks.9.attn'"):
        task(DistillConfig(student_layer="vit.blocks.9.attn"))
    named = task(DistillConfig(teacher_layers=(None, "backbone.blocks.1.attn"), attention_weight=1.0))
    assert named.teacher_layers == ("backbone.blocks.3.attn", "backbone.blocks.1.attn")
    p7 = MAE(MAEConfig(**{**vars(MAE_TINY_P4), "patch_size": 7}))
    model = Distillation(DistillationConfig(), teacher2=p7)
    with pytest.raises(
        ConfigError, match=r"teacher2's token grid 4x4 \(patch 7\) differs from the student's 7x7"
    ):
        DistillationTask(model=model, optim=OptimConfig(), distill=DistillConfig(attention_weight=1.0))
    # output KD alone needs no common grid; bilinear resampling makes attention KD work
    DistillationTask(model=model, optim=OptimConfig(), distill=DistillConfig(attention_weight=0.0))
    ok = DistillationTask(
        model=model,
        optim=OptimConfig(),
        distill=DistillConfig(attention_weight=1.0, interpolation="bilinear"),
    )
    assert torch.isfinite(ok._terms(batch())[0]["attn_teacher2"])


def finished_run(folder: Path, model_name: str, model: torch.nn.Module, overrides: dict) -> Path:
    """A finished-looking run folder: config.yaml and model.safetensors."""
    folder.mkdir(parents=True)
    spec = {"seed": 0, "task": {"name": "classification"}, "data": {"name": "fashion-mnist"}}
    spec["model"] = {"name": model_name, **overrides}
    (folder / "config.yaml").write_text(yaml.safe_dump(spec))
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, folder / "model.safetensors")
    return folder


def cli_error(args: list[str], capsys: pytest.CaptureFixture[str], tmp_path: Path) -> str:
    assert main(["run", "distill-fmnist", "--run-dir", str(tmp_path / "run"), *SMOKE, *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("attnlab: error:") and len(err.splitlines()) == 1, err
    return err


def test_cli_faults_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    missing = cli_error([], capsys, tmp_path)  # the recipe's default teacher runs are not there
    assert "model.teacher1.init_from: no run folder at runs/dino-fmnist/main" in missing
    err = cli_error([*PRESETS, "--task.distill.teacher_heads", "[null, 9]"], capsys, tmp_path)
    assert "teacher_heads[1] = 9 is out of range" in err
    p7 = finished_run(
        tmp_path / "mae-p7",
        "mae-vit-tiny-p4",
        MAE(MAEConfig(**{**vars(MAE_TINY_P4), "patch_size": 7})),
        {"patch_size": 7},
    )
    err = cli_error(
        [*PRESETS, "--model.teacher2.init_from", str(p7), "--task.distill.attention_weight", "1"],
        capsys,
        tmp_path,
    )
    assert "teacher2's token grid 4x4 (patch 7) differs from the student's 7x7" in err
    config = ViTConfig(
        image_size=28, patch_size=4, in_chans=1, num_classes=10, dim=16, depth=1, num_heads=2, mlp_ratio=2.0
    )
    vit = finished_run(
        tmp_path / "vit",
        "vit-tiny-fashion",
        VisionTransformer(config),
        {"dim": 16, "depth": 1, "num_heads": 2},
    )
    err = cli_error([*PRESETS, "--model.teacher1.init_from", str(vit)], capsys, tmp_path)
    assert "model.teacher1 is a VisionTransformer, which has no backbone()" in err
    assert not (tmp_path / "run").exists()


def test_recipe_runs_from_presets_and_reports_all_three_accuracies(tmp_path: Path):
    from tests.train.test_recipes import needs_missing_data

    if reason := needs_missing_data("distill-fmnist"):
        pytest.skip(reason)
    run = tmp_path / "run"
    args = [*SMOKE, *PRESETS, "--task.distill.attention_weight", "1"]
    assert main(["run", "distill-fmnist", "--run-dir", str(run), *args]) == 0
    metrics = yaml.safe_load((run / "metrics.json").read_text())
    assert {"test/acc", "test/acc_teacher1", "test/acc_teacher2", "test/attn_teacher2"} <= set(metrics)
    assert (run / "figures" / "attention_distance.png").is_file()


def test_adapted_teacher_takes_the_pretrained_runs_encoder_weights(tmp_path: Path):
    torch.manual_seed(3)
    mae = MAE(MAE_TINY_P4)
    with torch.no_grad():
        for p in mae.parameters():
            p.add_(torch.randn_like(p))  # weights no fresh model has
    run = finished_run(tmp_path / "mae", "mae-vit-tiny-p4", mae, {})
    model = build_model("adapted-vit-p4", AdaptedViTConfig(pretrained=SubModel(init_from=str(run))))
    assert isinstance(model, AdaptedViT)
    for name, value in mae.encoder.state_dict().items():
        assert torch.equal(model.backbone.state_dict()[name], value), name
    missing = tmp_path / "runs" / "adapt-fmnist" / "main"
    with pytest.raises(
        InputError, match=r"make it with `attnlab run adapt-fmnist --run-dir .*runs/adapt-fmnist/main`"
    ):
        build_model("adapted-vit-p4", AdaptedViTConfig(pretrained=SubModel(init_from=str(missing))))


@pytest.mark.parametrize("mode", ["linear", "partial-1"])
def test_adapt_recipe_runs_from_a_preset(mode: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    from tests.train.test_recipes import needs_missing_data

    if reason := needs_missing_data("adapt-fmnist"):
        pytest.skip(reason)
    preset = ["--model.pretrained.init_from", "null", "--model.pretrained.name", "mae-vit-tiny-p4"]
    args = [*SMOKE, *preset, "--model.mode", mode]
    assert main(["run", "adapt-fmnist", "--run-dir", str(tmp_path / "run"), *args]) == 0
    trainable = {"linear": "650", "partial-1": "50,762"}[
        mode
    ]  # by hand in tests/models/vit/test_classifier.py
    assert f"({trainable} trainable)" in capsys.readouterr().out


def test_an_adapted_run_is_a_teacher_as_it_was_adapted_and_frozen_it_gets_no_ce(tmp_path: Path):
    torch.manual_seed(4)
    adapted = AdaptedViT(AdaptedViTConfig(mode="linear"))
    run = finished_run(tmp_path / "adapted", "adapted-vit-p4", adapted, {"mode": "linear"})
    sub = SubModel(init_from=str(run), frozen=True)
    with pytest.raises(
        ConfigError, match=r"model.teacher1 is an adapted teacher \(mode linear.*--model.teacher1_mode"
    ):
        build_model("distill-vit-p4", DistillationConfig(teacher1=sub))
    model = build_model("distill-vit-p4", DistillationConfig(teacher1=sub, teacher1_mode="linear"))
    assert isinstance(model, Distillation) and model.teacher1.trainable_parameters() == 0
    for name, value in adapted.state_dict().items():
        assert torch.equal(model.teacher1.state_dict()[name], value), name
    t = DistillationTask(model=model, optim=OptimConfig(), distill=DistillConfig(attention_weight=0.0))
    assert set(t._terms(batch())[0]) == {"ce_student", "ce_teacher2", "kd_teacher1", "kd_teacher2"}
    with pytest.raises(ConfigError, match=r"model.pretrained is a AdaptedViT, which has no backbone\(\)"):
        build_model("adapted-vit-p4", AdaptedViTConfig(pretrained=SubModel(init_from=str(run))))
