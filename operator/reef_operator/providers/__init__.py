"""Where VMs come from: the Vers platform, or the operator's own host (Local)."""
