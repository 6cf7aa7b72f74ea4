"""One run of the service: fetch, record, and stream each subscriber's digest out.

    report = send_now(config, RunOptions(mode=Mode.SEND), Deps())

Modules, in the order a run goes through them: options (what is asked, and the dependencies),
gather (fetch and record), stream (plan, build, deliver, record), preview (a dry run's files),
report (what the run says), run (the whole, left to right).
"""

from digest.run.options import SHIPPED_MODEL, Deps, Mode, ModelFactory, RunOptions
from digest.run.report import Progress, RunReport, SourceReport, SubscriberReport
from digest.run.run import run_digest, select_subscribers, send_now, start_model

__all__ = [
    "SHIPPED_MODEL",
    "Deps",
    "Mode",
    "ModelFactory",
    "Progress",
    "RunOptions",
    "RunReport",
    "SourceReport",
    "SubscriberReport",
    "run_digest",
    "select_subscribers",
    "send_now",
    "start_model",
]
