"""The training defaults a user sees, each named once: ``TrainConfig``, ``train``'s flags and the Train
page's fields all read them here.

Why a module of its own: the command line builds its parser without importing MXNet, and
``ssd.training.config`` imports the registry (which does); the same numbers written in all three
places could drift apart.
"""
from __future__ import annotations

EPOCHS = 20
BATCH_SIZE = 32
WEIGHT_DECAY = 5e-4
WARMUP_ITERS = 50    # iterations the learning rate climbs from a tenth to its value (at most a quarter of the run)
