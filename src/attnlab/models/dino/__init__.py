"""DINO (Caron et al. 2021, arXiv:2104.14294): self-distillation with no labels; a student and an
EMA teacher, a projection head with a weight-normalised last layer, centring and sharpening of the
teacher's output (the loss lives in :mod:`attnlab.objectives.dino`)."""
