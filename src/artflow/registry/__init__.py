"""The registry plumbing: MLflow tracking, registry views, model cards and safe loading."""
