"""Gatys neural style transfer: the optimisation, its tracked runs and its registered settings."""
