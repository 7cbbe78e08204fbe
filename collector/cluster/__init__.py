"""Cluster collection: every host's bundle taken over SSH at one moment, packed into one
cluster archive with a manifest (cluster.json), cluster-wide findings and a summary.

- `hosts.py`: the hosts file (`--hosts FILE`) and `--host user@address[:basedir]`.
- `ssh.py`: the transport, the system's OpenSSH client over one multiplexed connection
  per host; every call bounded in time.
- `command.py`: `collect --hosts/--host` from the command line: the options' checks, the printout.
- `run.py`: one cluster run (a worker per host, in parallel) and the archive; `request.py`
  its request and result; `host.py` one host's steps; `host_bundle.py` a host's fetched
  bundle stored in the archive; `remote_scripts.py` the shell scripts run there;
  `single_file.py` the single-file akdiag copied to the hosts.
- `analyze.py`: the cluster reader and the cluster-wide analyzers (they read only the
  archive: cluster.json and the hosts' bundles).
- `report.py`: the cluster summary.html; `akdiag report` on a cluster archive.
- `diff.py`: `akdiag diff` of two cluster archives, host by host.
"""

from collector.bundle.schema import CLUSTER_MANIFEST  # cluster.json, at the archive's root

__all__ = ["CLUSTER_MANIFEST", "CLUSTER_SCHEMA_VERSION", "HOSTS_DIR"]
CLUSTER_SCHEMA_VERSION = 1
HOSTS_DIR = "hosts"
