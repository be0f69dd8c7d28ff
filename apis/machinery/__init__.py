"""API machinery shared by the generated API packages (as k8s.io/apimachinery is for client-go).

Everything here is independent of any one API group and of the runtime in ``pkg``: label
selectors (:mod:`~apis.machinery.labels`), object metadata access for dicts and models alike
(:mod:`~apis.machinery.meta`), resource paths (:mod:`~apis.machinery.resource`), and the generic
bases of the generated listers (:mod:`~apis.machinery.lister`) and clients
(:mod:`~apis.machinery.client`).  Layers point one way: ``pkg`` imports ``apis``, never the reverse.
"""
