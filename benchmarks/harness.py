"""A small benchmark harness: interleaved repetitions, medians, peak memory, JSON, a table.

Machines are noisy, so variants are compared inside one process: every repetition
runs each variant once, in a freshly shuffled order, and we report the median
and the 10th-90th percentile spread, plus ratios to a baseline variant. Peak
memory: on CUDA the allocator's peak for one call; on CPU (Linux, glibc) the
growth of the resident-set high-water mark during one call, after returning the
heap's free pages to the OS.

The allocator keeps glibc's default settings, as in training. An earlier version
made glibc map every large block separately (a fixed 128 KiB mmap threshold) so
that freed tensors left the resident set; that made every large allocation fault
in fresh pages during the timed calls too, and slowed memory-heavy variants by up
to 3x (an SFA training step: 36.6 s against 11.7 s).
"""

from __future__ import annotations

import argparse
import ctypes
import json
import platform
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table


@dataclass
class Result:
    case: str
    variant: str
    median_ms: float
    p10_ms: float
    p90_ms: float
    ratio: float  # median / baseline median in the same case
    peak_mem_mb: float
    repeats: int
    # median over repetitions of (this / baseline) within a repetition: the pair ran back to
    # back, so slow drifts of a shared machine cancel that the ratio of medians still carries
    paired_ratio: float


def add_speed_flags(parser: argparse.ArgumentParser) -> None:
    """The GPU options the object-centric benchmarks share."""
    parser.add_argument("--channels-last", action="store_true", help="NHWC weights and frames")
    parser.add_argument("--bf16", action="store_true", help="forward and loss under bfloat16 autocast")
    parser.add_argument("--compile", action="store_true", help="torch.compile each variant's forward")


def speed_flags(args: argparse.Namespace) -> list[str]:
    """The speed flags that are on, for the case name and the JSON."""
    return [flag for flag in ("channels_last", "bf16", "compile") if getattr(args, flag)]


def random_video(
    batch: int, frames: int, size: int, device: torch.device, *, channels_last: bool
) -> torch.Tensor:
    """(B, T, 3, H, W) uniform frames (content does not change the cost); NHWC per frame if asked."""
    if channels_last:  # (B, T, H, W, 3) viewed as (B, T, 3, H, W)
        return torch.rand(batch, frames, size, size, 3, device=device).permute(0, 1, 4, 2, 3)
    return torch.rand(batch, frames, 3, size, size, device=device)


def device_info(device: torch.device) -> dict[str, object]:
    info: dict[str, object] = {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cpu": platform.processor() or platform.machine(),
        "cpu_threads": torch.get_num_threads(),
        "device": str(device),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1])
    raise KeyError(field)


def _glibc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:
        return None


_LIBC = _glibc() if Path("/proc/self/clear_refs").exists() else None


def peak_memory_mb(fn: Callable[[], object], device: torch.device) -> float:
    """Extra memory at the peak of one call (CUDA allocator peak; on CPU the RSS high-water mark)."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        fn()
        _sync(device)
        return (torch.cuda.max_memory_allocated(device) - base) / 2**20
    if _LIBC is None:
        return float("nan")
    _LIBC.malloc_trim(0)
    Path("/proc/self/clear_refs").write_text("5")  # reset the high-water mark to the current RSS
    base = _status_kb("VmRSS:")
    fn()
    return (_status_kb("VmHWM:") - base) / 1024


def measure(
    case: str,
    variants: dict[str, Callable[[], object]],
    *,
    baseline: str,
    device: torch.device,
    repeats: int = 10,
    warmup: int = 2,
    seed: int = 0,
) -> list[Result]:
    """Time every variant ``repeats`` times, interleaved in shuffled order."""
    for fn in variants.values():
        for _ in range(warmup):
            fn()
    _sync(device)
    times: dict[str, list[float]] = {name: [] for name in variants}
    order = list(variants)
    rng = random.Random(seed)
    for _ in range(repeats):
        rng.shuffle(order)
        for name in order:
            _sync(device)
            start = time.perf_counter()
            variants[name]()
            _sync(device)
            times[name].append((time.perf_counter() - start) * 1e3)
    base = statistics.median(times[baseline])
    results = []
    for name, fn in variants.items():
        t = sorted(times[name])
        q = statistics.quantiles(t, n=10) if len(t) > 1 else [t[0]] * 9
        paired = statistics.median(a / b for a, b in zip(times[name], times[baseline], strict=True))
        results.append(
            Result(
                case,
                name,
                statistics.median(t),
                q[0],
                q[-1],
                statistics.median(t) / base,
                peak_memory_mb(fn, device),
                repeats,
                paired,
            )
        )
    return results


def report(title: str, results: list[Result], info: dict[str, object], out: Path) -> None:
    """Print a table and write JSON (results + device info)."""
    table = Table(title=title)
    for col in ("case", "variant", "median ms", "p10-p90 ms", "ratio", "peak MiB"):
        table.add_column(col, justify="left" if col in ("case", "variant") else "right")
    for r in results:
        table.add_row(
            r.case,
            r.variant,
            f"{r.median_ms:.2f}",
            f"{r.p10_ms:.2f}-{r.p90_ms:.2f}",
            f"{r.ratio:.3f}",
            f"{r.peak_mem_mb:.1f}",
        )
    console = Console(width=140)
    console.print(table)
    console.print(info)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps({"title": title, "device": info, "results": [asdict(r) for r in results]}, indent=2)
    )
    console.print(f"wrote {out}")
