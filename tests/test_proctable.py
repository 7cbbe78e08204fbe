"""The process table read straight from /proc agrees with psutil on real processes."""

from __future__ import annotations

import os
import subprocess
import time

import psutil

from collector import proctable


def test_rows_agree_with_psutil_on_real_processes():
    child = subprocess.Popen(["sleep", "60"])
    try:
        give_up = time.monotonic() + 10  # until it has exec'd sleep(1) and sleeps in it
        while (psutil.Process(child.pid).name(), psutil.Process(child.pid).status()) != (
                "sleep", psutil.STATUS_SLEEPING) and time.monotonic() < give_up:
            time.sleep(0.01)
        table = proctable.read_table()
        for pid in (os.getpid(), child.pid):
            row, proc = table[pid], psutil.Process(pid)
            assert (row["ppid"], row["name"], row["username"]) == (proc.ppid(), proc.name(), proc.username())
            assert abs(row["create_time"] - proc.create_time()) < 0.05
            assert row["rss"] > 0 and row["vms"] >= row["rss"]
            assert row["num_threads"] == proc.num_threads()
        assert table[child.pid]["status"] == psutil.STATUS_SLEEPING
        assert table[child.pid]["cpu_seconds"] < 1.0
    finally:
        child.kill()
        child.wait()


def test_a_zombie_is_a_row_with_its_status():
    child = subprocess.Popen(["true"])
    give_up = time.monotonic() + 10
    while psutil.Process(child.pid).status() != psutil.STATUS_ZOMBIE and time.monotonic() < give_up:
        time.sleep(0.01)  # it exits at once, and stays a zombie until wait()
    try:
        assert proctable.read_table()[child.pid]["status"] == psutil.STATUS_ZOMBIE
    finally:
        child.wait()
