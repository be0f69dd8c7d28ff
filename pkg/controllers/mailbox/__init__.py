"""The mailbox controller: one mailbox workspace per SyncTarget, with the bindings it needs."""

from pkg.controllers.mailbox.controller import NAME, MailboxController, setup, wanted_bindings
from pkg.controllers.mailbox.naming import (
    SYNC_TARGET_NAME_ANNOTATION,
    InvalidMailboxName,
    is_mailbox_name,
    mailbox_name,
    parse_mailbox_name,
)

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
