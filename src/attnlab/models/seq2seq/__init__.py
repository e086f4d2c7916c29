"""Encoder-decoders over token sequences (the survey seed's sequence attention, seed 002)."""
