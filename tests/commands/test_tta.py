"""``attnlab tta`` on two-step runs of the shipped recipes: the rows, the batched Eq. 3 against a
loop over the style codes, and one-line errors for a wrong classifier, translator or N."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from attnlab.cli import main
from attnlab.commands.tta import (
    check_images_fit,
    held_out_domains,
    load_classifier,
    load_translator,
    shifted_probabilities,
    translated_probabilities,
    tta,
)
from attnlab.commands.tta_figures import per_class
from attnlab.errors import InputError
from attnlab.models import create_model

SMALL = ["--trainer.max_steps", "2", "--trainer.val_every", "2", "--trainer.progress_bar", "false"]
DIGITS = ["--data.val_size", "16", "--data.test_size", "16", "--data.source_train", "64"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tta")
    made = {
        "translator": ("stargan2_class_aware-digits", ["--data.batch_size", "4"]),
        "classifier": ("cnn5-synth_digits", ["--data.batch_size", "16"]),
        "motions": ("san1d-basic_motions", ["--data.batch_size", "4"]),  # 4 classes
    }
    for name, (recipe, extra) in made.items():
        digits = DIGITS if name != "motions" else []
        assert main(["run", recipe, "--run-dir", str(root / name), *SMALL, *digits, *extra]) == 0
    return {name: root / name for name in made}


def test_the_table_has_every_row_and_none_is_the_classifiers_accuracy(runs, tmp_path):
    done = tta(runs["classifier"], [runs["translator"]], tmp_path / "out", ns=(1, 3))
    assert [(r.method, r.n) for r in done.rows] == [
        ("none", 1), ("crop", 3), ("flip+crop", 3), ("translator", 1), ("translator", 3)
    ]  # fmt: skip
    _, spec = load_translator(runs["translator"])
    domains, classes = held_out_domains(spec)
    images, labels = domains[1]
    assert classes == 10 and len(images) == 16 and all(r.images == 16 for r in done.rows)
    classifier = load_classifier(runs["classifier"], classes)
    with torch.no_grad():
        direct = (classifier(images).logits.argmax(-1) == labels).float().mean().item()
    assert done.rows[0].accuracy == pytest.approx(direct)
    saved = json.loads(done.summary.read_text())
    assert [r["accuracy"] for r in saved["rows"]] == [r.accuracy for r in done.rows]
    assert "| translator | 3 |" in done.table.read_text()
    assert [f.name for f in done.figures] == ["translations_translator.png", "umap.png"]
    assert all(f.is_file() for f in done.figures)


def test_batched_translations_equal_a_loop_over_the_style_codes(runs):
    translator, spec = load_translator(runs["translator"])
    domains, classes = held_out_domains(spec)
    images = domains[1][0]
    classifier = load_classifier(runs["classifier"], classes)
    z = torch.randn(4, translator.config.latent_dim, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        batched = translated_probabilities(classifier, translator, images[:5], z)
        source = torch.zeros(5, dtype=torch.int64)
        looped = torch.stack(
            [
                classifier(
                    translator.translate(images[:5], source, z[n].expand(5, -1)).clamp(-1, 1)
                ).logits.softmax(-1)
                for n in range(4)
            ]
        ).mean(0)
    torch.testing.assert_close(batched, looped, rtol=1e-5, atol=1e-6)


def test_shifts_and_flips_leave_a_constant_image_and_average_to_probabilities():
    classifier = create_model("cnn5-digits").eval()
    flat = torch.full((2, 3, 32, 32), 0.3)  # reflect padding, shifts and flips cannot change it
    images = torch.rand(3, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        on_flat = shifted_probabilities(classifier, flat, 6, True, torch.Generator().manual_seed(0))
        torch.testing.assert_close(on_flat, classifier(flat).logits.softmax(-1), rtol=1e-5, atol=1e-6)
        probs = shifted_probabilities(classifier, images, 6, True, torch.Generator().manual_seed(0))
    torch.testing.assert_close(probs.sum(-1), torch.ones(3))
    assert not torch.allclose(probs, classifier(images).logits.softmax(-1))  # the shifts did move


def test_bad_runs_and_n_are_one_line_errors(runs, tmp_path):
    with pytest.raises(InputError, match="has 4 classes; the translator's data has 10"):
        tta(runs["motions"], [runs["translator"]], tmp_path / "a")
    with pytest.raises(InputError, match="not a StarGAN v2"):
        tta(runs["classifier"], [runs["classifier"]], tmp_path / "b")
    with pytest.raises(InputError, match="--n must be"):
        tta(runs["classifier"], [runs["translator"]], tmp_path / "c", ns=(0,), umap=False)
    with pytest.raises(InputError, match="no such run folder"):
        tta(runs["classifier"], [tmp_path / "nowhere"], tmp_path / "d")
    with pytest.raises(InputError, match=r"takes \(3, 64, 64\) images"):
        check_images_fit(torch.zeros(2, 3, 32, 32), create_model("stargan2-32", img_size=64), "big")
    assert (
        main(["tta", str(runs["classifier"]), "--translator", str(runs["motions"]), "--out", str(tmp_path)])
        != 0
    )


def test_per_class_picks_up_to_n_images_of_every_class_reproducibly():
    labels = torch.tensor([0, 1, 1, 2, 2, 2, 0, 1, 2, 2])
    picked = per_class(labels, 2, seed=3)
    counts = torch.bincount(labels[picked], minlength=3).tolist()
    assert counts == [2, 2, 2] and len(set(picked.tolist())) == 6
    assert torch.equal(picked, per_class(labels, 2, seed=3))
    assert torch.bincount(labels[per_class(labels, 10, seed=0)]).tolist() == [2, 3, 5]  # all when fewer
