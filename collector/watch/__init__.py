"""`akdiag watch`: a long-running flight recorder.  Every interval a light sample (the
check's quick collectors) goes into the history ring in akdiag's state folder
(collector.history); when a trigger fires (triggers.py) a full bundle is taken into the
output folder, whose bundles are kept within bounds (shelf.py).  The loop is loop.py,
the sample sampler.py; the command line is collector.cli_watch."""

from collector.watch.loop import Watch, WatchRefused, WatchSettings, log_line, prepare
from collector.watch.triggers import BadTrigger, Trigger, parse_triggers

__all__ = ["Watch", "WatchRefused", "WatchSettings", "log_line", "prepare", "BadTrigger", "Trigger",
           "parse_triggers"]
