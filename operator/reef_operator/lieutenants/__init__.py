"""Lieutenants: one agent session (its VMNode, pi session, tasks and status) as a
domain of pure decisions and small I/O rooms, driven by the lieutenant controller."""
