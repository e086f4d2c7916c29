"""Tests of the object-centric family."""

# The sizes MONet, ViMON and AttnViMON share, small enough for tests.
SMALL_SLOT_VAE = dict(
    num_slots=3,
    latent_dim=4,
    image_size=16,
    attn_channels=4,
    attn_blocks=3,
    attn_mlp_hidden=8,
    encoder_channels=(4, 4, 8, 8),
    encoder_hidden=16,
    decoder_channels=4,
    decoder_layers=2,
)
