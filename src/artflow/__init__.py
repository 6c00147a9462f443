"""artflow: MLOps for artworks (artist classification, style transfer, Monet CycleGAN)."""

__version__ = "0.1.0"
