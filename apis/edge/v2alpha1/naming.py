"""The mailbox naming rule of the edge API: which workspace is a SyncTarget's mailbox.

The mailbox of SyncTarget T is the workspace ``<T's inventory logical cluster>-mb-<T's UID>`` under
``root``.  A workspace name "looks like a mailbox" iff splitting it on ``-mb-`` gives exactly two
non-empty parts.  kcp v0.11.0 accepts a Workspace name only if it matches
``^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`` (the ``metadata.name`` schema of its Workspace CRD), so at
most 63 characters; a name that breaks this rule, or that would not parse back into the same
(cluster, UID), is refused with :class:`InvalidMailboxName`, whose message says why.
"""

from __future__ import annotations

import re

from apis.edge.v2alpha1.constants import MAILBOX_SEPARATOR as SEPARATOR
from apis.edge.v2alpha1.constants import SYNC_TARGET_NAME_ANNOTATION

MAX_LENGTH = 63
"""The longest workspace name kcp accepts."""

__all__ = [
    "MAX_LENGTH",
    "SEPARATOR",
    "SYNC_TARGET_NAME_ANNOTATION",
    "InvalidMailboxName",
    "is_mailbox_name",
    "mailbox_name",
    "parse_mailbox_name",
]

_WORKSPACE_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


class InvalidMailboxName(ValueError):
    """The (cluster, UID) pair of a SyncTarget gives no valid mailbox workspace name."""


def mailbox_name(cluster: str, uid: str) -> str:
    """The mailbox workspace name of the SyncTarget with ``uid`` in logical cluster ``cluster``."""
    if not cluster:
        raise InvalidMailboxName("the SyncTarget's inventory logical cluster is unknown")
    if not uid:
        raise InvalidMailboxName("the SyncTarget has no UID")
    name = f"{cluster}{SEPARATOR}{uid}"
    if len(name) > MAX_LENGTH:
        raise InvalidMailboxName(
            f"mailbox name {name!r} is {len(name)} characters long; kcp allows at most {MAX_LENGTH}"
        )
    if not _WORKSPACE_NAME.match(name):
        raise InvalidMailboxName(
            f"mailbox name {name!r} is not a valid workspace name: use lowercase letters, digits and "
            "'-', starting and ending with a letter or digit"
        )
    if parse_mailbox_name(name) != (cluster, uid):
        raise InvalidMailboxName(
            f"mailbox name {name!r} is ambiguous: the cluster or the UID contains {SEPARATOR!r}"
        )
    return name


def parse_mailbox_name(name: str) -> tuple[str, str] | None:
    """(cluster, UID) of a mailbox-shaped workspace name; ``None`` for any other name."""
    parts = name.split(SEPARATOR)
    if len(parts) != 2 or not parts[0] or not parts[1]:
        return None
    return parts[0], parts[1]


def is_mailbox_name(name: str) -> bool:
    return parse_mailbox_name(name) is not None
