"""The Vers platform: its HTTP API client, SSH inside TLS to its VMs, and the provider that
converts both into the provider interface and its errors."""
