"""The clevrer-qa datamodule: question items over oracle features, frames or cached slot latents."""

import json
import shutil
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import save_file

from attnlab.data import clevrer_qa
from attnlab.data._registry import DATAMODULES
from attnlab.data.clevrer import COLORS, MATERIALS, SHAPES, read_annotation
from attnlab.data.clevrer_lite import QUESTION_WORDS, annotation_path, generate_video, tokenize, video_path
from attnlab.data.clevrer_lite.questions import QUESTION_TYPES
from attnlab.data.clevrer_lite.vocab import ANSWERS
from attnlab.data.clevrer_lite.writer import write_video
from attnlab.data.clevrer_lite_data import generator_config
from attnlab.data.clevrer_qa import ORACLE_DIM, ClevrerQAData
from attnlab.data.cluster_tokens import CLUSTER_TOKEN_DIM, cluster_tokens
from attnlab.errors import ConfigError, InputError
from attnlab.models._submodel import SubModel
from attnlab.models.object_centric.sfa import SFA, SFAConfig
from attnlab.models.video_qa.aloe import Aloe, AloeConfig
from attnlab.models.video_qa.aloe_slots import object_latents
from attnlab.models.video_qa.mask_pixels import mask_pixels
from attnlab.train.composite import attach_submodels, build_submodel
from attnlab.train.video_qa import fit_token_scale

SIZES = dict(train_size=3, val_size=1, test_size=1)
TINY_SFA = dict(
    num_slots=3,
    latent_dim=4,
    encoder_channels=[8, 8],
    encoder_strides=[2, 2],
    dim=16,
    num_heads=2,
    decoder_channels=8,
    decoder_layers=2,
)


pytestmark = pytest.mark.usefixtures("one_thread")  # small models: threads only add overhead


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    """A generated folder of 5 videos (the datamodule makes it; later tests read it with ``root``)."""
    cache = tmp_path_factory.mktemp("clevrer_qa_cache")
    data = ClevrerQAData(seed=0, cache_dir=str(cache), workers=1, **SIZES)
    return data.source.folder.root


def qa(root: Path, **kwargs) -> ClevrerQAData:
    return ClevrerQAData(seed=0, root=str(root), **(SIZES | kwargs))


def copy_of(root: Path, tmp_path: Path) -> Path:
    out = tmp_path / "copy"
    shutil.copytree(root, out, ignore=shutil.ignore_patterns(".attnlab-cache"))
    return out


def sfa_run(folder: Path, seed: int) -> Path:
    """A finished-looking SFA run folder (config.yaml + model.safetensors), untrained."""
    torch.manual_seed(seed)
    model = SFA(SFAConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in TINY_SFA.items()}))
    folder.mkdir(parents=True)
    config = {"seed": 0, "task": {"name": "object-centric"}, "model": {"name": "sfa", **TINY_SFA}}
    config["data"] = {"name": "clevrer-lite"}
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, folder / "model.safetensors")
    return folder


def test_registered():
    assert DATAMODULES.get("clevrer-qa").cls is ClevrerQAData


def test_items_descriptive_and_multiple_choice(root):
    data = qa(root)
    train = data.dataset("train")
    items = [train[i] for i in range(len(train))]
    assert {int(x["scene_index"]) for x in items} == {0, 1, 2}
    entries = {e["scene_index"]: e["questions"] for e in json.loads((root / "questions.json").read_text())}
    assert len(items) == sum(len(entries[s]) for s in (0, 1, 2))
    words = ("<pad>", *QUESTION_WORDS)
    for item, q in zip(items, [q for s in (0, 1, 2) for q in entries[s]], strict=True):
        assert item["objects"].shape == (11, 6, ORACLE_DIM) and item["question"].shape == (24,)
        assert [words[i] for i in item["question"] if i] == tokenize(q["question"])
        assert QUESTION_TYPES[int(item["question_type"])] == q["question_type"]
        assert item["choices"].shape == (4, 16) and item["choice_labels"].shape == (4,)
        if q["question_type"] == "descriptive":
            assert ANSWERS[int(item["answer"])] == q["answer"]
            assert not item["choices"].any() and not item["choice_labels"].any()
        else:
            assert int(item["answer"]) == -1
            n = len(q["choices"])
            labels = [1.0 if c["answer"] == "correct" else 0.0 for c in q["choices"]]
            assert item["choice_labels"].tolist() == labels + [0.0] * (4 - n)
            assert [words[i] for i in item["choices"][0] if i] == tokenize(q["choices"][0]["choice"])
            assert not item["choices"][n:].any()
    assert {int(x["question_type"]) for x in items} >= {0}
    assert data.input_kind == "objects" and data.object_dim == ORACLE_DIM


def test_oracle_features_equal_the_annotation(root):
    item = qa(root).dataset("val")[0]
    assert int(item["scene_index"]) == 3
    ann = read_annotation(annotation_path(root, 3))
    frames = list(range(0, 33, 3))  # 11 frames every 3rd
    objects = item["objects"]
    n = len(ann.objects)
    for k, obj in enumerate(ann.objects):
        onehot = objects[0, k, : ORACLE_DIM - 3]
        assert onehot.sum() == 3
        assert COLORS[int(onehot[:8].argmax())] == obj.color
        assert MATERIALS[int(onehot[8:10].argmax())] == obj.material
        assert SHAPES[int(onehot[10:13].argmax())] == obj.shape
        assert torch.equal(objects[:, k, : ORACLE_DIM - 3], onehot.expand(11, -1))
    assert torch.equal(objects[:, :n, 13:15], torch.from_numpy(ann.locations[frames, :, :2]))
    assert torch.equal(objects[:, :n, 15], torch.from_numpy(ann.in_view[frames]).float())
    assert not objects[:, n:].any()  # zero padding


def test_frames_items_hold_the_video(root):
    data = qa(root, encoder="frames")
    item = data.dataset("test")[0]
    assert "objects" not in item and item["video"].shape == (11, 3, 64, 64)
    frames = generate_video(generator_config(64, 6), 0, 4).frames[0:33:3]
    assert (item["video"].permute(0, 2, 3, 1) * 255 - torch.from_numpy(frames)).abs().mean() < 4
    assert data.input_kind == "video" and data.object_dim is None


def slots(root: Path, run: Path, **kwargs) -> ClevrerQAData:
    """The datamodule on a run's slots, its encoder built and attached as the engine does."""
    data = qa(root, encoder=str(run), **kwargs)
    attach_submodels(data)
    return data


def test_slot_latents_are_extracted_once_cached_and_keyed_by_the_run(root, tmp_path, monkeypatch):
    run = sfa_run(tmp_path / "sfa", seed=1)
    data = slots(root, run, encoder_batch_size=2)
    assert data.submodels() == {"encoder": SubModel(init_from=str(run), frozen=True)}
    assert data.object_dim == 4 + 3
    val = data.dataset("val")
    encoder = build_submodel(SubModel(init_from=str(run)), "encoder").eval()
    video = qa(root, encoder="frames").dataset("val")[0]["video"]
    with torch.no_grad():
        expected = object_latents(encoder, video[None])[0][0]  # (T, K, D + 3) posterior means
    torch.testing.assert_close(val[0]["objects"], expected, atol=1e-5, rtol=1e-4)
    cached = sorted((root / ".attnlab-cache").glob("latents-*.safetensors"))
    assert len(cached) == 1

    def no_encoder(*args, **kwargs):
        raise AssertionError("the cache should have been read")

    again = slots(root, run)
    monkeypatch.setattr(again._encoder_model, "forward", no_encoder)
    assert torch.equal(again.dataset("val")[0]["objects"], val[0]["objects"])
    monkeypatch.undo()
    other = slots(root, sfa_run(tmp_path / "sfa2", seed=2)).dataset("val")
    assert len(sorted((root / ".attnlab-cache").glob("latents-*.safetensors"))) == 2
    assert not torch.allclose(other[0]["objects"], val[0]["objects"])


def test_slot_pixels_put_the_frames_pixels_under_each_mask_between_latent_and_summary(root, tmp_path):
    run = sfa_run(tmp_path / "sfa", seed=1)
    plain = slots(root, run).dataset("val")[0]["objects"]  # (T, K, 4 + 3)
    data = slots(root, run, slot_pixels=True)
    assert data.object_dim == 4 + 8 + 3
    objects = data.dataset("val")[0]["objects"]  # (T, K, 4 + 8 + 3)
    video = qa(root, encoder="frames").dataset("val")[0]["video"]  # (T, 3, S, S)
    encoder = build_submodel(SubModel(init_from=str(run)), "encoder").eval()
    with torch.no_grad():
        masks = encoder(video[None]).masks  # (1, T, K, 1, S, S)
    torch.testing.assert_close(objects[..., 4:12], mask_pixels(video[None], masks)[0], atol=1e-5, rtol=1e-4)
    assert torch.equal(objects[..., :4], plain[..., :4]) and torch.equal(objects[..., 12:], plain[..., 4:])
    assert len(sorted((root / ".attnlab-cache").glob("latents-pixels-*.safetensors"))) == 1  # its own cache
    for keyword in ("oracle", "frames"):
        with pytest.raises(ConfigError, match="slot_pixels needs a slot encoder's run folder or kmeans"):
            qa(root, encoder=keyword, slot_pixels=True)


def test_the_task_fits_aloe_s_token_scale_on_the_training_split_once(root):
    data = qa(root, encoder="kmeans", kmeans_clusters=5, clip_size=32)
    model = Aloe(AloeConfig(object_dim=CLUSTER_TOKEN_DIM, standardize=True))
    fit_token_scale(data, model)
    train = data.tokens("train").flatten(0, 2).double()  # (N * T * K, D) every token of the split
    assert train.shape[0] == SIZES["train_size"] * 11 * 5  # 11 frames of 5 clusters per video
    scale = model.token_scale
    torch.testing.assert_close(scale.mean.double(), train.mean(0), atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(scale.std.double(), train.std(0, correction=0), atol=1e-6, rtol=1e-6)
    scaled = scale(data.tokens("val")).double()
    by_hand = (data.tokens("val").double() - train.mean(0)) / train.std(0, correction=0)
    torch.testing.assert_close(scaled, by_hand, atol=1e-5, rtol=1e-5)
    scale.mean.fill_(7.0)  # fitted already (as weights from model.aloe_init are): kept
    fit_token_scale(data, model)
    assert (scale.mean == 7.0).all()
    with pytest.raises(ConfigError, match=r"this data gives video: set --model\.standardize false"):
        fit_token_scale(qa(root, encoder="frames"), Aloe(AloeConfig(object_dim=8, standardize=True)))
    with pytest.raises(ConfigError, match=r"data\.encoder frames gives no object tokens"):
        qa(root, encoder="frames").tokens("train")


def test_kmeans_items_hold_each_frames_cluster_tokens_made_once_and_keyed_by_the_count(root, monkeypatch):
    data = qa(root, encoder="kmeans", kmeans_clusters=5, clip_size=32, encoder_batch_size=2)
    assert data.input_kind == "objects" and data.object_dim == CLUSTER_TOKEN_DIM and data.submodels() == {}
    item = data.dataset("val")[0]
    video = qa(root, encoder="frames", clip_size=32).dataset("val")[0]["video"]  # (T, 3, 32, 32)
    torch.testing.assert_close(item["objects"], cluster_tokens(video[None], 5)[0])
    assert item["objects"].shape == (11, 5, CLUSTER_TOKEN_DIM)

    def no_clustering(*args, **kwargs):
        raise AssertionError("the cache should have been read")

    monkeypatch.setattr(clevrer_qa, "cluster_tokens", no_clustering)
    again = qa(root, encoder="kmeans", kmeans_clusters=5, clip_size=32).dataset("val")[0]
    assert torch.equal(again["objects"], item["objects"])
    monkeypatch.undo()
    three = qa(root, encoder="kmeans", kmeans_clusters=3, clip_size=32).dataset("val")[0]["objects"]
    assert three.shape == (11, 3, CLUSTER_TOKEN_DIM)  # another count, another cache
    extent = qa(root, encoder="kmeans", kmeans_clusters=5, clip_size=32, slot_pixels=True)
    assert extent.object_dim == CLUSTER_TOKEN_DIM + 2
    with_extent = extent.dataset("val")[0]["objects"]  # its own cache: the colour, the extent, the summary
    torch.testing.assert_close(with_extent, cluster_tokens(video[None], 5, extent=True)[0])
    assert torch.equal(with_extent[..., :6], item["objects"][..., :6])
    assert torch.equal(with_extent[..., 8:], item["objects"][..., 6:])
    with pytest.raises(ConfigError, match="kmeans_clusters must be >= 1"):
        qa(root, encoder="kmeans", kmeans_clusters=0)
    with pytest.raises(ConfigError, match="runs no model"):
        data.attach("encoder", torch.nn.Linear(2, 2))


def test_the_datamodule_runs_the_encoder_the_engine_built_and_reads_no_run_folder(root, tmp_path):
    run = sfa_run(tmp_path / "sfa", seed=1)
    data = qa(root, encoder=str(run))
    with pytest.raises(ConfigError, match="built by the engine"):
        data.object_dim  # noqa: B018
    with pytest.raises(InputError, match="an object-centric encoder"):
        data.attach("encoder", torch.nn.Linear(2, 2))
    assert qa(root, encoder="frames").submodels() == {} and qa(root).submodels() == {}


def test_encoder_errors_are_one_line(root, tmp_path):
    with pytest.raises(ConfigError, match="train it first with `attnlab run sfa-clevrer_lite"):
        attach_submodels(qa(root, encoder="sfa-clevrer_lite"))
    with pytest.raises(InputError, match="no run folder"):
        attach_submodels(qa(root, encoder=str(tmp_path / "missing")))
    (tmp_path / "unfinished").mkdir()
    with pytest.raises(InputError, match="not a finished run folder"):
        attach_submodels(qa(root, encoder=str(tmp_path / "unfinished")))


def test_an_unknown_word_fails_naming_it_or_is_skipped_and_counted(root, tmp_path):
    copy = copy_of(root, tmp_path)
    entries = json.loads((copy / "questions.json").read_text())
    entries[0]["questions"][1]["question"] = "What colour is the zorble?"
    (copy / "questions.json").write_text(json.dumps(entries))
    with pytest.raises(InputError, match=r"unknown word 'colour'.*What colour is the zorble\?"):
        qa(copy).dataset("train")
    data = qa(copy, skip_broken=True)
    train = data.dataset("train")
    assert data.skipped["train"] == {"unknown word": 1}
    assert len(train) == sum(len(e["questions"]) for e in entries[:3]) - 1


def test_missing_and_too_short_videos_fail_or_are_skipped(root, tmp_path):
    copy = copy_of(root, tmp_path)
    video_path(copy, 1).unlink()
    (copy / "annotations" / "annotation_00000-01000" / "annotation_00001.json").unlink()
    write_video(video_path(copy, 2), generate_video(generator_config(64, 6), 0, 2).frames[:20], fps=8)
    entries = {e["scene_index"]: e["questions"] for e in json.loads((copy / "questions.json").read_text())}
    with pytest.raises(InputError, match=r"scene 1 has questions but no video_00001\.mp4"):
        qa(copy).dataset("train")
    data = qa(copy, encoder="frames", skip_broken=True)
    train = data.dataset("train")
    assert data.skipped["train"] == {"missing video": len(entries[1]), "too short video": len(entries[2])}
    assert {int(x["scene_index"]) for x in train} == {0}
    with pytest.raises(InputError, match=r"video_00002\.mp4 has 20 frames, 31 needed"):
        qa(copy, encoder="frames", train_size=1, val_size=1, test_size=1).dataset("test")


def test_too_long_questions_are_broken(root):
    with pytest.raises(InputError, match=r"data\.max_question_len=3"):
        qa(root, max_question_len=3).dataset("val")
    data = qa(root, max_question_len=3, skip_broken=True)
    with pytest.raises(InputError, match="no usable question"):
        data.dataset("val")
    assert data.skipped["val"]["too long"] > 0


def test_an_encoder_of_smaller_frames_needs_clip_size_and_then_reads_the_same_questions(root, tmp_path):
    config = {k: tuple(v) if isinstance(v, list) else v for k, v in TINY_SFA.items()}
    encoder = SFA(SFAConfig(**config, image_size=32)).eval()
    run = str(tmp_path / "run")  # the engine builds the model from this folder; here it is attached by hand
    with pytest.raises(ConfigError, match=r"trained on 32-pixel frames; set data\.clip_size 32"):
        qa(root, encoder=run).attach("encoder", encoder)
    small, full = qa(root, encoder=run, clip_size=32), qa(root)
    small.attach("encoder", encoder)
    item, same = small.dataset("val")[0], full.dataset("val")[0]
    assert item["objects"].shape == (11, 3, 4 + 3)  # (T, K, latent + centroid and area)
    assert torch.equal(item["question"], same["question"]) and torch.equal(item["answer"], same["answer"])
