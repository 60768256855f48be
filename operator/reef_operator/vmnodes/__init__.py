"""VM nodes: one VM in the lineage tree (boot, heartbeat, checkpoints, pause and
resume) as a domain of pure decisions and small I/O rooms, driven by the VMNode controller."""
