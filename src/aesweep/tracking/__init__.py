"""MLflow at the edge: where runs go, and logging params, metrics, figures and models.

The science modules never import mlflow; :mod:`aesweep.experiment` hands them the
:class:`RunLog` of a :class:`Tracker`'s run, or a null one that records nothing when
tracking is off. Every call names its run: one ``MlflowClient`` per tracker, and none of
MLflow's process-wide "active run".

- :mod:`~aesweep.tracking.store`: which store and experiment, links into ``mlflow ui``
- :mod:`~aesweep.tracking.tracker`: a run's life: start, end, and the errors of a server
- :mod:`~aesweep.tracking.runlog`: what a run records (params, figures, digits, models)
- :mod:`~aesweep.tracking.buffer`: per-epoch metrics, batched, kept while a server is away
- :mod:`~aesweep.tracking.lookups`: the look-ups behind resume and reuse, and stale runs
"""

from aesweep.tracking.buffer import MetricBuffer
from aesweep.tracking.lookups import end_run, process_tags
from aesweep.tracking.runlog import NullRunLog, RunLog
from aesweep.tracking.store import chart_link, code_tags, flatten, resolve_tracking_uri, ui_link
from aesweep.tracking.tracker import NullTracker, Tracker

__all__ = [
    "MetricBuffer",
    "NullRunLog",
    "NullTracker",
    "RunLog",
    "Tracker",
    "chart_link",
    "code_tags",
    "end_run",
    "flatten",
    "process_tags",
    "resolve_tracking_uri",
    "ui_link",
]
