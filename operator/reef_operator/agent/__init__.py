"""Driving the pi coding agent in RPC mode on a VM (no Kubernetes here)."""
