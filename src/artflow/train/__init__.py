"""Training stages: one function per pipeline stage (config + workdir in, metrics out)."""
