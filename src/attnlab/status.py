"""What a starting run is doing, one line at a time, before its progress bar appears.

Loading PyTorch, generating a dataset or a slow first step can take from seconds to
minutes; a user should see which within seconds. Lines go to stdout (stderr is kept for
errors, one line each) and only from rank 0 of a multi-process run.
"""

from __future__ import annotations

import os


def is_worker_process() -> bool:
    """True in a DDP worker that Lightning (or torchrun) started beside rank 0."""
    return any(int(os.environ.get(v, "0") or 0) > 0 for v in ("LOCAL_RANK", "NODE_RANK", "RANK"))


def say(text: str) -> None:
    """Print ``attnlab: text`` now (flushed), unless this is a DDP worker beside rank 0."""
    if is_worker_process():
        return
    print(f"attnlab: {text}", flush=True)
