"""Official checkpoints of the methods attnlab reproduces, loaded into attnlab models.

Each entry point pairs a model's key rules (``OFFICIAL_KEYS``, data beside the model)
with :func:`attnlab.runs.convert.load_foreign`: read with ``weights_only=True``,
rename, check every key and shape, load; user errors are one-line InputErrors.
"""

from __future__ import annotations

from pathlib import Path

from attnlab.models.object_centric import vimon
from attnlab.runs.convert import load_foreign


def load_official_vimon(path: str | Path, *, config: vimon.ViMONConfig | None = None) -> vimon.ViMON:
    """A :class:`~attnlab.models.object_centric.vimon.ViMON` with the weights of the reference's
    ``ckpt_vimon_vmds.pt`` (ecker-lab/object-centric-representation-benchmark).

    ``config`` defaults to the ``vimon-vmds-official`` preset (6 slots); the weights do
    not fix the number of slots. Missing, unexpected or mis-shaped keys raise InputError.
    """
    model = vimon.ViMON(config or vimon.ViMONConfig(num_slots=6))
    load_foreign(model, path, vimon.OFFICIAL_KEYS, "ViMON checkpoint")
    return model
