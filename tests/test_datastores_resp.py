"""The RESP reply parser on a real SSDB 1.9.8's captured replies and on Redis's text."""

from __future__ import annotations

import pytest

from collector.datastores import resp
from servers.ssdb import REPLIES

REDIS_INFO = (
    "# Server\r\nredis_version:7.0.15\r\nredis_mode:standalone\r\nos:Linux 6.1.0 x86_64\r\n"
    "uptime_in_seconds:97\r\n\r\n# Clients\r\nconnected_clients:3\r\nmaxclients:10000\r\n\r\n"
    "# Memory\r\nused_memory:941928\r\nused_memory_human:919.85K\r\nmem_fragmentation_ratio:7.51\r\n\r\n"
    "# Persistence\r\nloading:0\r\nrdb_last_bgsave_status:ok\r\n\r\n"
    "# Keyspace\r\ndb0:keys=12,expires=3,avg_ttl=1000\r\ndb2:keys=1,expires=0,avg_ttl=0\r\n"
)


def test_capture_holds_every_reply_the_fake_server_needs():
    assert set(REPLIES) >= {"info", "dbsize", "ping", "version", "hello"}


def test_ssdb_info_array_is_parsed_from_the_captured_bytes():
    reply, end = resp.decode(REPLIES["info"])
    assert end == len(REPLIES["info"])
    assert isinstance(reply, list) and len(reply) == 17
    parsed = resp.parse_info(reply)
    assert parsed["format"] == "ssdb"
    assert parsed["server"] == "ssdb-server"
    fields = parsed["fields"]
    assert fields["version"] == "1.9.8"
    assert fields["links"] == 1 and fields["total_calls"] == 0 and fields["dbsize"] == 0
    assert fields["binlogs"] == {"capacity": 20000000, "min_seq": 0, "max_seq": 0}
    assert fields["serv_key_range"] == {k: '"" - ""' for k in ("kv", "hash", "zset", "list")}
    assert fields["data_key_range"]["list"] == '"" - ""'
    assert "Compactions" in fields["leveldb.stats"][0]
    assert resp.info_version(parsed) == "1.9.8"
    summary = resp.ssdb_summary(parsed)
    assert summary["version"] == "1.9.8" and summary["binlogs"]["capacity"] == 20000000
    assert summary["other"] == {}


def test_ssdb_dbsize_is_an_array_of_one_string():
    reply, _ = resp.decode(REPLIES["dbsize"])
    assert reply == [b"0"]
    assert resp.ssdb_dbsize(reply) == 0
    assert resp.ssdb_dbsize(42) == 42  # Redis's integer
    with pytest.raises(ValueError):
        resp.ssdb_dbsize([b"many"])


def test_other_captured_replies_decode():
    assert resp.decode(REPLIES["ping"])[0] == b"PONG"
    assert resp.decode(REPLIES["version"])[0] == [b"1.9.8"]
    error = resp.decode(REPLIES["hello"])[0]
    assert isinstance(error, resp.ReplyError) and "Unknown Command: hello" in str(error)


def test_one_parser_tells_redis_text_from_ssdb_array():
    parsed = resp.parse_info(REDIS_INFO.encode())
    assert parsed["format"] == "redis"
    sections = parsed["sections"]
    assert sections["server"]["redis_version"] == "7.0.15"
    assert sections["clients"]["connected_clients"] == 3
    assert sections["memory"]["mem_fragmentation_ratio"] == 7.51
    assert sections["persistence"]["rdb_last_bgsave_status"] == "ok"
    assert sections["keyspace"]["db0"] == {"keys": 12, "expires": 3, "avg_ttl": 1000}
    assert resp.info_version(parsed) == "7.0.15"
    ssdb = resp.parse_info(resp.decode(REPLIES["info"])[0])
    assert ssdb["format"] == "ssdb"


def test_kvrocks_version_wins_over_its_redis_compatibility_version():
    text = "# Server\r\nversion:2.8.0\r\nredis_version:4.0.0\r\nkvrocks_version:2.8.0\r\n"
    assert resp.info_version(resp.parse_info(text)) == "2.8.0"


def test_info_of_another_shape_is_refused():
    with pytest.raises(ValueError):
        resp.parse_info(12)


@pytest.mark.parametrize("raw", [b"*3\r\n$1\r\na\r\n", b"$10\r\nabc\r\n", b"+OK"])
def test_incomplete_replies_ask_for_more(raw):
    with pytest.raises(resp.IncompleteReply):
        resp.decode(raw)


def test_bytes_that_are_not_resp_are_refused():
    with pytest.raises(ValueError):
        resp.decode(b"\x16\x03\x01garbage\r\n")


def test_encode_command_round_trips():
    raw = resp.encode_command("AUTH", "pw")
    assert raw == b"*2\r\n$4\r\nAUTH\r\n$2\r\npw\r\n"
    assert resp.decode(raw)[0] == [b"AUTH", b"pw"]
