"""A faithful Vers platform simulator: same HTTP API, SSH inside TLS routed by SNI,
each VM a real sshd in its own namespaces. See server.py for the command line."""
