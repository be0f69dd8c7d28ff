"""The KubeStellar API groups, as generated pydantic models (see hack/codegen.py)."""
