"""Explanation-metric tables: rows = methods, columns = metrics, and why a cell is n/a or failed."""

from __future__ import annotations

from collections.abc import Mapping

from attnlab.explain.scoring import BETTER, Score


def markdown_table(results: Mapping[str, Mapping[str, Score]], *, digits: int = 3) -> str:
    """Rows = methods, columns = metrics (with which way is better), ``mean ± std``, and n."""
    metrics = list(next(iter(results.values())))
    header = ["method", *(f"{m} ({'↓' if BETTER[m] == 'lower' else '↑'})" for m in metrics), "n"]
    lines = ["| " + " | ".join(header) + " |", "| --- |" + " ---: |" * (len(header) - 1)]
    for method, row in results.items():
        cells, counts = [], {s.count for s in row.values() if s.applicable}
        for metric in metrics:
            score = row[metric]
            if not score.applicable:
                cells.append("failed" if score.failed else "n/a")
                continue
            cell = f"{score.mean:.{digits}f} ± {score.std:.{digits}f}" if score.count else "–"
            cells.append(cell + (f" (n={score.count})" if len(counts) > 1 else ""))
        n = str(max(counts)) if counts else "0"
        lines.append("| " + " | ".join([method, *cells, n]) + " |")
    notes = _not_applicable_notes(results)
    return "\n".join([*lines, *(["", *notes] if notes else [])]) + "\n"


def _not_applicable_notes(results: Mapping[str, Mapping[str, Score]]) -> list[str]:
    """One line per reason, naming whole methods, whole metric columns, then single cells."""
    methods = list(results)
    metrics = list(next(iter(results.values())))
    by_reason: dict[tuple[bool, str], set[tuple[str, str]]] = {}
    for method, row in results.items():
        for metric, score in row.items():
            if not score.applicable:
                by_reason.setdefault((score.failed, score.note), set()).add((method, metric))
    lines = []
    for (failed, reason), cells in by_reason.items():
        whole = [m for m in methods if all((m, k) in cells for k in metrics)]
        rest = {(m, k) for m, k in cells if m not in whole}
        scored = [m for m in methods if any(results[m][k].applicable for k in metrics)]
        columns = [k for k in metrics if scored and all((m, k) in rest for m in scored)]
        single = [f"{m} {k}" for m in methods for k in metrics if (m, k) in rest and k not in columns]
        names = whole + [f"{k} (every method)" for k in columns] + single
        lines.append(f"- {'failed' if failed else 'n/a'} for {', '.join(names)}: {reason}")
    return lines
