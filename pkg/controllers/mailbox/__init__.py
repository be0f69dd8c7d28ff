"""The mailbox controller: one mailbox workspace per SyncTarget, with the bindings it needs."""

from apis.edge.v2alpha1.naming import (
    SYNC_TARGET_NAME_ANNOTATION,
    InvalidMailboxName,
    is_mailbox_name,
    mailbox_name,
    parse_mailbox_name,
)
from pkg.controllers.mailbox.controller import NAME, MailboxController, setup, wanted_bindings

__all__ = [
    "NAME",
    "SYNC_TARGET_NAME_ANNOTATION",
    "InvalidMailboxName",
    "MailboxController",
    "is_mailbox_name",
    "mailbox_name",
    "parse_mailbox_name",
    "setup",
    "wanted_bindings",
]
