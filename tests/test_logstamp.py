"""The glog, Redis and syslog stamps at the start of a line, and no stamp read out of a
message's text."""

from __future__ import annotations

from collector.logstamp import Stamp, other_stamp


def test_each_stamp_at_the_start_of_a_line():
    assert other_stamp(b"1234:M 29 Nov 2026 10:30:00.125 # ready") == Stamp(2026, 11, 29, 10, 30, 0, b"125", 31)
    assert other_stamp(b"29 Nov 2026 10:30:00 no role prefix")[:6] == (2026, 11, 29, 10, 30, 0)
    assert other_stamp(b"Nov  9 10:35:00 app1 akd[99]: started")[:6] == (None, 11, 9, 10, 35, 0)
    assert other_stamp(b"E1129 10:25:00.000001 ssdb.cc:1] binlog full")[:7] == (None, 11, 29, 10, 25, 0, b"000001")


def test_a_date_inside_a_message_is_no_stamp():
    for line in (b"session cookie expires 29 Nov 2026 10:00:00 GMT",
                 b"ERROR token valid until 1 Dec 2026 00:00:00",
                 b"user logged in on Nov 29 10:35:00",
                 b"12 Foo 2026 10:00:00 not a month"):
        assert other_stamp(line) is None, line
