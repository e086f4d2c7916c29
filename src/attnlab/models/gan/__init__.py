"""Generative adversarial networks: generator and discriminator in one model, trained by two optimisers."""
