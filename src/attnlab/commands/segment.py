"""``attnlab segment``: seed 004's iterative box refinement on one image, with a trained SAM.

The SAM is a finished run folder of a SAM recipe (``sam-cells``, ``sam_prompt_tuning-cells``,
...) or an official checkpoint file (``sam_vit_b_01ec64.pth``; ``--preset`` names its size).
The image is a PNG/JPEG/TIFF file (grey or RGB; 8-bit as it is, 16-bit and float scaled to
0-255 by their range) or ``em-cells:SEED``, a generated EM image whose cells give the default boxes.
Boxes come as text, one ``x0 y0 x1 y1`` per line (commas or spaces; ``#`` starts a comment), in a
file or inline with ``;`` between boxes, in the image's pixel-edge coordinates.

Writes into ``out``: ``masks.png`` (0 background, i + 1 where box i's mask is; 16-bit),
``masks.npz`` (every box's final and first mask, the prompts of each iteration, change rates,
iteration counts), ``iterations.png`` (the prompts per iteration and the final masks) and
``segment.json`` (the settings and, per box, its given and final box and its iterations).
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from attnlab.errors import InputError, unknown
from attnlab.files import atomic_write
from attnlab.models.sam.boxes import check_boxes, jitter_boxes
from attnlab.models.sam.iterative import IterativeConfig, IterativeResult, iterative_inference
from attnlab.models.sam.sam import SAM_VIT_B, SAM_VIT_H, SAM_VIT_L, Sam, SamConfig
from attnlab.models.sam.tuning import SamTuning
from attnlab.runs import rundir
from attnlab.runs.official import load_official_sam
from attnlab.runs.spec import resolve
from attnlab.runs.weights import load_final_weights
from attnlab.train.composite import build_model
from attnlab.train.sam_figures import label_image, plot_iterations

PRESETS: dict[str, SamConfig] = {"vit_b": SAM_VIT_B, "vit_l": SAM_VIT_L, "vit_h": SAM_VIT_H}
GENERATED = "em-cells:"  # image argument prefix: a generated EM image of that seed


@dataclass(frozen=True)
class Segmented:
    out: Path
    labels: Path  # masks.png
    arrays: Path  # masks.npz
    figure: Path  # iterations.png
    summary: Path  # segment.json
    iterations: list[int]  # decoder passes per box


def segment(
    model_source: str | Path,
    image_source: str,
    boxes: str | None,
    out: str | Path,
    *,
    iterative: IterativeConfig,
    jitter: float = 0.0,
    seed: int = 0,
    preset: str = "vit_b",
) -> Segmented:
    """Refine ``boxes`` on the image with the SAM of ``model_source``; see the module docstring."""
    iterative.check()
    model = load_sam(Path(model_source).expanduser(), preset).eval()
    image, own_boxes = read_image(image_source)
    size = (int(image.shape[1]), int(image.shape[2]))
    given = parse_boxes(boxes) if boxes is not None else own_boxes
    if given is None:
        raise InputError("--boxes is needed for an image file (only em-cells:SEED images come with boxes)")
    check_boxes(given, size, "--boxes")
    prompts = jitter_boxes(given, jitter, size, torch.Generator().manual_seed(seed)) if jitter else given
    result = iterative_inference(model, image, prompts, iterative)
    folder = Path(out).expanduser()
    settings = {"model": str(model_source), "image": image_source, "jitter": jitter, "seed": seed}
    return _write(folder, image, result, {**settings, **asdict(iterative)})


def load_sam(source: Path, preset: str) -> Sam:
    """A finished SAM run folder's model (a tuning run's inner SAM), or an official checkpoint file."""
    if source.is_file():
        if preset not in PRESETS:
            raise unknown("--preset", preset, PRESETS)
        return load_official_sam(source, PRESETS[preset])
    if not source.is_dir():
        raise InputError(f"no SAM at {source} (a finished sam-* run folder or an official .pth checkpoint)")
    run = rundir.existing(source)
    spec = resolve(run.config, [])
    model = build_model(spec.model_name, spec.model_config)
    if not isinstance(model, Sam | SamTuning):
        raise InputError(f"{source} is a run of model {spec.model_name}, not a SAM (sam-*)")
    load_final_weights(model, run)
    return model.sam if isinstance(model, SamTuning) else model


def read_image(source: str) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``em-cells:SEED`` or an image file -> (3, H, W) float in 0-255, and its cells' boxes (or None)."""
    if source.startswith(GENERATED):
        from attnlab.data.em_cells import cell_image, generate_em_image

        seed = source.removeprefix(GENERATED)
        if not seed.isdigit():
            raise InputError(f"image '{source}': the seed after '{GENERATED}' must be a whole number")
        grey, instances = generate_em_image(int(seed))
        cells = cell_image(grey, instances, 0)
        return cells.image, cells.boxes
    return _to_rgb(_read_array(Path(source).expanduser()), source), None


def _read_array(path: Path) -> np.ndarray:
    if not path.is_file():
        raise InputError(f"image {path}: file not found")
    try:
        if path.suffix.lower() in (".tif", ".tiff"):
            import tifffile

            return np.asarray(tifffile.imread(path, key=0))
        import imageio.v3 as iio

        return np.asarray(iio.imread(path))
    except Exception as err:  # the readers raise many types for a file that is not an image
        raise InputError(f"image {path}: cannot read it ({' '.join(str(err).split())})") from None


def _to_rgb(array: np.ndarray, name: str) -> torch.Tensor:
    """(H, W), (H, W, 1|3|4) -> (3, H, W) float in 0-255; alpha dropped."""
    if array.ndim == 3 and array.shape[-1] in (1, 3, 4):
        array = array[..., :3] if array.shape[-1] != 1 else array[..., 0]
    if array.ndim not in (2, 3) or min(array.shape[:2]) < 2:
        raise InputError(f"image {name}: shape {array.shape} is not a grey or RGB image (H, W[, 3])")
    values = torch.from_numpy(array.astype(np.float64))
    if not torch.isfinite(values).all():
        raise InputError(f"image {name}: NaN or inf pixel values")
    if array.dtype != np.uint8:  # 16-bit or float: the image's own range to 0-255
        low, high = values.min(), values.max()
        values = (values - low) / (high - low).clamp(min=1e-12) * 255
    image = values.float()
    return (
        image[None].expand(3, -1, -1).contiguous()
        if image.dim() == 2
        else image.permute(2, 0, 1).contiguous()
    )


_SEPARATOR = re.compile(r"[,\s]+")
_PATH_LIKE = re.compile(r"[/\\]|[A-DF-Za-df-z]")  # a letter other than e/E (exponents): a file name


def parse_boxes(text: str) -> torch.Tensor:
    """A boxes file, or inline boxes with ``;`` between them -> (N, 4) float xyxy."""
    path = Path(text).expanduser()
    if path.is_file():
        name, lines = str(path), path.read_text().splitlines()
    elif _PATH_LIKE.search(text):
        raise InputError(f"--boxes {text}: no such file (or give boxes inline: 'x0 y0 x1 y1; ...')")
    else:
        name, lines = "--boxes", text.split(";")
    rows = [_parse_line(line, name, i + 1) for i, line in enumerate(lines)]
    boxes = [row for row in rows if row is not None]
    if not boxes:
        raise InputError(f"{name}: no boxes (one 'x0 y0 x1 y1' per line)")
    return torch.tensor(boxes, dtype=torch.float32)


def _parse_line(line: str, name: str, number: int) -> list[float] | None:
    fields = [f for f in _SEPARATOR.split(line.split("#")[0].strip()) if f]
    if not fields:
        return None
    if len(fields) != 4:
        raise InputError(f"{name}:{number}: {len(fields)} numbers, a box has 4 (x0 y0 x1 y1)")
    try:
        return [float(f) for f in fields]
    except ValueError:
        raise InputError(f"{name}:{number}: '{line.strip()}' is not four numbers") from None


def _write(
    folder: Path, image: torch.Tensor, result: IterativeResult, settings: dict[str, object]
) -> Segmented:
    import imageio.v3 as iio

    folder.mkdir(parents=True, exist_ok=True)
    labels = label_image(result.masks).cpu().numpy().astype(np.uint16)
    labels_path, arrays_path = folder / "masks.png", folder / "masks.npz"
    atomic_write(labels_path, lambda f: f.write(iio.imwrite("<bytes>", labels, extension=".png")))
    arrays = {
        "masks": result.masks.cpu().numpy(),
        "first_masks": result.first_masks.cpu().numpy(),
        "boxes": result.boxes.cpu().numpy(),
        "change": result.change.cpu().numpy(),
        "iterations": result.iterations.cpu().numpy(),
    }
    atomic_write(arrays_path, lambda f: np.savez_compressed(f, **arrays))
    figure = plot_iterations(image, result, folder / "iterations.png", "given prompt boxes")
    iterations = [int(n) for n in result.iterations]
    per_box = [
        {"box": result.boxes[0, i].tolist(), "final_box": result.boxes[-1, i].tolist(), "iterations": n}
        for i, n in enumerate(iterations)
    ]
    summary = {**settings, "image_size": list(image.shape[1:]), "boxes": per_box}
    summary_path = folder / "segment.json"
    atomic_write(summary_path, lambda f: f.write(json.dumps(summary, indent=2).encode()))
    return Segmented(folder, labels_path, arrays_path, figure, summary_path, iterations)
