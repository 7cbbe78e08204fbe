"""Where the datastore endpoints come from: main.json, the catalog's defaults, --catalog."""

from __future__ import annotations

import json

import pytest

from collector.catalog import load_catalog
from collector.datastores.checks import not_checked
from collector.datastores.endpoints import resolve_endpoints
from collector.simulate.host import sample_config

SEED = "s3cr3t-seed-5a9e"


def _basedir(tmp_path, config=None, raw=None):
    basedir = tmp_path / "akd"
    (basedir / "config").mkdir(parents=True)
    if raw is not None:
        (basedir / "config" / "main.json").write_text(raw)
    elif config is not None:
        (basedir / "config" / "main.json").write_text(json.dumps(config))
    return basedir


def _catalog(tmp_path, text=None):
    if text is None:
        return load_catalog()
    path = tmp_path / "catalog.yaml"
    path.write_text(text)
    return load_catalog(path)


def _by_name(endpoints):
    return {e.name: e for e in endpoints}


def test_sample_config_names_what_it_configures(tmp_path):
    config = sample_config({"webcontrol": 8082}, SEED)
    endpoints, info = resolve_endpoints(_basedir(tmp_path, config), _catalog(tmp_path))
    assert info["state"] == "ok"
    eps = _by_name(endpoints)
    control = eps["mongodb_control"]
    assert (control.host, control.port) == ("127.0.0.1", 27017)
    assert control.source == "main.json CONTROLDB_IP/CONTROLDB_PORT"
    assert control.user == "altcraft" and control.password() == f"ctl-{SEED}"
    assert control.options["auth_source"] == "admin"
    hb = eps["ssdb_hb"]
    assert (hb.port, hb.source, hb.password()) == (4420, "main.json SSDB_HBSUPP_IP/SSDB_HBSUPP_PORT", f"hb-{SEED}")
    assert eps["ssdb_notify"].password() is None  # SSDB_NOTIFY_PASS is ""
    rabbit = eps["rabbitmq"]
    assert (rabbit.host, rabbit.port, rabbit.user) == ("127.0.0.1", 5672, "altcraft")
    assert rabbit.options == {"vhost": "altcraft", "management_port": 15672}
    assert "RABBITMQ_HOST" in rabbit.source and "catalog" in rabbit.source
    clickhouse = eps["clickhouse"]
    assert (clickhouse.port, clickhouse.user, clickhouse.options["http_port"]) == (9000, "default", 8123)
    assert eps["kvrocks_duplicates"].source == "main.json CAMP_DUPLICATESDB.NODES[0]"
    assert eps["kvrocks_duplicates"].password() == f"kv-{SEED}"
    assert eps["webcontrol"].source == "main.json WEBCONTROL_PUBLIC_IP/WEBCONTROL_PUBLIC_PORT"
    assert eps["webapi"].port == 8801 and eps["webapi"].source.startswith("catalog process api")
    # the catalog's components whose keys main.json leaves out are not configured, not down
    for name in ("kvrocks_workflow_cache", "trkwebctrl"):
        assert eps[name].host is None, name
        assert not_checked(eps[name])["status"] == "not_configured"
    # those main.json has no key for are looked for at the catalog's default address
    for name, port in (("mongodb_accounts", 27018), ("ssdb_actions", 4410), ("ssdb_stats", 4440)):
        assert (eps[name].host, eps[name].port) == ("127.0.0.1", port), name
        assert eps[name].source == "catalog default (main.json has no key for it)"
        assert eps[name].if_absent == ("nothing listens at the catalog's default address and main.json has "
                                       "no key for it")
        assert not eps[name].secrets
    assert "FILEDB_ENABLE" in eps["mongodb_filedb"].options["not_configured"]


def test_without_main_json_the_catalog_defaults_are_used(tmp_path):
    endpoints, info = resolve_endpoints(_basedir(tmp_path), _catalog(tmp_path))
    assert info["state"] == "missing"
    eps = _by_name(endpoints)
    for name, port in (("mongodb_control", 27017), ("mongodb_accounts", 27018), ("ssdb_actions", 4410),
                       ("ssdb_stats", 4440), ("rabbitmq", 5672), ("clickhouse", 9000)):
        assert eps[name].port == port and eps[name].host == "127.0.0.1"
        assert eps[name].source == "catalog default (main.json missing)"
        assert not eps[name].secrets
        assert eps[name].if_absent is None  # without main.json, nothing says a default is optional


def test_invalid_main_json_falls_back_to_defaults_and_says_so(tmp_path):
    basedir = _basedir(tmp_path, raw='{"CONTROLDB_IP": "10.0.0.1", "CONTROLDB_PASS": "hunter2-x",')
    endpoints, info = resolve_endpoints(basedir, _catalog(tmp_path))
    assert info["state"] == "invalid" and "not valid JSON" in info["error"]
    assert "hunter2-x" not in info["error"]
    assert _by_name(endpoints)["mongodb_control"].source == "catalog default (main.json invalid)"


def test_replica_set_form_gives_one_endpoint_per_member(tmp_path):
    config = {"CONTROLDB_REPL_SET_NAME": "rs0", "CONTROLDB_USER": "altcraft", "CONTROLDB_PASS": "pw-1",
              "MONGO_AUTH_DB": "altcraft_auth",
              "CONTROLDB": [{"IP": "db1", "PORT": 27017}, {"IP": "db2", "PORT": "27017"}, {"IP": "db3"}]}
    endpoints, _ = resolve_endpoints(_basedir(tmp_path, config), _catalog(tmp_path))
    members = [e for e in endpoints if e.group == "mongodb_control"]
    assert [(e.name, e.host, e.port) for e in members] == [
        ("mongodb_control[0]", "db1", 27017), ("mongodb_control[1]", "db2", 27017),
        ("mongodb_control[2]", "db3", 27017)]
    assert all(e.options["replica_set"] == "rs0" and e.options["auth_source"] == "altcraft_auth" for e in members)
    assert members[1].source == "main.json CONTROLDB[1], CONTROLDB_REPL_SET_NAME"
    assert all(e.password() == "pw-1" for e in members)


def test_kvrocks_nodes_and_filedb(tmp_path):
    config = {"PROCWORKFLOW_DISTRIBUTED_CACHE_DB": {"MODE": "cluster", "PASSWORD": "kvpw",
                                                    "NODES": [{"HOST": "10.0.0.7", "PORT": 6666},
                                                              {"HOST": "10.0.0.8", "PORT": 6667}]},
              "FILEDB_ENABLE": True, "FILEDB_IP": "10.0.0.9", "FILEDB_PORT": 27019, "FILEDB_USER": "files"}
    eps = _by_name(resolve_endpoints(_basedir(tmp_path, config), _catalog(tmp_path))[0])
    assert (eps["kvrocks_workflow_cache[1]"].host, eps["kvrocks_workflow_cache[1]"].port) == ("10.0.0.8", 6667)
    assert eps["kvrocks_workflow_cache[0]"].options["mode"] == "cluster"
    assert eps["kvrocks_workflow_cache[0]"].password() == "kvpw"
    filedb = eps["mongodb_filedb"]
    assert (filedb.host, filedb.port, filedb.user) == ("10.0.0.9", 27019, "files")


def test_listen_everywhere_address_is_checked_on_loopback(tmp_path):
    eps = _by_name(resolve_endpoints(_basedir(tmp_path, {"RABBITMQ_HOST": "0.0.0.0"}), _catalog(tmp_path))[0])
    assert eps["rabbitmq"].host == "127.0.0.1"
    assert any("every interface" in note for note in eps["rabbitmq"].notes)


def test_rabbitmq_host_may_carry_a_port(tmp_path):
    eps = _by_name(resolve_endpoints(_basedir(tmp_path, {"RABBITMQ_HOST": "mq.local:5673"}), _catalog(tmp_path))[0])
    assert (eps["rabbitmq"].host, eps["rabbitmq"].port) == ("mq.local", 5673)
    assert eps["rabbitmq"].source == "main.json RABBITMQ_HOST"


def test_a_bad_value_is_an_error_record_naming_the_key(tmp_path):
    eps = _by_name(resolve_endpoints(_basedir(tmp_path, {"SSDB_HBSUPP_IP": "127.0.0.1", "SSDB_HBSUPP_PORT": "x"}),
                                     _catalog(tmp_path))[0])
    record = not_checked(eps["ssdb_hb"])
    assert record["status"] == "error"
    assert record["error"] == "main.json SSDB_HBSUPP_PORT is not a port number: 'x'"


def test_user_catalog_overrides_the_address_and_keeps_the_credentials(tmp_path):
    config = sample_config({}, SEED)
    catalog = _catalog(tmp_path, "components:\n"
                                 "  - {name: mongodb_control, host: 127.0.0.2, port: 27999}\n"
                                 "  - {name: ssdb_actions, port: 14410}\n"
                                 "  - {name: rabbitmq, management_port: 25673}\n"
                                 "  - {name: trkwebctrl, host: 127.0.0.1, port: 8090}\n"
                                 "  - {name: pg_accounts, kind: redis, host: 10.1.1.1, port: 7000}\n")
    eps = _by_name(resolve_endpoints(_basedir(tmp_path, config), catalog)[0])
    control = eps["mongodb_control"]
    assert (control.host, control.port) == ("127.0.0.2", 27999)
    assert control.source == f"--catalog {tmp_path / 'catalog.yaml'}"
    assert control.password() == f"ctl-{SEED}" and control.user == "altcraft"
    # named only by the user's catalog: checked, at the catalog's host and the given port
    assert (eps["ssdb_actions"].host, eps["ssdb_actions"].port) == ("127.0.0.1", 14410)
    assert eps["ssdb_actions"].source.startswith("--catalog")
    assert eps["ssdb_actions"].if_absent is None  # the user says it is there: down is down
    # a field other than host/port changes that field, the address still comes from main.json
    assert eps["rabbitmq"].source.startswith("main.json")
    assert eps["rabbitmq"].options["management_port"] == 25673
    assert (eps["trkwebctrl"].host, eps["trkwebctrl"].port) == ("127.0.0.1", 8090)
    assert (eps["pg_accounts"].kind, eps["pg_accounts"].port) == ("redis", 7000)


def test_simulated_hosts_moved_process_ports_are_followed(tmp_path):
    catalog = _catalog(tmp_path, "processes:\n  - {binary: api, port: 18801}\n")
    eps = _by_name(resolve_endpoints(_basedir(tmp_path, {}), catalog)[0])
    assert eps["webapi"].port == 18801


def test_catalog_rejects_a_bad_management_port(tmp_path):
    from collector.catalog import CatalogError
    with pytest.raises(CatalogError, match="components.management_port' must be 1-65535"):
        _catalog(tmp_path, "components:\n  - {name: rabbitmq, management_port: 0}\n")


def test_credentials_never_reach_a_record(tmp_path):
    config = sample_config({}, SEED)
    endpoints, info = resolve_endpoints(_basedir(tmp_path, config), _catalog(tmp_path))
    text = json.dumps([not_checked(e) for e in endpoints]) + json.dumps(info) + repr(endpoints)
    assert SEED not in text
