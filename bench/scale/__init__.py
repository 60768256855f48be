"""Lieutenants at scale: the operator beside the apiserver's raw ceiling, in one run.

Real control plane, the Vers simulator (boot delay 0), the scripted model (no latency).
For each N, one of two kinds of run:
  - lieutenants, a real pi on every VM: N lieutenants created → time until each is
    Ready (p50/p95/max) and until all are, and when its VMNode got Ready (the rest of
    the time is starting pi on it); then one task each → time until every history has
    it; then deleted;
  - VMNodes without an agent (`vmnodes (no agent)`): N VMNodes created → time until
    each is Ready; then deleted. An N whose pi agents would not fit in memory runs this
    instead of lieutenants; `--vmnodes N ...` runs it for any N.
Each beside the raw ceiling: as many minimal writes of the same kind by a plain client
(create + one status patch per object), what this apiserver on this machine can do at
all; and beside the floor the operator's own platform rate limit sets for the platform
calls it made until all were Ready. Measured for both: Kubernetes requests by the
operator per lifecycle (audit log; writes in total, without the task phase and Events,
and Events alone), platform calls per lifecycle (simulator's log), status patches per
task, operator peak RSS and CPU seconds, memory and CPU of the simulated VMs per VM,
and requests per idle object per hour (a quiet window).

    .venv/bin/python -m bench.scale [N ...] [--vmnodes N ...] [--idle-window S] [--json FILE]

Each lieutenant runs a real pi (about 130 MB), each simulated VM a real sshd in its own
namespaces (under 8 MB with its share of the operator and the control plane); an N that
would not fit in the memory available is refused with the reason, not faked.

The rooms: `kinds` (what a run creates, which runs fit in memory), `harness` (the
control plane, simulator, model and operator; objects created, tasked, deleted),
`meter` and `arrivals` (what is measured and how), `procfs` (process memory and CPU),
`report` (the table and the JSON); `__main__` is the command, the only place that turns a
`BenchError` into a message and an exit code.
"""
