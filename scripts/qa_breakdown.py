"""Accuracy of Aloe runs per kind of question, beside the question-only prior (docs/video_reasoning.md).

A question's kind is read from its program: for descriptive questions the query (colour,
shape, material, exist, count) and the event it filters objects by (collision, entering,
exiting, stationary, moving, none); for multiple choice the question type and the event
its option names (a collision, or an object entering / exiting); and per multiple-choice
type, whole questions (right when every option is). The prior is what a model that
ignores the video can learn: the most common training answer (or option label) of the
same question text (and option text), or of the same kind when the text never occurs in
training (none when the kind never does), scored on the test split.

    python scripts/qa_breakdown.py RUN [RUN ...]

The runs must share their questions (the same data settings, any encoder).
"""

from __future__ import annotations

import argparse
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file
from torch.utils.data import DataLoader

from attnlab.data.clevrer_lite.vocab import ANSWERS
from attnlab.data.clevrer_qa import ClevrerQAData, questions_by_scene, word_ids
from attnlab.errors import AttnlabError, InputError
from attnlab.runs.rundir import WEIGHTS_FILE
from attnlab.runs.spec import resolve
from attnlab.train.engine import build
from attnlab.train.video_qa import VideoQATask

EVENTS = ("filter_collision", "filter_in", "filter_out", "filter_stationary", "filter_moving")


def event_of(program: list[str]) -> str:
    """The first event filter of a program ("collision", "in", ...), or "none"."""
    return next((op.removeprefix("filter_") for op in program if op in EVENTS), "none")


Item = tuple[str, str, Any]  # kind, text, target (the answer word, or whether the option is true)


def items_of(q: dict[str, Any]) -> list[Item]:
    """A question's items: one for a descriptive question, one per option."""
    if q["question_type"] == "descriptive":
        return [(f"descriptive {q['program'][-1]}, {event_of(q['program'])}", q["question"], q["answer"])]
    return [
        (
            f"{q['question_type']} option: {event_of(c['program'])}",
            f"{q['question']} | {c['choice']}",
            c["answer"] == "correct",
        )
        for c in q["choices"]
    ]


def test_items(data: ClevrerQAData, raw: dict[int, list[dict[str, Any]]]) -> list[list[Item]]:
    """The items of every row of the test dataset, in its order (checked word by word)."""
    rows = data.dataset("test").questions  # type: ignore[attr-defined]
    seen: Counter[int] = Counter()
    out = []
    for row, scene in enumerate(rows["scene_index"].tolist()):
        q = raw[scene][seen[scene]]  # generated data has no broken questions: rows follow the file
        seen[scene] += 1
        if word_ids(q["question"], data.lengths.question, "question") != rows["question"][row].tolist():
            raise InputError(f"test row {row}: the question file and the dataset disagree")
        out.append(items_of(q))
    return out


def train_items(data: ClevrerQAData, raw: dict[int, list[dict[str, Any]]]) -> list[list[Item]]:
    """The items of the training split's questions, read from the file alone (no inputs built)."""
    wanted = data.source.ranges["train"]
    return [items_of(q) for scene, questions in raw.items() if scene in wanted for q in questions]


def priors(train: list[list[Item]]) -> dict[str, Any]:
    """The most common training target of each text and of each kind (keys are texts and kinds)."""
    counts: dict[str, Counter[Any]] = defaultdict(Counter)
    for row in train:
        for kind, text, target in row:
            counts[text][target] += 1
            counts[kind][target] += 1
    return {key: c.most_common(1)[0][0] for key, c in counts.items()}


def load(run: Path) -> tuple[VideoQATask, ClevrerQAData]:
    """A finished Aloe run's task (final weights, eval mode) and datamodule."""
    task, data = build(resolve(run / "config.yaml", []))
    if not isinstance(task, VideoQATask) or not isinstance(data, ClevrerQAData):
        raise InputError(f"{run} is not a video-qa run on clevrer-qa data")
    task.model.load_state_dict(load_file(run / WEIGHTS_FILE))
    task.model.eval()
    return task, data


@torch.no_grad()
def predictions(task: VideoQATask, data: ClevrerQAData) -> list[list[Any]]:
    """Per test row: [answer word] (descriptive) or [option is true, ...] (multiple choice)."""
    out: list[list[Any]] = []
    for batch in DataLoader(data.dataset("test"), batch_size=64):
        desc, mc = task.outputs(batch)
        answers = None if desc is None else desc.answer_logits
        options = None if mc is None else mc.choice_logits
        desc_answers = iter([] if answers is None else answers.argmax(-1).tolist())
        mc_options = iter([] if options is None else options.gt(0).tolist())
        for qtype in batch["question_type"].tolist():
            out.append([ANSWERS[next(desc_answers)]] if qtype == 0 else next(mc_options))
    return out


def kinds_and_hits(row: list[Item], hits: list[bool]) -> list[tuple[str, bool]]:
    """(kind, right) per item of a row, and for a multiple-choice question one for the whole question."""
    out = [(kind, hit) for (kind, _, _), hit in zip(row, hits, strict=True)]
    if row and " option: " in row[0][0]:  # right when all its options are
        out.append((row[0][0].split(" option: ")[0] + " question", all(hits)))
    return out


def tally(runs: list[Path]) -> tuple[Counter[str], dict[str, list[int]]]:
    """Test items per kind, and per kind the right answers of [the prior, run 1, run 2, ...]."""
    right: dict[str, list[int]] = defaultdict(lambda: [0] * (len(runs) + 1))
    total: Counter[str] = Counter()
    for i, run in enumerate(runs):
        task, data = load(run)
        if i == 0:
            raw = {scene: qs for scene, (_, qs) in questions_by_scene(data.source.folder.root).items()}
            test = test_items(data, raw)
            prior = priors(train_items(data, raw))
            for row in test:
                prior_hits = [prior.get(text, prior.get(kind)) == target for kind, text, target in row]
                for kind, hit in kinds_and_hits(row, prior_hits):
                    total[kind] += 1
                    right[kind][0] += int(hit)
        predicted_rows = predictions(task, data)
        if len(predicted_rows) != len(test):
            raise InputError(f"{run} has {len(predicted_rows)} test questions, {runs[0]} {len(test)}")
        for row, predicted in zip(test, predicted_rows, strict=True):
            # a batch's choice logits cover its longest option list: zip stops at this row's real ones
            hits = [guess == target for (_, _, target), guess in zip(row, predicted, strict=False)]
            for kind, hit in kinds_and_hits(row, hits):
                right[kind][i + 1] += int(hit)
    return total, right


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("runs", type=Path, nargs="+")
    args = parser.parse_args()
    try:
        total, right = tally(args.runs)
    except AttnlabError as exc:
        raise SystemExit(f"error: {exc}") from None
    print("| kind | test items | prior | " + " | ".join(run.name for run in args.runs) + " |")
    print("| --- | ---: | ---: | " + " | ".join("---:" for _ in args.runs) + " |")
    groups = {
        "all descriptive": [k for k in total if k.startswith("descriptive")],
        "all options": [k for k in total if " option: " in k],
        "all multiple-choice questions": [k for k in total if k.endswith(" question")],
    }
    rows = [(kind, [kind]) for kind in sorted(total)] + list(groups.items())
    for name, kinds in rows:
        count = sum(total[k] for k in kinds)
        cells = " | ".join(
            f"{sum(right[k][i] for k in kinds) / count:.3f}" for i in range(len(args.runs) + 1)
        )
        print(f"| {name} | {count} | {cells} |")


if __name__ == "__main__":
    main()
