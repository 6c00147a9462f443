"""The painter classifier: its networks (cnn, resnet), training, tuning, evaluation, registry I/O
and the best version of each family.

Every classifier takes float32 (N, S, S, 3) raw 0..255 pixels and does its own
preprocessing inside the graph, so consumers (serving, the gate, drift) only resize.
"""
