"""Metrics, traces and logs: what operators see of a running server."""
