"""The errors a user sees as one line: bad input, and a run whose loss diverged."""


class InputError(ValueError):
    """A bad config value or data file: reported as one line naming the key and the value."""


class TrainingDiverged(RuntimeError):
    """The loss blew up; ``epoch`` is the 1-based epoch where it happened."""

    def __init__(self, epoch: int, loss: float, why: str = "") -> None:
        super().__init__(f"loss diverged to {loss:.4g} at epoch {epoch}{why}")
        self.epoch = epoch
        self.loss = loss
