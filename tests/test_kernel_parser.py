"""collector/kernelmsg.py on the kernel's own message formats (printk strings of
mm/oom_kill.c, arch/x86/mm/fault.c, arch/x86/kernel/traps.c, kernel/hung_task.c,
block/blk-core.c, fs/buffer.c, fs/ext4, fs/xfs, nf_conntrack_core.c, tcp_input.c), each
next to a message that looks alike and is not the event."""

from __future__ import annotations

import pytest

from collector import kernelmsg
from collector.kernelmsg import classify, events_of

KB = 1024

OOM_6X = ("Out of memory: Killed process 4242 (AK:procworkflo) total-vm:4194304kB, anon-rss:3145728kB, "
          "file-rss:2048kB, shmem-rss:1024kB, UID:1000 pgtables:6500kB oom_score_adj:0")
OOM_MEMCG_SUMMARY = ("oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,"
                     "oom_memcg=/system.slice/mongod.service,task_memcg=/system.slice/mongod.service,"
                     "task=mongod,pid=812,uid=999")
OOM_MEMCG = ("Memory cgroup out of memory: Killed process 812 (mongod) total-vm:2097152kB, anon-rss:1048576kB, "
             "file-rss:0kB, shmem-rss:0kB, UID:999 pgtables:2200kB oom_score_adj:0")
OOM_OLD = "Killed process 1234 (node) total-vm:2097152kB, anon-rss:1048576kB, file-rss:512kB"


def test_an_oom_kill_gives_victim_and_rss():
    event = classify(OOM_6X)
    assert event["kind"] == "oom_kill" and event["pid"] == 4242 and event["process"] == "AK:procworkflo"
    assert event["rss_bytes"] == (3145728 + 2048 + 1024) * KB
    assert event["message"] == OOM_6X


def test_an_old_kernels_kill_line_is_a_kill():
    event = classify(OOM_OLD)
    assert (event["kind"], event["pid"], event["process"], event["rss_bytes"]) == (
        "oom_kill", 1234, "node", (1048576 + 512) * KB)


@pytest.mark.parametrize("text", [
    "Out of memory: Kill process 1234 (node) score 900 or sacrifice child",  # the choice, before the kill
    "oom_reaper: reaped process 1234 (node), now anon-rss:0kB, file-rss:0kB, shmem-rss:0kB",
    "node invoked oom-killer: gfp_mask=0x140cca(GFP_HIGHUSER_MOVABLE|__GFP_COMP), order=0, oom_score_adj=0",
    "systemd[1]: node.service: A process of this unit has been killed by the OOM killer.",
])
def test_lines_around_an_oom_kill_are_not_kills(text):
    assert classify(text) is None


def test_the_memcg_summary_gives_the_kill_its_cgroup():
    events = events_of([(1000.0, OOM_MEMCG_SUMMARY), (1000.5, "Tasks state (memory values in pages):"),
                        (1001.0, OOM_MEMCG)])
    assert len(events) == 1
    assert events[0]["cgroup"] == "/system.slice/mongod.service" and events[0]["pid"] == 812
    assert events[0]["time"] == "1970-01-01T00:16:41.000000Z"


def test_a_summary_of_another_victim_gives_no_cgroup():
    events = events_of([(1.0, OOM_MEMCG_SUMMARY.replace("pid=812", "pid=813")), (2.0, OOM_MEMCG)])
    assert events[0]["cgroup"] is None


SEGFAULT = ("AK:api[2211]: segfault at 0 ip 00007f0a1b2c3d4e sp 00007ffc5d6e7f80 error 4 in "
            "libc.so.6[7f0a1b200000+195000] likely on CPU 1 (core 1, socket 0)")


def test_a_segfault():
    event = classify(SEGFAULT)
    assert (event["kind"], event["pid"], event["process"]) == ("segfault", 2211, "AK:api")


@pytest.mark.parametrize("text, comm, pid", [
    ("traps: node[1234] general protection fault ip:7f0a1b2c3d4e sp:7ffc5d6e7f80 error:0 in "
     "libc.so.6[7f0a1b200000+195000]", "node", 1234),
    ("traps: beam.smp[77] trap invalid opcode ip:55d0c0ffee00 sp:7ffc5d6e7f80 error:0 in "
     "beam.smp[55d0c0000000+2000000]", "beam.smp", 77),
    ("traps: mongod[812] trap divide error ip:55d0c0ffee00 sp:7ffc5d6e7f80 error:0 in mongod[55d0c0000000+2000]",
     "mongod", 812),
])
def test_traps(text, comm, pid):
    event = classify(text)
    assert (event["kind"], event["process"], event["pid"]) == ("trap", comm, pid)


@pytest.mark.parametrize("text", [
    "systemd[1]: node.service: Main process exited, code=dumped, status=11/SEGV",
    "audit: type=1701 audit(1700000000.123:42): auid=4294967295 uid=0 gid=0 ses=4294967295 pid=1234 "
    "comm=\"node\" exe=\"/usr/bin/node\" sig=11 res=1",
    "traps: PANIC: double fault, error_code: 0x0",
])
def test_crash_lookalikes_are_not_crashes(text):
    assert classify(text) is None


def test_a_hung_task():
    event = classify("INFO: task jbd2/sda1-8:312 blocked for more than 120 seconds.")
    assert (event["kind"], event["process"], event["pid"]) == ("hung_task", "jbd2/sda1-8", 312)
    assert classify('"echo 0 > /proc/sys/kernel/hung_task_timeout_secs" disables this message.') is None


@pytest.mark.parametrize("text, device", [
    ("blk_update_request: I/O error, dev sda, sector 123456 op 0x1:(WRITE) flags 0x800 phys_seg 1 prio class 0",
     "sda"),
    ("I/O error, dev sdb, sector 2048 op 0x0:(READ) flags 0x80700 phys_seg 1 prio class 2", "sdb"),
    ("blk_update_request: I/O error, dev fd0, sector 0", "fd0"),
    ("critical medium error, dev sdc, sector 1000 op 0x0:(READ) flags 0x0 phys_seg 1 prio class 0", "sdc"),
    ("Buffer I/O error on dev sda1, logical block 0, async page read", "sda1"),
    ("EXT4-fs error (device sda1): ext4_find_entry:1455: inode #2: comm ls: reading directory lblock 0", "sda1"),
    ("EXT4-fs (dm-0): Remounting filesystem read-only", "dm-0"),
    ("Aborting journal on device sda1-8.", "sda1"),
    ('XFS (dm-0): metadata I/O error in "xfs_trans_read_buf_map" at daddr 0x2 len 1 error 5', "dm-0"),
    ("XFS (sdb1): Corruption detected. Unmount and run xfs_repair", "sdb1"),
    ("XFS (sdb1): Filesystem has been shut down due to log error (0x2).", "sdb1"),
])
def test_io_errors(text, device):
    event = classify(text)
    assert (event["kind"], event["device"]) == ("io_error", device)


@pytest.mark.parametrize("text", [
    "EXT4-fs (vda): mounted filesystem 00000000-0000-0000-0000-000000000000 r/w without journal. Quota mode: none.",
    "EXT4-fs (sda1): re-mounted 1b2c3d4e. Quota mode: none.",
    "XFS (sda1): Mounting V5 Filesystem 1b2c3d4e-0000-0000-0000-000000000000",
    "XFS (sda1): Ending clean mount",
    "sd 0:0:0:0: [sda] 209715200 512-byte logical blocks: (107 GB/100 GiB)",
])
def test_ordinary_disk_messages_are_not_errors(text):
    assert classify(text) is None


@pytest.mark.parametrize("text", ["nf_conntrack: table full, dropping packet",
                                  "nf_conntrack: nf_conntrack: table full, dropping packet."])
def test_conntrack_full(text):
    assert classify(text)["kind"] == "conntrack_full"


def test_conntrack_notes_are_not_full():
    assert classify("nf_conntrack: default automatic helper assignment has been turned off for security reasons "
                    "and CT-based firewall rule not found. Use the iptables CT target to attach helpers instead.") is None


@pytest.mark.parametrize("text, port", [
    ("TCP: request_sock_TCP: Possible SYN flooding on port 8080. Sending cookies.  Check SNMP counters.", 8080),
    ("TCP: request_sock_TCP: Possible SYN flooding on port 0.0.0.0:5672. Dropping request.  Check SNMP counters.",
     5672),
    ("TCPv6: request_sock_TCPv6: Possible SYN flooding on port [::]:8082. Sending cookies.", 8082),
])
def test_syn_flood_names_the_port(text, port):
    event = classify(text)
    assert event["kind"] == "syn_flood" and event["port"] == port


@pytest.mark.parametrize("text", [
    "Linux version 6.1.0-18-amd64 (debian-kernel@lists.debian.org) (gcc-12 (Debian 12.2.0-14) 12.2.0)",
    "random: crng reseeded due to virtual machine fork",
    "TCP: Hash tables configured (established 524288 bind 65536)",
    "e1000e 0000:00:1f.6 eno1: NIC Link is Up 1000 Mbps Full Duplex, Flow Control: Rx/Tx",
])
def test_ordinary_messages_are_no_event(text):
    assert classify(text) is None


# -- the three sources' shapes --------------------------------------------------------------------------

def test_a_kmsg_record_with_continuation_lines():
    record = (b"3,1520,9876543210,-,caller=T1234;Buffer I/O error on dev sda1, logical block 0\n"
              b" SUBSYSTEM=block\n DEVICE=b8:1\n")
    assert kernelmsg.parse_kmsg_record(record) == (1520, 9876543210, "Buffer I/O error on dev sda1, logical block 0")


def test_a_kmsg_records_escapes():
    seq, usec, text = kernelmsg.parse_kmsg_record(b"6,7,100,-;a\\x09tab and a \\x1b escape\n")
    assert (seq, usec, text) == (7, 100, "a\\x09tab and a \\x1b escape")
    assert kernelmsg.parse_kmsg_record(b"6,8,100,-;caf\\xc3\\xa9\n")[2] == "caf\u00e9"  # UTF-8 comes back


@pytest.mark.parametrize("record", [b"", b"no header here\n", b"6,1;x\n", b"x,1,2,-;text\n", b"6,1,2;x\n",
                                    b"6,1,2,-\n", b"6, 1,2,-;x\n", b"6,1,\xd9\xa3,-;x\n", b"6,,2,-;x\n"])
def test_records_of_another_shape(record):
    assert kernelmsg.parse_kmsg_record(record) is None


def test_a_record_header_as_the_kernel_documents_it():
    """/dev/kmsg's "prio,seq,usec,flags[,more];text": what follows the flags, even
    empty, up to the first ';', is the header's (Documentation/ABI/testing/dev-kmsg)."""
    assert kernelmsg.parse_kmsg_record(b"6,1,2,;a;b\n") == (1, 2, "a;b")
    assert kernelmsg.parse_kmsg_record(b"6,1,2,-,caller=T1,x=y;text") == (1, 2, "text")
    assert kernelmsg.parse_kmsg_record(b"30,18446744073709551615,5,c;\n more") == (18446744073709551615, 5, "")


@pytest.mark.parametrize("timestamp", [0.0, 1.5, 1796094764.123456, 1796094764.9999995, 1796094764.0000005,
                                       1796094764.4999995, 1796094764.9999999, 4102444799.999999, -0.5, -1.0000005])
def test_precise_times_as_datetime_writes_them(timestamp):
    assert kernelmsg.iso_utc_precise(timestamp) == _datetime_iso(timestamp)


def test_precise_times_of_many_moments_as_datetime_writes_them():
    import random

    draw = random.Random(14)
    moments = [draw.uniform(0, 4.2e9) for _ in range(20000)]
    moments += [draw.randrange(0, 4 * 10 ** 9) + draw.choice([0.5, 0.9999995, 0.0000005, 0.4999995, 0.25])
                for _ in range(20000)]
    assert [kernelmsg.iso_utc_precise(m) for m in moments] == [_datetime_iso(m) for m in moments]
    assert kernelmsg.iso_utc_precise(None) is None


def _datetime_iso(timestamp: float) -> str:
    from datetime import datetime, timezone

    return datetime.fromtimestamp(timestamp, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@pytest.mark.parametrize("line, expected", [
    ("2026-12-01T03:12:44.123456+0000 db1 kernel: " + OOM_6X, (1796094764.123456, OOM_6X)),
    ("2026-12-01T06:12:44.123456+03:00 db1 kernel: hello", (1796094764.123456, "hello")),
    ("2026-12-01T03:12:44+0000 db1 kernel: hello", (1796094764.0, "hello")),
])
def test_journal_lines(line, expected):
    moment, text = kernelmsg.parse_journal_line(line)
    assert (round(moment, 6), text) == expected


@pytest.mark.parametrize("line", ["-- No entries --", "-- Boot 0123456789abcdef --",
                                  "2026-12-01T03:12:44.123456+0000 db1 sshd[12]: not the kernel"])
def test_journal_notes_and_other_programs(line):
    assert kernelmsg.parse_journal_line(line) is None


def test_dmesg_lines():
    assert kernelmsg.parse_dmesg_line("[ 1234.567890] hello world") == (1234.56789, "hello world")
    assert kernelmsg.parse_dmesg_line("[    1.3] x") == (1.3, "x")
    assert kernelmsg.parse_dmesg_line("dmesg: read kernel buffer failed: Operation not permitted") is None
