"""Datastore checks, one module per kind of server.

endpoints   where each datastore is (main.json, the catalog, --catalog) and its credentials
checks      runs every endpoint's check at once, each bounded by the datastore timeout
common      the record, the time budget, the TCP probe, a small HTTP GET, error wording
resp        INFO replies of SSDB (an array) and Redis/Kvrocks (text); a RESP2 decoder
respclient  one redis-py connection in RESP2 with raw replies
mongodb, ssdb, kvrocks, rabbitmq, clickhouse, health   the checks themselves
"""
