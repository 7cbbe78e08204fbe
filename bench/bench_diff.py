"""Benchmark of `akdiag diff` on two bundles of the reference host (target: under 1 s).

    python bench/bench_diff.py
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from reference_host import build_reference_host  # noqa: E402

from collector.catalog import load_catalog  # noqa: E402
from collector.run import CollectRequest, collect  # noqa: E402


def _bundle(host, out: Path) -> Path:
    request = CollectRequest(basedir=host.basedir, basedir_source="bench", catalog=load_catalog(host.catalog_file),
                             output_dir=out, fmt="7z")
    return collect(request).path


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="akdiag-bench-") as root:
        with build_reference_host(Path(root) / "host") as host:
            out = Path(root) / "out"
            out.mkdir()
            old = _bundle(host, out)
            host.stop_process("proctrigger")
            new = _bundle(host, out)
        env = dict(os.environ, PYTHONPATH=str(HERE.parent))
        times = []
        for _ in range(5):
            started = time.perf_counter()
            done = subprocess.run([sys.executable, "-m", "collector", "diff", str(old), str(new), "--format", "json"],
                                  capture_output=True, env=env)
            times.append(time.perf_counter() - started)
            assert done.returncode in (0, 1), done.stderr.decode()
        sizes = old.stat().st_size / 1e6, new.stat().st_size / 1e6
    print(f"akdiag diff of two reference-host archives ({sizes[0]:.1f} MB and {sizes[1]:.1f} MB), whole command incl. unpacking: median {statistics.median(times):.2f} s "
          f"of 5 (runs: {', '.join(f'{t:.2f}' for t in times)}); target < 1 s")


if __name__ == "__main__":
    main()
