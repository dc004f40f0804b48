"""The app: its stages, the delivery pipeline and its check, and the workflow diagrams; the top of stacks/, it may import every layer of it."""
