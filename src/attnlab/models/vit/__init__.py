"""The image ViT shared by DINO, MAE and the distillation student, and MAE (He et al. 2022,
arXiv:2111.06377); see docs/distillation.md."""
