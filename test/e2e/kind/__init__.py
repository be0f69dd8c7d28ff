"""Deploying the image and config/deploy into a kind cluster next to kcp (needs Docker and kind)."""
