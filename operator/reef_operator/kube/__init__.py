"""Kubernetes edges: the API calls the controllers make, and condition bookkeeping."""
