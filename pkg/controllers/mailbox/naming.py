"""Mailbox workspace names: an alias of :mod:`apis.edge.v2alpha1.naming`, where the rule lives."""

from apis.edge.v2alpha1.naming import (
    MAX_LENGTH,
    SEPARATOR,
    SYNC_TARGET_NAME_ANNOTATION,
    InvalidMailboxName,
    is_mailbox_name,
    mailbox_name,
    parse_mailbox_name,
)

__all__ = [
    "MAX_LENGTH",
    "SEPARATOR",
    "SYNC_TARGET_NAME_ANNOTATION",
    "InvalidMailboxName",
    "is_mailbox_name",
    "mailbox_name",
    "parse_mailbox_name",
]
