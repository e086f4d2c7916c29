"""Viewers of generative image models: image GANs with k generators (DCGAN, MAD-GAN, the
collaborative GAN's knowledge transfer graph) and StarGAN v2 translating target digits into the
source domain (the GAN on 2-D points: :mod:`gan_points`)."""

from __future__ import annotations

from typing import Any

import torch

from attnlab.data.datamodule import DataModule
from attnlab.explorer.pictures import png_url, unit
from attnlab.explorer.viewers.base import MAX_EXAMPLES, LoadedRun, NotViewable, input_picture
from attnlab.models.gan.madgan import MultiGAN
from attnlab.train.gan_data import to_gan_images
from attnlab.train.gan_images import GANImagesTask
from attnlab.train.stargan2 import StarGAN2Task

# Example i's latent code is row i of MAX_EXAMPLES codes drawn with this seed by the model's own
# sample_noise: the report's sample grid draws its codes the same way, so its column i is example i.
CODE_SEED = 0
# StarGAN v2: style codes per image and their seed; `attnlab tta` draws its latents with its --seed
# (0 by default) the same way, so these are its first TRANSLATIONS translations of each image.
TRANSLATIONS, STYLE_SEED = 4, 0
SOURCE, TARGET = 0, 1  # the digit domains
GAN_RANGE = (-1.0, 1.0)  # generated and real images, drawn on this scale rather than stretched


# -- image GANs ------------------------------------------------------------------------------------
def gan_examples(data: DataModule) -> list[dict[str, torch.Tensor]]:
    """MAX_EXAMPLES latent codes (``code``: the row of the seeded draw) and, beside each, the test
    image of the same index for the discriminator (``input`` and ``label``, where there is one)."""
    test = data.dataset("test")
    count = len(test)  # type: ignore[arg-type]
    examples = []
    for i in range(MAX_EXAMPLES):
        real: dict[str, torch.Tensor] = test[i] if i < count else {}  # type: ignore[assignment]
        examples.append({"code": torch.tensor(i)} | {k: real[k] for k in ("input", "label") if k in real})
    return examples


def latent_codes(model: MultiGAN) -> torch.Tensor:
    """The examples' codes, (MAX_EXAMPLES, latent_dim): the same on every call."""
    return model.sample_noise(MAX_EXAMPLES, torch.Generator().manual_seed(CODE_SEED))


def _classes(k: int) -> list[str]:
    """The discriminator's k + 1 outputs: which generator made the image, or real (the last)."""
    return [f"G{i}" for i in range(k)] + ["real"]


def _scores(name: str, probs: torch.Tensor) -> tuple[dict[str, Any], str]:
    """One picture's (k + 1,) softmax as a prediction (DCGAN: P(real); else the likeliest output)
    and a note listing every output."""
    classes = _classes(len(probs) - 1)
    if len(probs) == 2:
        best = {"label": f"{name}: real", "p": round(float(probs[1]), 4)}
    else:
        i = int(probs.argmax())
        best = {"label": f"{name}: {classes[i]}", "p": round(float(probs[i]), 4)}
    listed = " · ".join(f"{c} {float(p):.3f}" for c, p in zip(classes, probs, strict=True))
    return best, f"D's softmax on {name}: {listed}"


def view_gan_images(
    loaded: LoadedRun, example: dict[str, torch.Tensor], method: str | None
) -> dict[str, Any]:
    """Every generator's sample for example i's latent code, the discriminator's softmax on each
    (and on a real test image), and the attention maps the knowledge transfer graph compares:
    Q = mean over channels of F^2 at each tapped generator layer, one head per generator."""
    if method is not None:
        raise NotViewable("CAM methods explain class scores; a GAN is shown by its samples and D's softmax")
    task = loaded.task
    assert isinstance(task, GANImagesTask)
    model = task.model
    assert isinstance(model, MultiGAN)
    if "code" not in example:
        return _view_picture(task, model, example["input"])
    z = latent_codes(model)[int(example["code"])][None]  # (1, latent_dim)
    with torch.no_grad():
        out = model(z, averaged=True)  # the samples the run's scores and report are of
    k = task.k
    samples = out.images[0]  # (k, C, H, W) in [-1, 1]
    scored = [_scores(f"G{i}'s sample", p) for i, p in enumerate(out.logits[0].softmax(-1))]
    pictures = [{"png": png_url(samples[i], GAN_RANGE), "caption": f"G{i}'s sample"} for i in range(k)]
    if "input" in example:
        real = to_gan_images(example["input"][None], task.size)  # (1, C, S, S)
        with torch.no_grad():
            scored.append(_scores("the test image", model.discriminator(real)[0].softmax(-1)))
        pictures.append(
            {"png": png_url(real[0], GAN_RANGE), "caption": f"a real test image ({loaded.target(example)})"}
        )
    maps = [
        {
            "name": f"{tap}: Q = mean over channels of F^2 (head = generator)",
            "shape": list(f.shape[-2:]),
            "heads": [unit(q) for q in f[0].square().mean(1)],  # (k, C', h, w) -> (k, h, w)
        }
        for tap, f in out.features.items()
    ]
    notes = [line for _, line in scored]
    notes.append(
        f"z: code {int(example['code'])} of {MAX_EXAMPLES} drawn with seed {CODE_SEED} "
        "(the report's sample grid shows the first codes)"
    )
    if maps:
        notes.append("maps: each generator's Q at the tapped layer (pick the head), drawn over G0's sample")
    elif k > 1:
        notes.append("no generator layers tapped (model.taps): no attention maps to transfer")
    return {
        "input": input_picture(samples[0], GAN_RANGE),
        "pictures": pictures,
        "prediction": [best for best, _ in scored],
        "target": None,
        "maps": maps,
        "notes": notes,
        "methods": [],
    }


def _view_picture(task: GANImagesTask, model: MultiGAN, x: torch.Tensor) -> dict[str, Any]:
    """An uploaded picture, made a test image: what the discriminator says of it."""
    real = to_gan_images(x[None], task.size)  # (1, C, S, S)
    with torch.no_grad():
        best, line = _scores("your picture", model.discriminator(real)[0].softmax(-1))
    return {
        "input": input_picture(real[0], GAN_RANGE),
        "prediction": [best],
        "target": None,
        "maps": [],
        "notes": [line],
        "methods": [],
    }


# -- StarGAN v2 ------------------------------------------------------------------------------------
def target_domain_examples(data: DataModule) -> list[dict[str, torch.Tensor]]:
    """The first target-domain (domain 1) test images with their digits: what `attnlab tta`
    translates into the source domain."""
    test = data.dataset("test")
    examples: list[dict[str, torch.Tensor]] = []
    for i in range(len(test)):  # type: ignore[arg-type]
        item = test[i]
        if int(item["domains"]) == TARGET:  # type: ignore[index]
            examples.append({"input": item["images"], "label": item["labels"]})  # type: ignore[index]
            if len(examples) == MAX_EXAMPLES:
                break
    return examples


def style_latents(latent_dim: int) -> torch.Tensor:
    """The TRANSLATIONS latents z_n, (TRANSLATIONS, latent_dim): the same for every image."""
    return torch.randn(TRANSLATIONS, latent_dim, generator=torch.Generator().manual_seed(STYLE_SEED))


def view_stargan2(loaded: LoadedRun, example: dict[str, torch.Tensor], method: str | None) -> dict[str, Any]:
    """A target-domain image and its translations into the source domain by the EMA networks,
    G(x, F(z_n, source)) for TRANSLATIONS seeded latents; with the class-aware head C, C's class of
    each translation and its softmax averaged over them (the thesis's Eq. 3 with C as the classifier)."""
    if method is not None:
        raise NotViewable("CAM methods explain class scores; StarGAN v2 is shown by its translations")
    task = loaded.task
    assert isinstance(task, StarGAN2Task)
    model = task.stargan
    x = example["input"][None]  # (1, 3, S, S) in [-1, 1]
    z = style_latents(model.config.latent_dim)
    source = torch.full((TRANSLATIONS,), SOURCE, dtype=torch.int64)
    with torch.no_grad():
        fakes = model.translate(x.expand(TRANSLATIONS, -1, -1, -1), source, z)  # (N, 3, S, S)
    pictures = [
        {"png": png_url(fake, GAN_RANGE), "caption": f"into the source domain, latent {n}"}
        for n, fake in enumerate(fakes)
    ]
    prediction: list[dict[str, Any]] = []
    notes = [f"latents: {TRANSLATIONS} drawn with seed {STYLE_SEED}, as `attnlab tta` draws its first"]
    if model.classifier is None:
        notes.append(
            "no class head (a plain StarGAN v2): `attnlab tta` classifies these with a source classifier run"
        )
    else:
        with torch.no_grad():  # C reads the trained generator's encoder: the one it learnt with
            probs = model.classify(torch.cat([fakes, x])).softmax(-1)  # (N + 1, classes)
        mean = probs[:-1].mean(0)
        prediction.append(_class_of("C, mean of the translations", loaded, mean))
        prediction += [_class_of(f"latent {n}", loaded, p) for n, p in enumerate(probs[:-1])]
        top = mean.topk(min(3, len(mean)))
        notes.append(
            "C's softmax averaged over the translations: "
            + " · ".join(
                f"{loaded.name(i)} {float(p):.3f}" for p, i in zip(top.values, top.indices, strict=True)
            )
        )
        untranslated = _class_of("C on the untranslated image", loaded, probs[-1])
        notes.append(f"{untranslated['label']} ({untranslated['p']:.3f})")
    return {
        "input": input_picture(x[0], GAN_RANGE),
        "pictures": pictures,
        "prediction": prediction,
        "target": loaded.target(example),
        "maps": [],
        "notes": notes,
        "methods": [],
    }


def _class_of(name: str, loaded: LoadedRun, probs: torch.Tensor) -> dict[str, Any]:
    i = int(probs.argmax())
    return {"label": f"{name}: {loaded.name(i)}", "p": round(float(probs[i]), 4)}
