"""The ``attnlab`` command: list, run, resume, evaluate."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from attnlab.errors import AttnlabError, ConfigError, NonFiniteLossError

# Short forms a user reaches for first; they stand for the full config keys.
ALIASES = {
    "--devices": "--trainer.devices",
    "--accelerator": "--trainer.accelerator",
    "--max-steps": "--trainer.max_steps",
    "--precision": "--trainer.precision",
    "--strategy": "--trainer.strategy",
    "--num-nodes": "--trainer.num_nodes",
}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="attnlab", description="Attention models: train, evaluate, explain.")
    sub = p.add_subparsers(dest="command", required=True)
    ls = sub.add_parser("list", help="recipes, models, tasks and datasets")
    ls.add_argument("what", nargs="?", choices=["recipes", "models", "tasks", "datasets"], default=None)
    r = sub.add_parser(
        "run",
        help="train + evaluate + report a recipe",
        epilog="Override any config key: --model.depth 4 --trainer.max_steps 100 --seed 1",
    )
    r.add_argument("recipe", help="a recipe name (attnlab list recipes) or a YAML file")
    r.add_argument("--run-dir", type=Path, default=None, help="run folder (default runs/RECIPE/TIME-seedS)")
    res = sub.add_parser("resume", help="continue an unfinished run from its last checkpoint")
    res.add_argument("run_dir", type=Path)
    ev = sub.add_parser("evaluate", help="test a run's weights again")
    ev.add_argument("run_dir", type=Path)
    ev.add_argument("--weights", choices=["final", "best", "last"], default="final")
    return p


def _list(what: str | None) -> None:
    from rich.console import Console
    from rich.table import Table

    from attnlab.data import DATAMODULES
    from attnlab.models._registry import MODELS
    from attnlab.recipes import list_recipes
    from attnlab.train import TASKS

    tables = {
        "recipes": list_recipes(),
        "models": {e.name: e.description for e in MODELS.entries()},
        "tasks": {e.name: e.description for e in TASKS.entries()},
        "datasets": {e.name: e.description for e in DATAMODULES.entries()},
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
        out.append(ALIASES.get(key, key) + eq + value if arg.startswith("--") else arg)
    return out


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args, extra = _parser().parse_known_args(argv)
    try:
        if args.command != "run" and extra:
            raise ConfigError(f"unexpected arguments for '{args.command}': {' '.join(extra)}")
        if args.command == "list":
            _list(args.what)
            return 0
        from attnlab.train import engine

        if args.command == "evaluate":
            metrics = engine.evaluate(args.run_dir, weights=args.weights)
            print("  ".join(f"{k}={v:.4f}" for k, v in sorted(metrics.items())))
            return 0
        if args.command == "run":
            command = shlex.join(["attnlab", *argv])
            outcome = engine.run(args.recipe, _overrides(extra), run_dir=args.run_dir, command=command)
        else:
            outcome = engine.resume(args.run_dir)
    except NonFiniteLossError as exc:
        print(f"attnlab: {exc}", file=sys.stderr)
        return 3
    except AttnlabError as exc:
        print(f"attnlab: error: {exc}", file=sys.stderr)
        return 2
    if outcome.interrupted:
        print(f"attnlab: interrupted; continue with: attnlab resume {outcome.run.path}", file=sys.stderr)
        return 130
    print(f"run folder: {outcome.run.path}")
    print("  ".join(f"{k}={v:.4f}" for k, v in sorted(outcome.metrics.items())))
    print(f"report: {outcome.run.path / 'report.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
