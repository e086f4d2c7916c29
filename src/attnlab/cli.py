"""The ``attnlab`` command: list, run, resume, evaluate, import, explore."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from attnlab.errors import AttnlabError, ConfigError, InputError, NonFiniteLossError, did_you_mean
from attnlab.status import say

if TYPE_CHECKING:
    from attnlab.train.engine import Outcome

# Short forms a user reaches for first; they stand for the full config keys.
ALIASES = {
    "--devices": "--trainer.devices",
    "--accelerator": "--trainer.accelerator",
    "--max-steps": "--trainer.max_steps",
    "--precision": "--trainer.precision",
    "--strategy": "--trainer.strategy",
    "--num-nodes": "--trainer.num_nodes",
}


# attnlab.commands.import_official.IMPORTABLE's names (not imported here: it loads torch)
IMPORTABLE_NAMES = ("vimon-official", "sam-official")
PRINT_CONFIG = ("--print_config", "--print-config")  # run: print the resolved config, create nothing


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (no usage block) and no prefix matching of options."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, allow_abbrev=False, **kwargs)

    def error(self, message: str) -> NoReturn:
        command = self.prog.removeprefix("attnlab").strip()  # the subcommand, if any
        where = f"{command}: " if command else ""
        self.exit(2, f"attnlab: error: {where}{_one_line(message)}\n")


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="attnlab", description="Attention models: train, evaluate, explain.")
    sub = p.add_subparsers(dest="command", required=True)
    ls = sub.add_parser("list", help="recipes, models, tasks, datasets and runners")
    ls.add_argument(
        "what", nargs="?", choices=["recipes", "models", "tasks", "datasets", "runners"], default=None
    )
    r = sub.add_parser(
        "run",
        help="train + evaluate + report a recipe",
        epilog="Override any config key: --model.depth 4 --trainer.max_steps 100 --seed 1. "
        "attnlab run RECIPE --help lists the recipe's keys.",
    )
    r.add_argument("recipe", help="a recipe name (attnlab list recipes) or a YAML file")
    r.add_argument("--run-dir", type=Path, default=None, help="run folder (default runs/RECIPE/TIME-seedS)")
    res = sub.add_parser(
        "resume",
        help="continue an unfinished run from its last checkpoint",
        epilog="May change where and how the run trains, e.g. --devices 2 --data.root PATH "
        "--data.num_workers 4 (saved to the run's config.yaml); nothing that changes what it trains.",
    )
    res.add_argument("run_dir", type=Path)
    runs = sub.add_parser("runs", help="the runs under a folder, their states and what to do next")
    runs.add_argument("folder", type=Path, nargs="?", default=Path("runs"))
    runs.add_argument(
        "--clean-failed",
        action="store_true",
        help="remove failed runs and runs killed before their first checkpoint",
    )
    xp = sub.add_parser("explore", help="a local web app to browse runs, their curves, figures and attention")
    xp.add_argument("folder", type=Path, nargs="?", default=Path("runs"))
    xp.add_argument("--host", default="127.0.0.1", help="interface to listen on (default: loopback only)")
    xp.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    xp.add_argument("--open", action="store_true", help="open the page in the browser")
    xp.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow a --host other than loopback; every request then needs the printed token",
    )
    ev = sub.add_parser(
        "evaluate",
        help="test a run's weights again",
        epilog="Override how it is tested (never the model): --task.probe.steps 1500 --data.test_size 256",
    )
    ev.add_argument("run_dir", type=Path)
    ev.add_argument("--weights", choices=["final", "best", "last"], default="final")
    im = sub.add_parser(
        "import",
        help="an official checkpoint as a tested run folder (attnlab evaluate takes it)",
        epilog="Override the data it is tested on: --data.test_size 64 --data.variant occlusion",
    )
    im.add_argument("name", choices=IMPORTABLE_NAMES, help="which checkpoint the file holds")
    im.add_argument("checkpoint", type=Path, help="the checkpoint file (e.g. ckpt_vimon_vmds.pt)")
    im.add_argument("--run-dir", type=Path, default=None, help="run folder (default runs/NAME/TIME-seedS)")
    _abn_maps_parser(sub)
    ex = sub.add_parser(
        "explain",
        help="score explanation methods on a finished classification or LiDAR detection run's test set",
        epilog="Writes RUN/explanations/<time>-<methods>.md/.json/.png. Exit 0 also when some methods "
        "failed (marked in the table, named on stderr); 4 when no method could be scored. A detection3d "
        "run (pointpillars-synthkitti) gets the mAPB table of ODAM, Guided Grad-CAM and Guided ODAM per "
        "class (<time>-points.md/.json, -bev.png, -ply/).",
    )
    ex.add_argument("run_dir", type=Path)
    ex.add_argument("--methods", nargs="+", default=None, help="default: all (abn, gradcam, rollout, ...)")
    ex.add_argument("--metrics", nargs="+", default=None, help="default: deletion insertion pointing energy")
    ex.add_argument(
        "--limit", type=int, default=None, help="test examples (default 100; detection: 32 scenes)"
    )
    ex.add_argument("--layer", default=None, help="CAM target layer (default: the last feature map)")
    ex.add_argument("--targets", choices=["predicted", "label"], default="predicted")
    ex.add_argument("--out", type=Path, default=None, help="folder for the files (default: RUN/explanations)")
    ex.add_argument(
        "--regions",
        choices=["boxes", "foreground"],
        default="boxes",
        help="pointing and energy against the data's object boxes or the images' foreground",
    )
    ex.add_argument(
        "--float64",
        action="store_true",
        help="run the model and the maps in float64 (Grad-CAM++'s exp(score) overflows float32 above 88)",
    )
    ex.add_argument(
        "--no-untrained-floor",
        action="store_true",
        help="detection runs: skip the floor rows made with the run's initial (untrained) weights",
    )
    ex.add_argument("--no-deletion", action="store_true", help="detection runs: skip the deletion test")
    ex.add_argument(
        "--confident",
        type=float,
        default=0.5,
        help="detection runs: the score of the boxes in the second mAPB table and the deletion test",
    )
    _segment_parser(sub)
    _tta_parser(sub)
    se = sub.add_parser(
        "search",
        help="Optuna search of a knowledge-transfer-graph recipe's gates (needs the 'search' extra)",
        epilog="Killed and started again with the same --folder, a search continues. Overrides as for run.",
    )
    se.add_argument("recipe", help="e.g. ktg_gan-fmnist")
    se.add_argument("--trials", type=int, required=True, help="trials in all (finished ones count)")
    se.add_argument("--trial-steps", type=int, default=200, help="training steps of each trial")
    se.add_argument("--folder", type=Path, default=None, help="study folder (default runs/search/RECIPE)")
    se.add_argument("--sampler-seed", type=int, default=0)
    gen = sub.add_parser("generate", help="write a synthetic dataset to a folder (clevrer-lite)")
    gen.add_argument("dataset", choices=["clevrer-lite"])
    gen.add_argument("--out", type=Path, required=True)
    gen.add_argument("--videos", type=int, default=1000)
    gen.add_argument("--seed", type=int, default=0)
    gen.add_argument("--workers", type=int, default=1, help="processes")
    gen.add_argument("--frames", type=int, default=32, help="frames shown (16 more are simulated)")
    gen.add_argument("--width", type=int, default=64)
    gen.add_argument("--height", type=int, default=64)
    return p


def _segment_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    seg = sub.add_parser(
        "segment",
        help="SAM masks for boxes on an image, refined iteratively (seed 004)",
        epilog="Writes OUT/masks.png, masks.npz, iterations.png and segment.json. "
        "Example: attnlab segment runs/sam-cells/main em-cells:7 --jitter 0.3 --out seg7",
    )
    seg.add_argument("model", type=Path, help="a finished sam-* run folder, or an official SAM .pth file")
    seg.add_argument("image", help="a PNG/JPEG/TIFF file, or em-cells:SEED (generated, with its cells)")
    seg.add_argument("--boxes", default=None, help="a file of 'x0 y0 x1 y1' lines, or 'x0 y0 x1 y1; ...'")
    seg.add_argument("--out", type=Path, required=True, help="folder for the masks and the picture")
    seg.add_argument("--threshold", type=float, default=0.05, help="stop a box when its change rate is below")
    seg.add_argument("--max-iterations", type=int, default=10, help="decoder passes per box (1: single pass)")
    seg.add_argument("--multimask", action="store_true", help="take the output the IoU head rates highest")
    seg.add_argument("--jitter", type=float, default=0.0, help="move each box side by this fraction first")
    seg.add_argument("--seed", type=int, default=0, help="of the jitter's directions")
    seg.add_argument("--preset", default="vit_b", help="an official checkpoint's size: vit_b, vit_l, vit_h")


def _tta_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    tta = sub.add_parser(
        "tta",
        help="test-time augmentation across domains with StarGAN v2 translators (seed 001)",
        epilog="Writes OUT/tta.md, tta.json and translations_<run>.png per translator. Example: attnlab tta "
        "runs/cnn5 --translator runs/stargan2 --translator runs/stargan2_ca --out tta-cnn5",
    )
    tta.add_argument("classifier", type=Path, help="a finished classifier run trained on the source domain")
    tta.add_argument(
        "--translator",
        type=Path,
        action="append",
        required=True,
        help="a finished stargan2-* run (repeat it)",
    )
    tta.add_argument("--n", type=int, nargs="+", default=[1, 10], help="style codes (or crops) per image")
    tta.add_argument("--out", type=Path, required=True, help="folder for the table and the pictures")
    tta.add_argument("--seed", type=int, default=0, help="of the style codes and the crops")


def _abn_maps_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    maps = sub.add_parser("abn-maps", help="edit ABN attention maps by hand and fine-tune on them")
    steps = maps.add_subparsers(dest="action", required=True)
    ex = steps.add_parser("export", help="write a finished run's maps as PNGs to edit (white = attend)")
    ex.add_argument("run_dir", type=Path)
    ex.add_argument("--out", type=Path, required=True, help="a new folder for the maps")
    ex.add_argument("--count", type=int, default=64, help="how many training examples")
    ex.add_argument(
        "--prefill",
        choices=["model", "foreground"],
        default="model",
        help="start from the model's maps, or from the images' foreground (a stand-in edit)",
    )
    ft = steps.add_parser(
        "finetune",
        help="fine-tune with L_att + L_per + lambda ||M - M'|| on edited maps, as a new run",
        epilog="Override any config key of the new run: --trainer.max_steps 100",
    )
    ft.add_argument("run_dir", type=Path)
    ft.add_argument("--maps", type=Path, required=True, help="the exported folder, maps edited")
    ft.add_argument("--map-weight", type=float, default=1.0, help="lambda")
    ft.add_argument("--steps", type=int, default=300)
    ft.add_argument("--lr-factor", type=float, default=0.1, help="times the original learning rate")
    ft.add_argument("--run-dir", dest="new_run_dir", type=Path, default=None, help="the new run folder")


def _list(what: str | None) -> None:
    from rich.console import Console
    from rich.table import Table

    from attnlab.catalog import DATAMODULES, MODELS, RUNNERS, TASKS
    from attnlab.recipes import list_recipes

    tables = {
        "recipes": list_recipes(),
        "models": MODELS.descriptions(),
        "tasks": TASKS.descriptions(),
        "datasets": DATAMODULES.descriptions(),
        "runners": RUNNERS.descriptions(),
    }

    console = Console()
    for name, rows in tables.items():
        if what in (None, name):
            table = Table(title=name, title_justify="left", show_header=False)
            for key, desc in rows.items():
                table.add_row(key, desc)
            console.print(table)


def _overrides(extra: list[str]) -> list[str]:
    """Expand aliases; every override is '--key value' or '--key=value'."""
    if extra and not extra[0].startswith("--"):
        raise ConfigError(f"unexpected argument '{extra[0]}': overrides look like --section.key value")
    out = []
    for arg in extra:
        key, eq, value = arg.partition("=")
        if key.startswith("--") and "-" in key[2:] and key not in ALIASES:  # config keys have no '-'
            close = did_you_mean(key, ALIASES)
            raise ConfigError(f"unknown config key '{key[2:]}'{close}; short forms: {', '.join(ALIASES)}")
        out.append(ALIASES.get(key, key) + eq + value if arg.startswith("--") else arg)
    return out


def _recipe_help(argv: list[str]) -> bool:
    """``attnlab run RECIPE [overrides] --help``: the recipe's own keys, not the command's."""
    helping = "-h" in argv or "--help" in argv
    return helping and len(argv) > 1 and argv[0] == "run" and not argv[1].startswith("-")


def _print_recipe_help(recipe: str, extra: list[str]) -> None:
    from rich.console import Console
    from rich.table import Table

    from attnlab.recipes import recipe_path
    from attnlab.runs.spec import recipe_keys, resolve

    path = recipe_path(recipe)
    overrides = _overrides([a for a in extra if a not in ("-h", "--help")])
    console = Console()
    description = resolve(path, overrides).description
    console.print(f"attnlab run {recipe} [--KEY VALUE ...]\n\n{description}\n", highlight=False)
    table = Table(title="keys (--section.key VALUE; the recipe's value, and the default where it differs)")
    for column in ("key", "type", "value", "default"):
        table.add_column(column, overflow="fold")
    for key in recipe_keys(path, overrides):
        differs = key.default != key.value and key.key not in ("task.name", "data.name", "model.name")
        table.add_row(key.key, key.type, _shown(key.value), _shown(key.default) if differs else "")
    console.print(table, highlight=False)
    aliases = ", ".join(f"{short} = {full}" for short, full in ALIASES.items())
    console.print(f"short forms: {aliases}; also --run-dir FOLDER, --print_config", highlight=False)


def _shown(value: object) -> str:
    return value if isinstance(value, str) else repr(value)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if _recipe_help(argv):
        try:
            _print_recipe_help(argv[1], argv[2:])
        except AttnlabError as exc:
            print(f"attnlab: error: {_one_line(exc)}", file=sys.stderr)
            return 2
        return 0
    args, extra = _parser().parse_known_args(argv)
    try:
        if args.command not in ("run", "resume", "evaluate", "abn-maps", "import", "search") and extra:
            raise ConfigError(f"unexpected arguments for '{args.command}': {' '.join(extra)}")
        if args.command == "list":
            _list(args.what)
            return 0
        if args.command == "explore":
            from attnlab.explorer.server import serve

            serve(
                args.folder,
                host=args.host,
                port=args.port,
                open_browser=args.open,
                allow_remote=args.allow_remote,
            )
            return 0
        if args.command == "runs":
            from attnlab.commands.runs import list_runs

            return list_runs(args.folder, clean_failed=args.clean_failed)
        if args.command in ("run", "resume"):
            what = args.recipe if args.command == "run" else args.run_dir
            say(f"starting {what} (loading PyTorch)")  # before the imports that take seconds
        from attnlab.train import engine

        if args.command == "evaluate":
            return _evaluate(args, extra)
        if args.command == "generate":
            return _generate(args)
        if args.command == "explain":
            return _explain(args)
        if args.command == "segment":
            return _segment(args)
        if args.command == "tta":
            return _tta(args)
        if args.command == "search":
            return _search(args, extra)
        command = shlex.join(["attnlab", *argv])
        if args.command == "abn-maps":
            return _abn_maps(args, extra, command)
        if args.command == "import":
            from attnlab.commands.import_official import import_official

            outcome = import_official(
                args.name, args.checkpoint, _overrides(extra), run_dir=args.run_dir, command=command
            )
            return _finished(outcome)
        printing = [a for a in extra if a.partition("=")[0] in PRINT_CONFIG]  # =skip_null etc. too
        if args.command == "run" and printing:
            overrides = _overrides([a for a in extra if a not in printing])
            print(engine.resolved_config(args.recipe, overrides), end="")
            return 0
        if args.command == "run":
            outcome = engine.run(args.recipe, _overrides(extra), run_dir=args.run_dir, command=command)
        else:
            outcome = engine.resume(args.run_dir, _overrides(extra))
    except NonFiniteLossError as exc:
        print(f"attnlab: {_one_line(exc)}", file=sys.stderr)
        return 3
    except AttnlabError as exc:
        print(f"attnlab: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # outside training (imports, data generation, evaluation)
        print("attnlab: interrupted", file=sys.stderr)
        return 130
    return _finished(outcome)


def _search(args: argparse.Namespace, extra: list[str]) -> int:
    from attnlab.commands.search import search

    result = search(
        args.recipe,
        _overrides(extra),
        trials=args.trials,
        trial_steps=args.trial_steps,
        folder=args.folder,
        seed=args.sampler_seed,
    )
    print(f"best graph {result.best_graph}: IS-like {result.best_score:.3f}; figures in {result.folder}")
    return 0


def _evaluate(args: argparse.Namespace, extra: list[str]) -> int:
    from attnlab.train import engine

    metrics, path = engine.evaluate(args.run_dir, weights=args.weights, overrides=_overrides(extra))
    print("  ".join(f"{k}={v:.4f}" for k, v in sorted(metrics.items())))
    print(f"wrote {path}")
    return 0


ALL_METHODS_FAILED = 4  # explain: no method could be scored and at least one failed


def _explain_points(args: argparse.Namespace) -> int:
    from attnlab.commands.explain_points import explain_detection_run
    from attnlab.explain.points import FLOORS, METHODS

    done = explain_detection_run(
        args.run_dir,
        limit=32 if args.limit is None else args.limit,
        out=args.out,
        methods=args.methods or METHODS + FLOORS,
        untrained_floor=not args.no_untrained_floor,
        deletion=not args.no_deletion,
        confident=args.confident,
    )
    print(done.report.read_text())
    wrote = [p.name for p in (done.data, done.figure, done.perspective) if p is not None]
    folder = f" and {len(done.ply)} PLY files in {done.ply[0].parent.name}/" if done.ply else ""
    print(f"wrote {done.report} ({', '.join(wrote)} beside it{folder})")
    return 0


def _explain(args: argparse.Namespace) -> int:
    from attnlab.commands.explain_points import is_detection_run
    from attnlab.commands.explain_run import METHODS, METRICS, explain_run

    if is_detection_run(args.run_dir):
        return _explain_points(args)
    done = explain_run(
        args.run_dir,
        methods=args.methods or METHODS,
        metrics=args.metrics or METRICS,
        limit=100 if args.limit is None else args.limit,
        layer=args.layer,
        targets=args.targets,
        out=args.out,
        regions=args.regions,
        float64=args.float64,
    )
    print(done.report.read_text())
    wrote = [p.name for p in (done.data, done.figure) if p is not None]
    print(f"wrote {done.report} (and {', '.join(wrote)} beside it)")
    if not done.failed:
        return 0
    hint = "; try --float64" if any("--float64" in r for r in done.failed.values()) else ""
    if not done.scored:
        print(
            f"attnlab: error: every method failed or does not apply ({', '.join(done.failed)} failed; "
            f"reasons in the table){hint}",
            file=sys.stderr,
        )
        return ALL_METHODS_FAILED
    print(
        f"attnlab: note: {', '.join(done.failed)} failed (reasons in the table); "
        f"the other methods were scored{hint}",
        file=sys.stderr,
    )
    return 0


def _segment(args: argparse.Namespace) -> int:
    from attnlab.commands.segment import segment
    from attnlab.models.sam.iterative import IterativeConfig

    iterative = IterativeConfig(args.threshold, args.max_iterations, args.multimask)
    done = segment(
        args.model, args.image, args.boxes, args.out, iterative=iterative, jitter=args.jitter,
        seed=args.seed, preset=args.preset,
    )  # fmt: skip
    counts = ", ".join(str(n) for n in done.iterations)
    print(f"{len(done.iterations)} boxes; decoder passes per box: {counts}")
    print(
        f"wrote {done.labels}, {done.arrays.name}, {done.figure.name} and {done.summary.name} in {done.out}"
    )
    return 0


def _tta(args: argparse.Namespace) -> int:
    from attnlab.commands.tta import tta

    done = tta(args.classifier, args.translator, args.out, ns=tuple(args.n), seed=args.seed)
    width = max(len(r.method) for r in done.rows)
    for r in done.rows:
        print(f"{r.method:<{width}}  N={r.n:<3} accuracy {100 * r.accuracy:6.2f} %  ({r.images} images)")
    print(f"wrote {done.table.name}, {done.summary.name} and {len(done.figures)} pictures in {done.out}")
    return 0


def _generate(args: argparse.Namespace) -> int:
    from attnlab.data.clevrer_lite import ClevrerLiteConfig, generate_dataset

    _check_out_folder(args.out)
    config = ClevrerLiteConfig(width=args.width, height=args.height, num_frames=args.frames)
    summary = generate_dataset(config, args.out, args.videos, args.seed, args.workers)
    questions = ", ".join(f"{n} {kind}" for kind, n in summary.num_questions.items())
    print(f"{args.out}: {summary.num_videos} videos, questions: {questions} ({summary.seconds:.0f} s)")
    return 0


def _check_out_folder(out: Path) -> None:
    """--out must be a folder or creatable as one: no regular file at it or above it."""
    for path in (out, *out.parents):
        if path.exists() or path.is_symlink():
            if not path.is_dir():
                what = "is" if path == out else f"is under {path}, which is"
                raise InputError(f"--out {out} {what} a file, not a folder; choose another --out")
            return


def _check_abn_run(run_dir: Path) -> None:
    """abn-maps takes runs whose task is an attention branch (abn-*, st_abn-* recipes)."""
    from attnlab.runs import rundir
    from attnlab.runs.spec import resolve

    task = resolve(rundir.existing(run_dir).config, []).task_name
    if task != "attention-branch":
        raise InputError(
            f"abn-maps takes runs of task 'attention-branch' (e.g. attnlab run abn-fashion_mnist); "
            f"{run_dir} trained task '{task}'"
        )


def _abn_maps(args: argparse.Namespace, extra: list[str], command: str) -> int:
    from attnlab.train import human_maps

    if args.action == "export":
        if extra:
            raise ConfigError(f"unexpected arguments for 'abn-maps export': {' '.join(extra)}")
        _check_out_folder(args.out)
        _check_abn_run(args.run_dir)
        count = human_maps.export(args.run_dir, args.out, count=args.count, prefill=args.prefill)
        print(f"wrote {count} maps to {args.out / 'maps'}; edit them (white = attend), then:")
        print(f"  attnlab abn-maps finetune {args.run_dir} --maps {args.out}")
        return 0
    options = human_maps.FinetuneOptions(args.map_weight, args.steps, args.lr_factor)
    outcome = human_maps.finetune(
        args.run_dir, args.maps, options, overrides=_overrides(extra), out=args.new_run_dir, command=command
    )
    return _finished(outcome)


def _finished(outcome: Outcome) -> int:
    if outcome.interrupted:
        print(f"attnlab: interrupted; continue with: attnlab resume {outcome.run.path}", file=sys.stderr)
        return 130
    print(f"run folder: {outcome.run.path}")
    print("  ".join(f"{k}={v:.4f}" for k, v in sorted(outcome.metrics.items())))
    print(f"report: {outcome.run.path / 'report.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
