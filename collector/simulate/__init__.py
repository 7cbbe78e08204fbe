"""A simulated Altcraft host: real processes titled AK:<name> listening on their
catalog ports, PID files, logs, config and an akd script in a temporary BASEDIR.
Used by `akdiag demo`, by the tests and by the benchmark."""

from collector.simulate.host import SimulatedHost

__all__ = ["SimulatedHost"]
