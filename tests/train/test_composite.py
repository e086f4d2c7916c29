"""Composite models: the engine builds the SubModels a recipe names and hands them to the model."""

from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import save_file

from attnlab.errors import ConfigError, InputError
from attnlab.models._submodel import SubModel, as_submodel
from attnlab.models.object_centric.sfa import SFA, SFAConfig
from attnlab.models.video_qa.aloe_slots import AloeSlots, AloeSlotsConfig, object_latents
from attnlab.recipes import recipe_path
from attnlab.runs.spec import resolve
from attnlab.train.composite import build_model, build_submodel

pytestmark = pytest.mark.usefixtures("one_thread")

TINY_SFA = dict(
    num_slots=3,
    latent_dim=4,
    image_size=16,
    encoder_channels=[8, 8],
    encoder_strides=[2, 2],
    dim=16,
    num_heads=2,
    decoder_channels=8,
    decoder_layers=2,
)
TINY_ALOE = dict(object_dim=7, width=16, depth=1, num_heads=2, head_hidden=16)


def finished_run(folder: Path, model_name: str, model: torch.nn.Module, config: dict) -> Path:
    """A finished-looking run folder: config.yaml and model.safetensors."""
    folder.mkdir(parents=True)
    spec = {"seed": 0, "task": {"name": "object-centric"}, "data": {"name": "clevrer-lite"}}
    spec["model"] = {"name": model_name, **config}
    (folder / "config.yaml").write_text(yaml.safe_dump(spec))
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, folder / "model.safetensors")
    return folder


@pytest.fixture
def sfa_run(tmp_path: Path) -> tuple[Path, dict[str, torch.Tensor]]:
    torch.manual_seed(7)
    model = SFA(SFAConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in TINY_SFA.items()}))
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p))  # weights no fresh model has
    run = finished_run(tmp_path / "sfa", "sfa", model, TINY_SFA)
    return run, {k: v.clone() for k, v in model.state_dict().items()}


def aloe_slots(run: Path, *, frozen: bool) -> AloeSlots:
    config = AloeSlotsConfig(encoder=SubModel(init_from=str(run), frozen=frozen), **TINY_ALOE)
    model = build_model("aloe-slots", config)
    assert isinstance(model, AloeSlots)
    return model


def training_step(model: AloeSlots) -> None:
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.1)
    inputs = model.example_inputs(batch_size=2)
    model(inputs["video"], inputs["question"]).answer_logits.square().sum().backward()
    optimizer.step()


@pytest.mark.parametrize("frozen", [True, False])
def test_the_engine_builds_the_encoder_of_a_run_with_its_exact_weights(sfa_run, frozen):
    run, weights = sfa_run
    model = aloe_slots(run, frozen=frozen)
    assert type(model.encoder) is SFA and model.encoder.config.latent_dim == 4
    for name, value in model.encoder.state_dict().items():
        assert torch.equal(value, weights[name]), name
    aloe_before = {k: v.clone() for k, v in model.aloe.state_dict().items()}
    training_step(model)
    assert not model.encoder.training if frozen else model.encoder.training
    changed = [n for n, v in model.encoder.state_dict().items() if not torch.equal(v, weights[n])]
    if frozen:
        assert all(not p.requires_grad and p.grad is None for p in model.encoder.parameters())
        assert changed == []
    else:
        assert all(p.requires_grad for p in model.encoder.parameters()) and changed
    assert any(not torch.equal(v, aloe_before[n]) for n, v in model.aloe.state_dict().items())


def test_slot_pixels_give_aloe_the_extracted_tokens_and_need_their_object_dim(sfa_run, monkeypatch):
    run, _ = sfa_run
    sized = TINY_ALOE | {"object_dim": 4 + 8 + 3}
    model = build_model("aloe-slots", AloeSlotsConfig(encoder=run, slot_pixels=True, **sized)).eval()
    assert isinstance(model, AloeSlots)
    seen, aloe = [], model.aloe.forward

    def recording(objects, *args, **kwargs):
        seen.append(objects)
        return aloe(objects, *args, **kwargs)

    monkeypatch.setattr(model.aloe, "forward", recording)
    inputs = model.example_inputs(batch_size=2)
    with torch.no_grad():
        model(inputs["video"], inputs["question"])
    with torch.no_grad():
        expected = object_latents(model.encoder, inputs["video"], pixels=True)[0]
    assert seen[0].shape[-1] == 15
    torch.testing.assert_close(seen[0], expected)
    with pytest.raises(ConfigError, match=r"object_dim must be 15 for this encoder \(latent_dim \+ 8 \+ 3\)"):
        build_model("aloe-slots", AloeSlotsConfig(encoder=run, slot_pixels=True, **TINY_ALOE))


def test_the_recipe_syntax_names_the_sub_model(sfa_run):
    run, _ = sfa_run
    base = ["--model.name", "aloe-slots", "--data.encoder", "frames"]
    recipe = recipe_path("aloe-sfa-clevrer_lite")
    spec = resolve(recipe, [*base, "--model.encoder.init_from", str(run), "--model.encoder.frozen", "true"])
    assert spec.model_config.encoder == SubModel(name="sfa", init_from=str(run), frozen=True)
    assert "init_from: " + str(run) in spec.yaml_text  # saved with the run, so resume rebuilds it
    # the documented short form: a run folder (or a preset name) as the whole value
    assert resolve(recipe, [*base, "--model.encoder", str(run)]).model_config.encoder == SubModel(
        init_from=str(run)
    )
    assert resolve(recipe, [*base, "--model.encoder", "vimon"]).model_config.encoder == SubModel(name="vimon")
    saved = resolve(recipe, [*base, "--model.encoder", str(run), "--model.aloe_init", str(run)])
    assert saved.model_config.aloe_init == SubModel(init_from=str(run))


def test_bad_sub_model_configs_are_one_line_errors(sfa_run, tmp_path):
    run, _ = sfa_run
    recipe = recipe_path("aloe-sfa-clevrer_lite")
    with pytest.raises(ConfigError) as error:
        resolve(recipe, ["--model.name", "aloe-slots", "--model.encoder.frozn", "true"])
    assert "\n" not in str(error.value)
    with pytest.raises(ConfigError, match=r"unknown model\.encoder key 'frozn' \(did you mean 'frozen'\?\)"):
        as_submodel({"init_from": str(run), "frozn": True}, "model.encoder")
    with pytest.raises(ConfigError, match=r"model\.encoder names no model"):
        AloeSlotsConfig(encoder=SubModel())
    with pytest.raises(ConfigError, match="unknown model 'sfaa'"):
        AloeSlotsConfig(encoder=SubModel(name="sfaa"))
    with pytest.raises(InputError, match=r"model\.encoder\.init_from: no run folder at"):
        build_model("aloe-slots", AloeSlotsConfig(encoder=SubModel(init_from=str(tmp_path / "nowhere"))))
    with pytest.raises(ConfigError, match=r"model\.encoder\.name: a weights file"):
        build_submodel(SubModel(init_from=str(run / "model.safetensors")), "model.encoder")
    with pytest.raises(ConfigError, match=r"model\.encoder is Aloe, not an object-centric model"):
        build_model("aloe-slots", AloeSlotsConfig(encoder=SubModel(name="aloe"), **TINY_ALOE))
    with pytest.raises(ConfigError, match=r"model\.encoder\.init_from is loaded by the engine"):
        AloeSlots(AloeSlotsConfig(encoder=SubModel(init_from=str(run)), **TINY_ALOE))


def test_a_weights_file_with_its_preset_loads_exactly(sfa_run):
    run, weights = sfa_run
    sub = SubModel(name="sfa", init_from=str(run / "model.safetensors"), frozen=True)
    with pytest.raises(InputError, match="does not fit the model"):
        build_submodel(sub, "model.encoder")  # the sfa preset is larger than the tiny run
    model = build_submodel(SubModel(init_from=str(run), frozen=True), "model.encoder")
    assert not model.training and all(torch.equal(v, weights[k]) for k, v in model.state_dict().items())


def test_a_frozen_sub_model_runs_in_eval_mode_whatever_its_parent_says():
    from attnlab.models._submodel import freeze

    inner = freeze(torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Dropout(0.5)))
    parent = torch.nn.Sequential(inner, torch.nn.Linear(4, 2)).train()
    assert inner.training  # the parent's train() reached it ...
    x = torch.randn(3, 4)
    assert torch.equal(parent(x), parent(x))  # ... but it ran in eval mode: no dropout
    assert not inner.training and parent[1].training
    freeze(inner)
    assert len(inner._forward_pre_hooks) == 1  # freezing twice adds no second hook
