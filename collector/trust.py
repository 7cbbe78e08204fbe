"""Whether a file could have been planted by a less-privileged user.

akdiag runs as root; it executes `akd` and takes BASEDIR from a running process only when
no one but root (or the user akdiag itself runs as, the platform's own user) could have put
or changed the file there: the file and every folder above it, up to `/`, are owned by
root or by that user and writable by neither group nor others.  A sticky folder such as
/tmp is not trusted either: whoever can create entries in it can create the path first.
"""

from __future__ import annotations

import os
import stat
from typing import Optional, Tuple


def trusted_owners() -> Tuple[int, ...]:
    uid = os.geteuid()
    return (0,) if uid == 0 else (0, uid)


def untrusted_reason(path: str) -> Optional[str]:
    """Why `path` might have been planted by another user, or None when it and every
    folder above it are safe, both along the path as written (where a symlink must be
    owned by root or this user too) and along the path it resolves to."""
    owners = trusted_owners()
    literal, real = os.path.abspath(path), os.path.realpath(path)
    for start, links_allowed in ((literal, True), (real, False)) if literal != real else ((real, False),):
        current = start
        while True:
            problem = _component_problem(current, owners, links_allowed)
            if problem:
                return problem
            parent = os.path.dirname(current)
            if parent == current:
                break
            current = parent
    return None


def _component_problem(path: str, owners: Tuple[int, ...], link_allowed: bool = False) -> Optional[str]:
    try:
        st = os.lstat(path)
    except OSError as exc:
        return f"cannot examine {path}: {exc.strerror or exc}"
    if st.st_uid not in owners:
        return f"{path} is owned by uid {st.st_uid}, not by root" + ("" if owners == (0,) else " or this user")
    if stat.S_ISLNK(st.st_mode):  # a link's own mode means nothing; on the resolved path, one is a change
        return None if link_allowed else f"{path} changed while it was examined"
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        who = "others" if st.st_mode & stat.S_IWOTH else "its group"
        return f"{path} is writable by {who} (mode {stat.S_IMODE(st.st_mode):o})"
    return None


def fd_problem(fd: int, path: str) -> Optional[str]:
    """The same test on an open file (its owner and mode as they are now)."""
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        return f"{path} is not a regular file"
    if st.st_uid not in trusted_owners():
        return f"{path} is owned by uid {st.st_uid}, not by root"
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"{path} is writable by others (mode {stat.S_IMODE(st.st_mode):o})"
    return None


def trusted_temp_parent() -> Optional[str]:
    """An existing folder of this user's that no one else can write to (for the demo's
    simulated host, whose akd must be trusted to be run), or None: the usual temp folder."""
    for folder in (os.environ.get("XDG_RUNTIME_DIR"), os.path.expanduser("~/.cache"), os.path.expanduser("~")):
        if folder and os.path.isdir(folder) and os.access(folder, os.W_OK) and untrusted_reason(folder) is None:
            return folder
    return None
