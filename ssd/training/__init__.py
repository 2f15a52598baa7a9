"""Training: configuration, the loop, checkpoints, optimizer, precise BatchNorm, metrics, metadata, events, progress."""
