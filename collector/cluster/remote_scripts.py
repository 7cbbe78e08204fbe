"""The shell scripts a cluster run sends to each host (through `sh -c` over ssh):
the probe, the collect, the clean-up and the guard that cleans up when akdiag goes away."""

from __future__ import annotations

import shlex
from typing import Dict

from collector.cluster.ssh import UNTIL_EOF


PROBE = r"""umask 077
echo "hostname=$(uname -n 2>/dev/null)"
echo "arch=$(uname -m 2>/dev/null)"
echo "machine_id=$(head -c 64 /etc/machine-id 2>/dev/null || head -c 64 /var/lib/dbus/machine-id 2>/dev/null)"
echo "boot_id=$(head -c 64 /proc/sys/kernel/random/boot_id 2>/dev/null)"
echo "pid_ns=$(readlink /proc/self/ns/pid 2>/dev/null)"
p=$(command -v python3 2>/dev/null)
echo "python=$p"
if [ -n "$p" ]; then
  echo "python_version=$("$p" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])' 2>/dev/null)"
fi
c="${AKDIAG_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/akdiag}"
echo "cache_dir=$c"
if [ -n "$2" ] && [ -f "$c/$2" ]; then echo "cached_size=$(wc -c < "$c/$2" | tr -d ' ')"; fi
if [ "$1" = look ]; then
  a=$(command -v akdiag 2>/dev/null)
  echo "akdiag=$a"
  if [ -n "$a" ]; then echo "akdiag_version=$("$a" --version 2>/dev/null | head -n 1)"; fi
fi
d=$(mktemp -d "${TMPDIR:-/tmp}/akdiag-cluster.XXXXXX") || exit 90
mkdir "$d/out" || exit 91
echo "tmp=$d"
"""

CLEANUP = r"""d=$1
if [ "$2" = stop ] && [ -f "$d/pid" ]; then
  pid=$(cat "$d/pid" 2>/dev/null)
  if [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null; then
    n=0
    while kill -0 "$pid" 2>/dev/null && [ "$n" -lt 50 ]; do sleep 0.1; n=$((n + 1)); done
    kill -KILL "$pid" 2>/dev/null
  fi
fi
rm -rf "$d"
"""


# Held open by akdiag for the host's whole run (Connection.hold): when its stdin ends, because
# akdiag is done, was killed, or the connection dropped, the host cleans up after itself.
GUARD = UNTIL_EOF + "\n" + CLEANUP

# The collect, with its PID in the folder while it runs (the clean-up stops it by that PID;
# the file is gone once it has ended, so that a PID used again later is never signalled).
# Its stdin goes to it through fd 3: an asynchronous command's own stdin is /dev/null.
COLLECT = """cd {tmp} || exit 97
{cache}exec 3<&0
{runner} collect {args} 0<&3 3<&- &
echo $! > {tmp}/pid
wait $!
s=$?
rm -f {tmp}/pid
exit $s
"""


def script(body: str, *args: str) -> str:
    """A script taking positional arguments ($1, $2...) as `sh -c` would."""
    return f"set -- {' '.join(shlex.quote(a) for a in args)}\n{body}"


def parse_probe(text: str) -> Dict[str, str]:
    found = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.isidentifier():
            found[key] = value.strip()
    return found
