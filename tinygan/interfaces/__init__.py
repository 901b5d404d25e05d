"""The interfaces: the Python API (``tinygan.GAN``, ``tinygan.VAE``) and the command line."""
