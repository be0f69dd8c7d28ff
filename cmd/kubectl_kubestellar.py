"""``kubectl kubestellar VERB ...``: the kubectl plugin, the same verbs as ``kubestellar``.

kubectl runs an executable named ``kubectl-kubestellar`` found on ``PATH`` for ``kubectl
kubestellar ...``, passing the words after ``kubestellar`` and its own environment.  This is that
executable (a console script of the package; ``.venv/bin/kubectl-kubestellar`` after ``make
venv``).  It offers every verb of :func:`cmd.kubestellar.parser` (``init``, ``ensure location``,
``ensure wmw``, ``remove wmw`` and any verb added there), with kubectl's connection conventions:
``--kubeconfig`` (else ``$KUBECONFIG``, else ``~/.kube/config``) and ``--context``, before or
after the verb.  Errors are one line on stderr and exit code 1.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from . import kubestellar

PROG = "kubectl kubestellar"


def main(argv: Sequence[str] | None = None) -> int:
    return kubestellar.main(argv, prog=PROG)


if __name__ == "__main__":
    sys.exit(main())
