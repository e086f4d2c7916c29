"""Classifiers of multichannel signals (seed 001's 1D-SAN and its 1D-CNN baseline)."""
