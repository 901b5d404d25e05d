"""The models: GAN and VAE configs and presets, the networks they build, one training step, sampling, state."""
