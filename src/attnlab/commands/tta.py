"""``attnlab tta``: test-time augmentation across domains with StarGAN v2 translators (seed 001).

A classifier f trained on the source domain alone classifies the target domain's test images x.
With a translator (a finished ``stargan2-*`` run: its EMA networks), each x is translated into the
source domain with N style codes from the mapping network and the softmaxes are averaged
(the thesis's Eq. 3)::

    p = 1/N sum_n softmax(f(G(x, F(z_n, source))))      z_n ~ N(0, I)

The N translations of a batch are one batched call (B * N images, ``batch_size`` of them), not a
loop over n: ``benchmarks/stargan.py`` measures both at equal call sizes. Rows:

* ``none``: f on the target images as they are;
* ``crop`` and ``flip+crop``: the usual TTA without translation, the floor: N random 2-pixel
  shifts (reflect-padded) of each image, with a horizontal flip on half of them in the second;
* ``<translator> N=n`` for every translator and every n.

The target images are the translator's own datamodule's test split, target domain (domain 1); the
source is domain 0. Writes ``tta.json`` (rows, settings), ``tta.md`` (the table) and
``translations_<translator>.png`` (the first 8 target test images and their translations with the
first 5 latents) and ``umap.png`` (the classifier's features of 25 test images per class: source,
target, and target translated by each translator) into ``out``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from attnlab.catalog import DATAMODULES
from attnlab.commands.tta_figures import per_class, umap_figure
from attnlab.errors import InputError
from attnlab.files import atomic_write
from attnlab.models.gan.stargan2 import StarGAN2
from attnlab.runs import rundir
from attnlab.runs.spec import RunSpec, resolve
from attnlab.runs.weights import load_final_weights
from attnlab.train.composite import build_model
from attnlab.train.gan_figures import translation_grid

SOURCE, TARGET = 0, 1
SHIFT = 2  # pixels of the crop floor's random shifts
UMAP_PER_CLASS = 25  # the thesis's Fig. 3: 25 images per class and set
Predict = Callable[[torch.Tensor], torch.Tensor]  # images (B, 3, S, S) -> mean probabilities (B, classes)


@dataclass(frozen=True)
class Row:
    method: str
    n: int  # augmented copies per image (1 without augmentation)
    accuracy: float
    images: int


@dataclass(frozen=True)
class TTAResult:
    rows: list[Row]
    out: Path
    table: Path  # tta.md
    summary: Path  # tta.json
    figures: list[Path]


def _load(run_dir: Path, what: str) -> tuple[nn.Module, RunSpec]:
    if not run_dir.is_dir():
        raise InputError(f"{what} {run_dir}: no such run folder")
    run = rundir.existing(run_dir)
    spec = resolve(run.config, [])
    model = build_model(spec.model_name, spec.model_config)
    load_final_weights(model, run)
    return model.eval(), spec


def load_translator(run_dir: Path) -> tuple[StarGAN2, RunSpec]:
    model, spec = _load(run_dir, "translator")
    if not isinstance(model, StarGAN2):
        raise InputError(f"translator {run_dir} is a run of {spec.model_name}, not a StarGAN v2 (stargan2-*)")
    if model.config.num_domains != 2:
        raise InputError(
            f"translator {run_dir} has {model.config.num_domains} domains; tta needs source and target"
        )
    return model, spec


def load_classifier(run_dir: Path, num_classes: int) -> nn.Module:
    model, spec = _load(run_dir, "classifier")
    classes = getattr(spec.model_config, "num_classes", None)
    if classes != num_classes:
        raise InputError(
            f"classifier {run_dir} ({spec.model_name}, data {spec.data_name}) has {classes} classes; "
            f"the translator's data has {num_classes}"
        )
    return model


def held_out_domains(spec: RunSpec) -> tuple[dict[int, tuple[torch.Tensor, torch.Tensor]], int]:
    """The translator's datamodule's test split by domain: {domain: (images (N, 3, S, S) in [-1, 1],
    labels (N,))}, and the number of classes."""
    if spec.data_name is None:
        raise InputError("the translator's run names no data")
    data = DATAMODULES.get(spec.data_name).cls(seed=spec.seed, **spec.data_args)
    test = data.build("test")
    examples = [test[i] for i in range(len(test))]
    domains = {}
    for d in (SOURCE, TARGET):
        mine = [e for e in examples if int(e["domains"]) == d]
        if not mine:
            raise InputError(f"the translator's data ({spec.data_name}) has no test images of domain {d}")
        domains[d] = (torch.stack([e["images"] for e in mine]), torch.stack([e["labels"] for e in mine]))
    return domains, data.num_classes


def check_images_fit(images: torch.Tensor, translator: StarGAN2, name: str) -> None:
    size = translator.config.img_size
    if images.shape[1:] != (3, size, size):
        raise InputError(
            f"translator {name} takes (3, {size}, {size}) images; "
            f"the target images are {tuple(images.shape[1:])}"
        )


def _probabilities(classifier: nn.Module, images: torch.Tensor) -> torch.Tensor:
    return classifier(images.clamp(-1, 1)).logits.softmax(-1)


def translated_probabilities(
    classifier: nn.Module, translator: StarGAN2, images: torch.Tensor, z: torch.Tensor
) -> torch.Tensor:
    """Eq. 3 for a batch: images (B, 3, S, S), latents (N, latent_dim) -> mean softmax (B, classes),
    the B * N translations in one call."""
    b, n = len(images), len(z)
    tiled = images.repeat_interleave(n, dim=0)  # (B * N, 3, S, S): image i's n copies together
    codes = z.repeat(b, 1)  # (B * N, latent_dim): z_0..z_{N-1} for every image
    source = torch.full((b * n,), SOURCE, dtype=torch.int64, device=images.device)
    fake = translator.translate(tiled, source, codes)
    return _probabilities(classifier, fake).view(b, n, -1).mean(1)


def shifted_probabilities(
    classifier: nn.Module, images: torch.Tensor, n: int, flip: bool, generator: torch.Generator
) -> torch.Tensor:
    """The floor: mean softmax over n random shifts (and flips) of each image: (B, classes)."""
    h, w = images.shape[-2:]
    padded = F.pad(images, (SHIFT,) * 4, mode="reflect")
    total = torch.zeros(())
    for _ in range(n):
        dy, dx = (int(v) for v in torch.randint(0, 2 * SHIFT + 1, (2,), generator=generator))
        view = padded[:, :, dy : dy + h, dx : dx + w]
        if flip and bool(torch.rand((), generator=generator) < 0.5):
            view = view.flip(-1)
        total = total + _probabilities(classifier, view)
    return total / n


@torch.no_grad()
def tta(
    classifier_dir: Path,
    translator_dirs: list[Path],
    out: Path,
    *,
    ns: tuple[int, ...] = (1, 10),
    seed: int = 0,
    batch_size: int = 200,
    umap: bool = True,
) -> TTAResult:
    """Accuracy of the classifier on the target test images, per row of the module docstring."""
    if not translator_dirs:
        raise InputError("tta needs at least one --translator run")
    if not ns or min(ns) < 1:
        raise InputError(f"--n must be whole numbers >= 1, got {list(ns)}")
    translators = [load_translator(d) for d in translator_dirs]
    domains, num_classes = held_out_domains(translators[0][1])
    images, labels = domains[TARGET]
    classifier = load_classifier(classifier_dir, num_classes)
    names = _names(translator_dirs)
    for (translator, _), name in zip(translators, names, strict=True):
        check_images_fit(images, translator, name)
    rows = [_row("none", 1, images, labels, batch_size, partial(_probabilities, classifier))]
    for flip in (False, True):
        shifts = partial(
            shifted_probabilities,
            classifier,
            n=max(ns),
            flip=flip,
            generator=torch.Generator().manual_seed(seed),
        )
        rows.append(_row("flip+crop" if flip else "crop", max(ns), images, labels, batch_size, shifts))
    figures = []
    for (translator, _), name in zip(translators, names, strict=True):
        z = torch.randn(max(ns), translator.config.latent_dim, generator=torch.Generator().manual_seed(seed))
        for n in ns:
            translated = partial(translated_probabilities, classifier, translator, z=z[:n])
            # batch_size counts translations: B * N of them per call (larger calls only cost memory on a CPU)
            rows.append(_row(name, n, images, labels, max(1, batch_size // n), translated))
        figures.append(
            translation_grid(
                translator, images, ("source", "target"), SOURCE, z, out / f"translations_{name}.png"
            )
        )
    if umap:
        figures.append(_umap(classifier, translators, names, domains, seed, out / "umap.png"))
    settings = {
        "classifier": str(classifier_dir),
        "translators": [str(d) for d in translator_dirs],
        "seed": seed,
    }
    return _write(out, rows, settings, figures)


def _umap(
    classifier: nn.Module,
    translators: list[tuple[StarGAN2, RunSpec]],
    names: list[str],
    domains: dict[int, tuple[torch.Tensor, torch.Tensor]],
    seed: int,
    path: Path,
) -> Path:
    """The classifier's features of 25 test images per class of the source, the target, and the
    target translated into the source style by each translator (its first latent)."""
    picked = {}
    for d, name in ((SOURCE, "source"), (TARGET, "target")):
        images, labels = domains[d]
        keep = per_class(labels, UMAP_PER_CLASS, seed)
        picked[name] = (images[keep], labels[keep])
    sets = {name: (classifier(x).features, y) for name, (x, y) in picked.items()}
    x, y = picked["target"]
    z = torch.randn(1, translators[0][0].config.latent_dim, generator=torch.Generator().manual_seed(seed))
    for (translator, _), name in zip(translators, names, strict=True):
        fake = translator.translate(x, torch.full((len(x),), SOURCE), z.expand(len(x), -1))
        sets[f"target -> source ({name})"] = (classifier(fake.clamp(-1, 1)).features, y)
    return umap_figure(sets, path, seed)


def _row(
    method: str, n: int, images: torch.Tensor, labels: torch.Tensor, batch_size: int, predict: Predict
) -> Row:
    """The accuracy of ``predict``'s mean probabilities over the images, batch by batch."""
    correct = 0
    for start in range(0, len(images), batch_size):
        probs = predict(images[start : start + batch_size])
        correct += int((probs.argmax(-1) == labels[start : start + batch_size]).sum())
    return Row(method, n, correct / len(images), len(images))


def _names(dirs: list[Path]) -> list[str]:
    names = [d.resolve().name for d in dirs]
    return names if len(set(names)) == len(names) else [f"{i}-{n}" for i, n in enumerate(names)]


def _write(out: Path, rows: list[Row], settings: dict[str, object], figures: list[Path]) -> TTAResult:
    out.mkdir(parents=True, exist_ok=True)
    lines = ["| method | N | accuracy (%) | images |", "| --- | ---: | ---: | ---: |"]
    lines += [f"| {r.method} | {r.n} | {100 * r.accuracy:.2f} | {r.images} |" for r in rows]
    table = out / "tta.md"
    text = "\n".join(lines) + "\n"
    atomic_write(table, lambda f: f.write(text.encode()))
    summary = out / "tta.json"
    payload = json.dumps({"settings": settings, "rows": [asdict(r) for r in rows]}, indent=2)
    atomic_write(summary, lambda f: f.write(payload.encode()))
    return TTAResult(rows, out, table, summary, figures)
