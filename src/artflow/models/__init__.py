"""Model definitions (Keras 3) and the registry I/O for them.

Every classifier takes float32 (N, S, S, 3) raw 0..255 pixels and does its own
preprocessing inside the graph, so consumers (serving, the gate, drift) only resize.
"""
