"""The hosts of a cluster run (hosts file and --host), the ssh command line akdiag builds,
and the choice of the akdiag run on a host: no SSH needed here."""

from __future__ import annotations

import textwrap

import pytest

from conftest import akdiag

from collector import __version__
from collector.cluster.hosts import HostsError, load_hosts_file, name_from_destination, parse_host_option
from collector.cluster.single_file import usable_installed_akdiag, version_tuple
from collector.cluster.ssh import SshSettings, classify, stderr_last_line


def _write(tmp_path, text: str):
    path = tmp_path / "hosts.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def test_hosts_file_with_defaults_roles_catalog_and_timeout(tmp_path):
    (tmp_path / "db.yaml").write_text("processes: []\n")
    hosts = load_hosts_file(_write(tmp_path, """\
        defaults: {basedir: /opt/akd, roles: [app]}
        hosts:
          - {name: app1, ssh: root@10.0.0.11}
          - name: db1
            ssh: admin@db1.example.com
            basedir: /srv/akd
            roles: mongodb
            catalog: db.yaml
            timeout: 600
          - ssh: trk1
        """))
    assert [h.name for h in hosts] == ["app1", "db1", "trk1"]
    assert hosts[0].basedir == "/opt/akd" and hosts[0].roles == ("app",) and hosts[0].timeout is None
    assert hosts[1].destination == "admin@db1.example.com" and hosts[1].basedir == "/srv/akd"
    assert hosts[1].roles == ("mongodb",) and hosts[1].catalog == tmp_path / "db.yaml" and hosts[1].timeout == 600
    assert hosts[2].destination == "trk1" and hosts[2].basedir == "/opt/akd"


@pytest.mark.parametrize("text, message", [
    ("hosts:\n  - {name: a, ssh: a, port: 22}\n", "line 2: unknown field 'port' in a host"),
    ("hosts:\n  - {name: a}\n", "line 2: a host has no 'ssh' field"),
    ("hosts:\n  - {name: 'a b', ssh: x}\n", "line 2: host name 'a b' must be"),
    ("hosts:\n  - {name: a, ssh: x}\n  - {name: a, ssh: y}\n", "host name 'a' is used twice"),
    ("hosts:\n  - {ssh: x, basedir: opt/akd}\n", "line 2: basedir 'opt/akd' must be an absolute path"),
    ("hosts:\n  - {ssh: -oProxyCommand=evil}\n", "must not start with '-'"),
    ("hosts:\n  - {ssh: x, timeout: -1}\n", "line 2: field 'timeout' must be a positive number"),
    ("hosts:\n  - {ssh: x, roles: 3}\n", "line 2: field 'roles' must be a list or str or null, got '3'"),
    ("hosts:\n  - {ssh: x, roles: [app, 'front end']}\n", "line 2: field 'roles': role 'front end' must be a word"),
    ("hosts:\n  - {ssh: x, roles: [app, 3]}\n", "line 2: field 'roles' must be a list of words"),
    ("hosts:\n  - {ssh: x, catalog: nope.yaml}\n", "field 'catalog': no such file"),
    ("hosts: []\n", "line 1: field 'hosts' lists no host"),
    ("servers: []\n", "line 1: unknown field 'servers'"),
    ("hosts:\n  - {ssh: x\n", "not valid YAML"),
    ("", "the hosts file is empty"),
])
def test_hosts_file_mistakes_name_the_line(tmp_path, text, message):
    with pytest.raises(HostsError) as raised:
        load_hosts_file(_write(tmp_path, text))
    assert message in str(raised.value)
    assert str(tmp_path / "hosts.yaml") in str(raised.value)


def test_host_option_forms():
    spec = parse_host_option("root@10.0.0.5:/opt/akd")
    assert (spec.name, spec.destination, spec.basedir) == ("10.0.0.5", "root@10.0.0.5", "/opt/akd")
    spec = parse_host_option("app1")
    assert (spec.name, spec.destination, spec.basedir) == ("app1", "app1", None)
    spec = parse_host_option("admin@[fe80::1]:/srv/akd")
    assert (spec.name, spec.destination, spec.basedir) == ("fe80-1", "admin@[fe80::1]", "/srv/akd")
    with pytest.raises(HostsError, match="must be an absolute path"):
        parse_host_option("root@app1:opt")
    with pytest.raises(HostsError, match="must not start with '-'"):
        parse_host_option("-oProxyCommand=x")
    assert name_from_destination("ssh://admin@db1.example.com:2222") == "db1.example.com"


def test_host_option_takes_roles():
    spec = parse_host_option("admin@10.0.0.5:/opt/akd@roles=frontend,tracker")
    assert (spec.destination, spec.basedir, spec.roles) == ("admin@10.0.0.5", "/opt/akd", ("frontend", "tracker"))
    spec = parse_host_option("app1@role=app")
    assert (spec.name, spec.destination, spec.basedir, spec.roles) == ("app1", "app1", None, ("app",))
    spec = parse_host_option("root@[fe80::1]:/srv/akd@roles=db, db ,mta")
    assert (spec.destination, spec.basedir, spec.roles) == ("root@[fe80::1]", "/srv/akd", ("db", "mta"))
    assert parse_host_option("root@10.0.0.5").roles == ()
    with pytest.raises(HostsError, match="'@roles=' names no role"):
        parse_host_option("root@10.0.0.5@roles=")
    with pytest.raises(HostsError, match="role 'a;b' must be a word"):
        parse_host_option("root@10.0.0.5@roles=a;b")


def test_roles_in_the_file_may_be_one_comma_separated_string(tmp_path):
    (host,) = load_hosts_file(_write(tmp_path, "hosts:\n  - {ssh: app1, roles: 'frontend, tracker'}\n"))
    assert host.roles == ("frontend", "tracker")


def test_cli_reports_hosts_file_errors_and_cluster_options_without_hosts(tmp_path):
    bad = _write(tmp_path, "hosts:\n  - {name: a, ssh: a, colour: red}\n")
    done = akdiag("collect", "--hosts", str(bad), "--output", str(tmp_path))
    assert done.returncode == 2 and f"{bad}, line 2: unknown field 'colour'" in done.stderr
    alone = akdiag("collect", "--parallel", "3", "--output", str(tmp_path))
    assert alone.returncode == 2 and "need --hosts or --host" in alone.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["hosts.yaml"]


def test_ssh_command_line_keeps_host_key_checking_and_batch_mode():
    settings = SshSettings(config_file="/etc/lab/ssh_config", options=("Port=2222",), extra_args=("-4",),
                           connect_timeout=7)
    argv = settings.argv("/tmp/akdiag-ssh-x/c0", master=True)
    assert argv[:3] == ["ssh", "-F", "/etc/lab/ssh_config"]
    options = [argv[i + 1] for i, word in enumerate(argv) if word == "-o"]
    assert options.index("BatchMode=yes") < options.index("Port=2222")  # akdiag's own first: they win
    assert "ConnectTimeout=7" in options and "ControlMaster=yes" in options
    assert "ControlPath=/tmp/akdiag-ssh-x/c0" in options and argv[-1] == "-4"
    assert not any(o.lower().startswith("stricthostkeychecking") for o in options)
    assert "ControlMaster=no" in SshSettings().argv("/x", master=False)


def test_stderr_reasons():
    noise = b"Warning: Permanently added '[127.0.0.1]:2222' (ED25519) to the list of known hosts.\r\n"
    assert stderr_last_line(noise + b"root@127.0.0.1: Permission denied (publickey).\n") == \
        "root@127.0.0.1: Permission denied (publickey)."
    assert classify("root@h: Permission denied (publickey).") == "auth_failed"
    assert classify("ssh: connect to host 127.0.0.1 port 1: Connection refused") == "unreachable"
    assert classify("ssh: Could not resolve hostname nowhere: Name or service not known") == "unreachable"
    assert classify("Host key verification failed.") == "host_key"
    assert classify("something else") == "ssh_error" and stderr_last_line(noise) is None


def test_an_installed_akdiag_is_used_only_when_not_older():
    newer = {"akdiag": "/usr/local/bin/akdiag", "akdiag_version": "akdiag, version 99.1.0"}
    older = {"akdiag": "/usr/local/bin/akdiag", "akdiag_version": "akdiag, version 0.0.1"}
    same = {"akdiag": "/usr/local/bin/akdiag", "akdiag_version": f"akdiag, version {__version__}"}
    assert usable_installed_akdiag(newer, file_given=False) == "/usr/local/bin/akdiag"
    assert usable_installed_akdiag(same, file_given=False) == "/usr/local/bin/akdiag"
    assert usable_installed_akdiag(older, file_given=False) is None
    assert usable_installed_akdiag(newer, file_given=True) is None  # --akdiag-file: always that file
    assert usable_installed_akdiag({"akdiag": None}, file_given=False) is None
    assert usable_installed_akdiag({"akdiag": "/x/akdiag", "akdiag_version": ""}, file_given=False) is None
    assert version_tuple("akdiag, version 1.10.2") > version_tuple("1.9.9")
