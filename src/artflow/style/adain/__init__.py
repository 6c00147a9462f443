"""The real-time AdaIN stylizer: its networks and its training."""
