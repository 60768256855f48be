"""reef-operator: persistent pi coding-agent sessions on Vers microVMs, as Kubernetes resources."""
