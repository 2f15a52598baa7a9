"""A fixture for tests of what ``python -m ssd train`` decides before training (architecture, the
run's own settings on resume): the ``TrainConfig`` it hands to the loop, caught, and no run."""
from __future__ import annotations

import pytest

from ssd.base.errors import SSDError


@pytest.fixture
def caught(monkeypatch):
    """The ``TrainConfig`` the train command hands to the training loop (none is run)."""
    import ssd.training.loop as loop

    seen = []

    def fake_train(cfg):
        seen.append(cfg)
        raise SSDError("stop here")

    monkeypatch.setattr(loop, "train", fake_train)
    return seen
