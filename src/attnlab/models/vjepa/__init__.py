"""V-JEPA (Bardes et al. 2024, arXiv:2404.08471): video feature prediction with a 3D-tubelet ViT
encoder, a narrow predictor and an EMA target encoder; see docs/vjepa.md."""
