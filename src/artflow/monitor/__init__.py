"""Drift monitoring: image features, embeddings, reference profiles and Evidently reports."""
