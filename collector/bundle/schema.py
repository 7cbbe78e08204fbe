"""The bundle's layout in one place.  Bump SCHEMA_VERSION when a file's meaning changes."""

SCHEMA_VERSION = 1

MANIFEST = "manifest.json"
SUMMARY_HTML = "summary.html"
REDACTIONS = "redactions.json"
TOOL_LOG = "akdiag.log"

FORMATS = ("7z", "tar.gz", "dir")  # what a bundle is written as (collector/bundle/archive.py)

SYSTEM = "system.json"
PROCESSES = "processes.json"
PIDFILES = "pidfiles.json"
PORTS = "ports.json"
LOGS_INDEX = "logs/index.json"
LOGS_DIR = "logs"
CONFIG_DIR = "config"
CONFIG_INDEX = "config/index.json"
COMMANDS_DIR = "commands"
AKD = "commands/akd-processes.json"
DATASTORES = "datastores.json"
FINDINGS = "findings.json"
# root-cause evidence (issue: kernel, service manager, network, one timeline)
KERNEL = "kernel.json"  # parsed kernel events; the messages themselves under KERNEL_DIR
KERNEL_DIR = "kernel"
SERVICES = "services.json"  # systemd units of the platform and its datastores, core dumps
SERVICES_DIR = "services"  # each unit's journal tail
NETWORK = "network.json"  # interfaces, routes, resolver, name resolution, kernel counters
TIMELINE = "timeline.json"  # error/warning lines, kernel events and unit transitions by time
HISTORY = "history.json"  # the recent samples `akdiag watch` kept (collector/history_file.py), when any

# A cluster archive (akdiag collect --hosts, collector/cluster/) has this at its root
# instead of MANIFEST, and each host's bundle under hosts/<name>/.
CLUSTER_MANIFEST = "cluster.json"

COLLECTOR_STATUSES = ("ok", "partial", "failed", "timeout", "skipped")
PROCESS_STATUSES = ("running", "down", "absent")
PIDFILE_STATES = ("ok", "missing", "unreadable", "invalid", "stale", "reused")
# logs/index.json's reason for a rotated or compressed log (listed, never tailed)
LOG_REASON_ROTATED = "rotated or compressed: listed only"
PORT_STATES = ("listening", "not_listening", "conflict", "listening_owner_unknown", "none")
