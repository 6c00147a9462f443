"""CLI command modules; each exposes `register(app, train_app)`."""
