"""The errors a user sees as one line: bad input, a diverging loss, a tracking server that
does not answer or refuses."""


class InputError(ValueError):
    """A bad config value or data file: reported as one line naming the key and the value."""


class TrainingDiverged(RuntimeError):
    """The loss blew up; ``epoch`` is the 1-based epoch (or other ``unit``) where it happened."""

    def __init__(self, epoch: int, loss: float, why: str = "", *, unit: str = "epoch") -> None:
        super().__init__(f"loss diverged to {loss:.4g} at {unit} {epoch}{why}")
        self.epoch = epoch
        self.loss = loss


class TrackingError(RuntimeError):
    """The tracking server could not record a run: reported as one line naming the server."""


class TrackingUnavailable(TrackingError):
    """The tracking server did not answer (not running, unreachable, or gone mid-job)."""


class TrackingRefused(TrackingError):
    """The tracking server answered 401 (no or wrong login) or 403 (no permission)."""


def one_line(err: BaseException) -> str:
    """``InputError: data.path='x.npz': no such file``: an error's class and the first
    line of its message, as a log line, a table cell or a run's failure reason shows it."""
    lines = str(err).strip().splitlines()
    return f"{type(err).__name__}: {lines[0]}" if lines else type(err).__name__
