"""Mailbox workspace names (behaviour 3.1, scenarios A.1 and C29)."""

from __future__ import annotations

import uuid
from cmd.mailbox_controller import kube_exports

import pytest

from apis.edge.v2alpha1 import SyncTarget
from pkg.controllers.mailbox import (
    InvalidMailboxName,
    is_mailbox_name,
    mailbox_name,
    parse_mailbox_name,
    wanted_bindings,
)
from pkg.controllers.mailbox.controller import mailbox_of

KUBE_EXPORTS = kube_exports()
UID_F = "0d5e8a36-6a1f-4bd6-9c55-3f0b0d0c1f01"


def test_name_is_cluster_mb_uid() -> None:
    assert mailbox_name("imw1", UID_F) == f"imw1-mb-{UID_F}"
    # A kcp v0.11 logical cluster name is 16 base36 characters: the name has 56.
    name = mailbox_name("2mptt6prfdj4iyqc", UID_F)
    assert name == f"2mptt6prfdj4iyqc-mb-{UID_F}" and len(name) == 56
    assert parse_mailbox_name(name) == ("2mptt6prfdj4iyqc", UID_F)


def test_name_uses_uid_so_recreation_gives_a_new_name() -> None:
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    assert mailbox_name("imw1", a) != mailbox_name("imw1", b)


def test_longest_valid_name_is_63_characters() -> None:
    uid = "u" * (63 - len("c-mb-"))
    assert len(mailbox_name("c", uid)) == 63
    with pytest.raises(InvalidMailboxName, match="64 characters long; kcp allows at most 63"):
        mailbox_name("cc", uid)


@pytest.mark.parametrize(
    ("cluster", "uid", "why"),
    [
        ("", UID_F, "logical cluster is unknown"),
        ("imw1", "", "has no UID"),
        ("IMW1", UID_F, "not a valid workspace name"),
        ("imw1", UID_F.upper(), "not a valid workspace name"),
        ("root:imw1", UID_F, "not a valid workspace name"),
        ("imw_1", UID_F, "not a valid workspace name"),
        ("-imw1", UID_F, "not a valid workspace name"),
        ("imw1", UID_F + "-", "not a valid workspace name"),
        ("a-mb-b", UID_F, "ambiguous"),
        ("imw1", "x-mb-y", "ambiguous"),
        ("2mptt6prfdj4iyqc", UID_F + "-extra-long-suffix", "kcp allows at most 63"),
    ],
)
def test_invalid_names_are_refused_with_a_reason(cluster: str, uid: str, why: str) -> None:
    with pytest.raises(InvalidMailboxName, match=why):
        mailbox_name(cluster, uid)


@pytest.mark.parametrize(
    ("name", "parsed"),
    [
        ("a-mb-b", ("a", "b")),
        (f"imw1-mb-{UID_F}", ("imw1", UID_F)),
        ("x", None),
        ("espw", None),
        ("a-mb-b-mb-c", None),
        ("-mb-b", None),
        ("a-mb-", None),
        ("a-mbb", None),
    ],
)
def test_what_looks_like_a_mailbox(name: str, parsed: tuple[str, str] | None) -> None:
    assert parse_mailbox_name(name) == parsed
    assert is_mailbox_name(name) == (parsed is not None)


def test_mailbox_of_a_listed_sync_target() -> None:
    st = {"metadata": {"name": "florin", "uid": UID_F, "annotations": {"kcp.io/cluster": "imw1"}}}
    assert mailbox_of(SyncTarget.model_validate(st)) == f"imw1-mb-{UID_F}"
    with pytest.raises(InvalidMailboxName, match="logical cluster is unknown"):
        mailbox_of(SyncTarget.model_validate({"metadata": {"name": "florin", "uid": UID_F}}))


def test_mailboxes_bind_the_edge_export_once_and_every_kube_export() -> None:
    bindings = wanted_bindings(KUBE_EXPORTS)
    names = [b[0] for b in bindings]
    assert names[0] == "bind-edge" and bindings[0][1:] == ("root:espw", "edge.kubestellar.io")
    assert "bind-espw" not in names  # a second binding to the edge export would conflict
    assert "bind-kubernetes" in names and "bind-apps" in names
    assert len(set(names)) == len(names)
    assert [b for b in bindings if b[2] == "edge.kubestellar.io"] == [bindings[0]]
    assert wanted_bindings(KUBE_EXPORTS, "root:other")[0] == (
        "bind-edge",
        "root:other",
        "edge.kubestellar.io",
    )
