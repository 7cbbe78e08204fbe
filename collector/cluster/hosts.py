"""The hosts of a cluster run: a YAML file (`--hosts FILE`) and/or `--host` options.

```yaml
defaults: {basedir: /opt/akd}           # optional: fields every host gets unless it sets them
hosts:
  - {name: app1, ssh: root@10.0.0.11, roles: [app]}
  - {name: trk1, ssh: trk1.example.com, basedir: /srv/akd, roles: [tracking]}
  - {name: db1, ssh: admin@db1, roles: [mongodb], timeout: 600, catalog: site-db1.yaml}
```

`ssh` is anything the user's `ssh` takes as a destination: `[user@]host`, a `Host` alias
of ~/.ssh/config, or `ssh://[user@]host[:port]`.  A mistake is reported with the file,
the line and the field, as the catalog's are.

`--host USER@ADDRESS[:BASEDIR][@roles=ROLE[,ROLE...]]` gives one host on the command line;
`roles` (in the file: a list, or one string of comma-separated words) are words of letters,
digits, '.', '_', '-'.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import yaml

from collector.yamlfile import compose_file, where


class HostsError(Exception):
    """A hosts file or --host option that cannot be used; the message says where and why."""


NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
ROLE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
_ROLES_SUFFIX = re.compile(r"@roles?=([^@]*)$")
_FIELDS = {
    "name": (str,),
    "ssh": (str,),
    "basedir": (str, type(None)),
    "roles": (list, str, type(None)),
    "catalog": (str, type(None)),
    "timeout": (int, float, type(None)),
}
_DEFAULT_FIELDS = ("basedir", "roles", "catalog", "timeout")
_TOP_FIELDS = ("hosts", "defaults")


@dataclass(frozen=True)
class HostSpec:
    name: str
    destination: str
    basedir: Optional[str] = None  # None: the host's akdiag finds it
    roles: Tuple[str, ...] = ()
    catalog: Optional[Path] = None  # a local catalog file sent to this host
    timeout: Optional[float] = None  # this host's deadline; None: the run's --host-timeout
    where: str = ""  # "hosts.yaml, line 4" or "--host"


def check_destination(destination: str, where: str) -> str:
    destination = destination.strip()
    if not destination:
        raise HostsError(f"{where}: the SSH destination is empty")
    if destination.startswith("-"):
        raise HostsError(f"{where}: the SSH destination {destination!r} must not start with '-'")
    if any(ch.isspace() or ord(ch) < 32 for ch in destination):
        raise HostsError(f"{where}: the SSH destination {destination!r} holds a space or control character")
    return destination


def check_basedir(basedir: Optional[str], where: str) -> Optional[str]:
    if basedir is None:
        return None
    if not basedir.startswith("/"):
        raise HostsError(f"{where}: basedir {basedir!r} must be an absolute path")
    if any(ord(ch) < 32 for ch in basedir):
        raise HostsError(f"{where}: basedir holds a control character")
    return basedir


def _check_name(name: str, where: str) -> str:
    if not NAME.match(name):
        raise HostsError(f"{where}: host name {name!r} must be letters, digits, '.', '_' or '-' "
                         "(it names the host's folder in the cluster archive)")
    return name


def check_roles(words, where: str) -> Tuple[str, ...]:
    """The roles as a tuple of words (each once, in order); a string holds them comma-separated."""
    if isinstance(words, str):
        words = words.split(",")
    roles: List[str] = []
    for word in words or []:
        word = str(word).strip()
        if not ROLE.match(word):
            raise HostsError(f"{where}: role {word!r} must be a word of letters, digits, '.', '_' or '-' "
                             "(several roles: a list, or words separated by commas)")
        if word not in roles:
            roles.append(word)
    return tuple(roles)


def name_from_destination(destination: str) -> str:
    """app1 from root@app1, 10.0.0.5 from ssh://u@10.0.0.5:2222, fe80-1 from [fe80::1]."""
    text = destination
    if text.startswith("ssh://"):
        text = text[len("ssh://"):]
        text = text.split("/", 1)[0]
        if not text.startswith("[") and text.count(":") == 1 and "@" not in text.split(":", 1)[1]:
            text = text.rsplit(":", 1)[0]
        text = re.sub(r"\]:\d+$", "]", text)
    text = text.rsplit("@", 1)[-1].strip("[]")
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.")
    return name[:63] or "host"


def parse_host_option(text: str) -> HostSpec:
    """`user@address[:basedir][@roles=a,b]`; an IPv6 address goes in brackets:
    `root@[fe80::1]:/opt/akd@roles=app`."""
    where = f"--host {text}"
    text = text.strip()
    roles: Tuple[str, ...] = ()
    suffix = _ROLES_SUFFIX.search(text)
    if suffix:
        if not suffix.group(1).strip():
            raise HostsError(f"{where}: '@roles=' names no role (e.g. @roles=frontend,tracker)")
        roles = check_roles(suffix.group(1), where)
        text = text[:suffix.start()]
    basedir = None
    if "]" in text:
        head, _, rest = text.rpartition("]")
        destination = head + "]"
        if rest:
            if not rest.startswith(":"):
                raise HostsError(f"{where}: expected user@[address]:/basedir")
            basedir = rest[1:]
    else:
        at = text.rfind("@")
        colon = text.find(":", at + 1)
        destination, basedir = (text, None) if colon < 0 else (text[:colon], text[colon + 1:])
    if basedir == "":
        basedir = None
    destination = check_destination(destination, where)
    return HostSpec(name=_check_name(name_from_destination(destination), where), destination=destination,
                    basedir=check_basedir(basedir, where), roles=roles, where="--host")


# --------------------------------------------------------------------------- the file

def _value(node: yaml.Node) -> Any:
    return yaml.safe_load(yaml.serialize(node))


def _fields(node: yaml.Node, source: str, allowed, what: str) -> Dict[str, Tuple[Any, yaml.Node]]:
    if not isinstance(node, yaml.MappingNode):
        raise HostsError(f"{where(source, node)}: {what} must be a mapping")
    found: Dict[str, Tuple[Any, yaml.Node]] = {}
    for key_node, value_node in node.value:
        key = key_node.value
        if key == "destination":
            key = "ssh"
        if key not in allowed:
            raise HostsError(f"{where(source, key_node)}: unknown field '{key_node.value}' in {what} "
                             f"(known: {', '.join(allowed)})")
        value = _value(value_node)
        types = _FIELDS[key]
        if isinstance(value, bool) or not isinstance(value, types):
            wanted = " or ".join("null" if t is type(None) else ("a list" if t is list else t.__name__)
                                 for t in types)
            raise HostsError(f"{where(source, value_node)}: field '{key}' must be {wanted}, "
                             f"got {value_node.value!r}")
        if key == "roles":
            if not isinstance(value, str) and not all(isinstance(v, str) for v in value or []):
                raise HostsError(f"{where(source, value_node)}: field 'roles' must be a list of words")
            value = check_roles(value, f"{where(source, value_node)}: field 'roles'")
        if key == "timeout" and value is not None and value <= 0:
            raise HostsError(f"{where(source, value_node)}: field 'timeout' must be a positive number of seconds")
        found[key] = (value, value_node)
    return found


def _host(node: yaml.Node, source: str, base: Path, defaults: Dict[str, Tuple[Any, yaml.Node]]) -> HostSpec:
    given = _fields(node, source, tuple(_FIELDS), "a host")
    here = where(source, node)
    if "ssh" not in given:
        raise HostsError(f"{here}: a host has no 'ssh' field (its SSH destination, e.g. root@10.0.0.11)")
    merged = dict(defaults)
    merged.update(given)
    ssh_value, ssh_node = merged["ssh"]
    destination = check_destination(ssh_value, where(source, ssh_node))
    if "name" in merged:
        name_value, name_node = merged["name"]
        name = _check_name(name_value, where(source, name_node))
    else:
        name = _check_name(name_from_destination(destination), here)
    basedir = None
    if "basedir" in merged:
        basedir = check_basedir(merged["basedir"][0], where(source, merged["basedir"][1]))
    catalog = None
    if merged.get("catalog", (None,))[0]:
        catalog = Path(merged["catalog"][0]).expanduser()
        catalog = catalog if catalog.is_absolute() else base / catalog
        if not catalog.is_file():
            raise HostsError(f"{where(source, merged['catalog'][1])}: field 'catalog': no such file {catalog}")
    roles = tuple(merged.get("roles", ((),))[0] or ())
    timeout = merged.get("timeout", (None,))[0]
    return HostSpec(name=name, destination=destination, basedir=basedir, roles=roles, catalog=catalog,
                    timeout=float(timeout) if timeout is not None else None, where=here)


def load_hosts_file(path: Path) -> List[HostSpec]:
    path = Path(path)
    source = str(path)
    root = compose_file(path, "hosts file", HostsError)
    if root is None:
        raise HostsError(f"{source}: the hosts file is empty (it needs a 'hosts:' list)")
    defaults: Dict[str, Tuple[Any, yaml.Node]] = {}
    hosts_node = root
    if isinstance(root, yaml.MappingNode):
        hosts_node = None
        for key_node, value_node in root.value:
            if key_node.value == "hosts":
                hosts_node = value_node
            elif key_node.value == "defaults":
                defaults = _fields(value_node, source, _DEFAULT_FIELDS, "'defaults'")
            else:
                raise HostsError(f"{where(source, key_node)}: unknown field '{key_node.value}' "
                                 f"(known: {', '.join(_TOP_FIELDS)})")
        if hosts_node is None:
            raise HostsError(f"{where(source, root)}: the hosts file has no 'hosts:' list")
    if not isinstance(hosts_node, yaml.SequenceNode):
        raise HostsError(f"{where(source, hosts_node)}: field 'hosts' must be a list of hosts")
    if not hosts_node.value:
        raise HostsError(f"{where(source, hosts_node)}: field 'hosts' lists no host")
    hosts = [_host(item, source, path.parent, defaults) for item in hosts_node.value]
    return combine(hosts)


def combine(*groups: List[HostSpec]) -> List[HostSpec]:
    """The hosts of every source, in order; two hosts of one name are an error."""
    seen: Dict[str, HostSpec] = {}
    out: List[HostSpec] = []
    for group in groups:
        for spec in group:
            if spec.name in seen:
                raise HostsError(f"{spec.where}: host name {spec.name!r} is used twice "
                                 f"(also {seen[spec.name].where}); give each host its own 'name'")
            seen[spec.name] = spec
            out.append(spec)
    return out
