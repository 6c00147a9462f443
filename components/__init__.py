"""Kubeflow components: thin wrappers over artflow.stages, connected only by artifacts.

Each body imports artflow inside itself (kfp copies only the function's source into the
compiled YAML) and runs in an image that already has artflow and kfp installed, so
`install_kfp_package=False` and no `packages_to_install` (docs/stack-notes.md). A step reads
its Input[...] artifact folders and parameters only, and writes what later steps need into its
Output[...] folders.
"""
