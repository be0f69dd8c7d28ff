"""The names that the edge.kubestellar.io/v2alpha1 API defines beside its types: the group, the
APIExport, the labels and annotations KubeStellar reads or writes on objects, and the
well-known object names.  Every other module takes them from here (hand-written; the generated
modules beside it are ``models``, ``resources``, ``listers`` and ``client``).
"""

from __future__ import annotations

from typing import Final

from apis.edge.v2alpha1 import API_VERSION, GROUP, VERSION

API_PATH: Final = f"/apis/{GROUP}/{VERSION}"
"""The group version's URL path (relative to a server, a logical cluster or a virtual workspace)."""

EXPORT_NAME: Final = GROUP
"""The kcp APIExport that serves the edge API (in the ESPW)."""

__all__ = [
    "API_PATH",
    "API_VERSION",
    "CUSTOMIZER_ANNOTATION",
    "DOWNSYNC_OVERWRITE_ANNOTATION",
    "EXECUTING_COUNT_ANNOTATION",
    "EXPAND_PARAMETERS_ANNOTATION",
    "EXPORT_NAME",
    "GROUP",
    "MAILBOX_SEPARATOR",
    "PROJECTED",
    "PROJECTED_LABEL",
    "SYNC_TARGET_NAME_ANNOTATION",
    "THE_ONE",
    "VERSION",
]

# --- labels ----------------------------------------------------------------------------------

PROJECTED_LABEL: Final = "edge.kubestellar.io/projected"
"""On every copy the placement translator writes into a mailbox; its value is :data:`PROJECTED`."""
PROJECTED: Final = "yes"

# --- annotations -----------------------------------------------------------------------------

SYNC_TARGET_NAME_ANNOTATION: Final = "edge.kubestellar.io/sync-target-name"
"""On a mailbox workspace: the name of its SyncTarget."""
DOWNSYNC_OVERWRITE_ANNOTATION: Final = "edge.kubestellar.io/downsync-overwrite"
"""On a workload object: ``"false"`` makes its mailbox copies create-only (never reverted)."""
EXECUTING_COUNT_ANNOTATION: Final = "kubestellar.io/executing-count"
"""On a workload object that a placement wants singleton reported state for: how many SyncTargets
it goes to (never carried into the copies)."""
CUSTOMIZER_ANNOTATION: Final = "edge.kubestellar.io/customizer"
"""On a workload object: the Customizer (``name`` or ``namespace/name``) applied to its copies."""
EXPAND_PARAMETERS_ANNOTATION: Final = "edge.kubestellar.io/expand-parameters"
"""On a workload object: ``"true"`` expands ``%(param)`` references in its copies."""

# --- well-known names ------------------------------------------------------------------------

THE_ONE: Final = "the-one"
"""The name of the SyncerConfig in every mailbox."""
MAILBOX_SEPARATOR: Final = "-mb-"
"""A mailbox workspace is named ``<IMW logical cluster>-mb-<SyncTarget UID>`` (see :mod:`.naming`)."""
