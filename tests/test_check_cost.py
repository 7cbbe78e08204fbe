"""What `akdiag check` does not load: the collectors it does not run, an HTTP client
where no HTTP endpoint answers, statistics for one median (issue 14: check <= 4x akdiag's
own start-up).  Each case runs in a new interpreter, whose modules are its own."""

from __future__ import annotations

import json
import os
import random
import statistics
import subprocess
import sys

from conftest import REPO

NOT_FOR_CHECK = ("collector.collectors.logs", "collector.collectors.services", "collector.collectors.history")
QUICK = ("system", "processes", "pidfiles", "ports", "akd", "config", "datastores", "kernel", "network")


def _modules_after(code: str) -> dict:
    """Run `code` in a new interpreter; it prints a JSON value last."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120,
                          cwd=str(REPO))
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_registry_imports_a_collector_only_when_a_run_selects_it():
    found = _modules_after(
        "import json, sys\n"
        "from collector.collectors import load, registry\n"
        "specs = registry()\n"
        "before = sorted(m for m in sys.modules if m.startswith('collector.collectors.'))\n"
        "load([specs['kernel'], specs['network']])\n"
        "after = sorted(m for m in sys.modules if m.startswith('collector.collectors.'))\n"
        "print(json.dumps({'names': list(specs), 'before': before, 'after': after,\n"
        "                  'runs': repr(specs['logs'].run)}))\n")
    assert found["names"] == ["system", "processes", "pidfiles", "ports", "logs", "akd", "config", "datastores",
                              "kernel", "services", "network", "history"]
    assert found["before"] == []
    assert "collector.collectors.kernel" in found["after"] and "collector.collectors.network" in found["after"]
    assert not set(NOT_FOR_CHECK) & set(found["after"])
    assert found["runs"] == "collector.collectors.logs.collect"


def test_a_deferred_collector_runs_its_modules_collect(tmp_path):
    """Called without load() first (as a caller of spec.run may), it imports and runs."""
    found = _modules_after(
        "import json, sys\n"
        "from pathlib import Path\n"
        "from collector.collectors import registry\n"
        "from collector.context import CollectOptions, Context, Deadline\n"
        "class Writer:\n"
        "    pass\n"
        f"ctx = Context(basedir=Path({str(tmp_path)!r}), basedir_source='test', catalog=None,\n"
        "              deadline=Deadline(10), writer=Writer(), options=CollectOptions(cpu_sample_seconds=0.0))\n"
        "data = registry()['network'].run(ctx)\n"
        "print(json.dumps({'keys': sorted(data), 'loaded': 'collector.collectors.network' in sys.modules}))\n")
    assert found["loaded"] and "interfaces" in found["keys"] and "counters" in found["keys"]


def test_a_check_loads_neither_the_collectors_it_skips_nor_an_http_client_nobody_answers(tmp_path):
    """A BASEDIR with nothing in it: the check runs its quick collectors and judges; logs,
    services and history stay unloaded, and http.client is loaded only if one of the HTTP
    endpoints it asks (the catalog's defaults) accepts a connection (none does in the tests'
    own network namespace)."""
    basedir = tmp_path / "akd"
    basedir.mkdir()
    found = _modules_after(
        "import json, socket, sys\n"
        "from pathlib import Path\n"
        "from collector.catalog import load_catalog\n"
        "from collector.check import check_host\n"
        f"basedir = Path({str(basedir)!r})\n"
        "catalog = load_catalog(None)\n"
        "result = check_host(basedir, 'test', catalog, timeout=20.0, datastore_timeout=0.5)\n"
        "names = [n for n in sys.modules if n.startswith('collector.collectors.') or n == 'http.client']\n"
        "from collector.datastores.endpoints import resolve_endpoints\n"
        "def answers(ep):\n"
        "    try:\n"
        "        socket.create_connection((ep.host, ep.port), timeout=0.5).close()\n"
        "    except OSError:\n"
        "        return False\n"
        "    return True\n"
        "http = [ep for ep in resolve_endpoints(basedir, catalog)[0] if ep.kind == 'http' and ep.port]\n"
        "print(json.dumps({'code': result.code, 'ran': sorted(a['name'] for a in result.analyzers),\n"
        "                  'loaded': sorted(names), 'http_endpoints': len(http),\n"
        "                  'http_answering': sum(answers(ep) for ep in http)}))\n")
    assert found["code"] in (0, 1, 2, 3) and "processes" in found["ran"]
    loaded = set(found["loaded"])
    assert {f"collector.collectors.{name}" for name in QUICK} <= loaded
    assert not loaded & set(NOT_FOR_CHECK), loaded
    assert found["http_endpoints"] > 0
    assert ("http.client" in loaded) == (found["http_answering"] > 0), found


def test_the_median_interval_is_statistics_median():
    from collector.history_file import median_interval

    draw = random.Random(22)
    for _ in range(3000):
        times = sorted(draw.uniform(0, 1000) for _ in range(draw.randrange(0, 12)))
        if times and draw.random() < 0.3:
            times += times[-2:]  # a repeated time is no step
        steps = [b - a for a, b in zip(times, times[1:]) if b > a]
        assert median_interval(times) == (round(statistics.median(steps), 3) if steps else None)
    assert median_interval([10.0, 20.0, 40.0]) == 15.0 and median_interval([5.0]) is None

