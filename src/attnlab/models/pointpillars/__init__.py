"""PointPillars (Lang et al., CVPR 2019, arXiv:1812.05784) in pure PyTorch: pillars so far."""
