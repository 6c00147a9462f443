"""Style transfer: Gatys NST, the real-time AdaIN stylizer, the Monet CycleGAN and their metrics."""
