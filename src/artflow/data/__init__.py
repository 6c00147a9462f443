"""Data stages: demo generator, ingest, validation, sampling, EDA, tf.data input."""
