"""The Monet CycleGAN: its networks and its training."""
