"""`python -m bench.scale`: plan the runs, run them, print and write the figures."""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import bench.scale
from bench.errors import BenchError
from bench.scale.harness import Bench
from bench.scale.kinds import available_bytes, memory_refusal, plan
from bench.scale.meter import Result, burst
from bench.scale.report import table, write_json
from reef_operator.config import DEFAULT_PLATFORM_RATE

DOC = bench.scale.__doc__ or ""


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.scale",
                                     description=DOC.splitlines()[0])
    parser.add_argument("n", nargs="*", type=int,
                        help="lieutenant runs (VMNode runs where the agents would not fit; "
                             "default 10 100 500 1000 unless --vmnodes is given)")
    parser.add_argument("--vmnodes", nargs="+", type=int, default=[], metavar="N",
                        help="VMNode-only runs (no agent) of these sizes")
    parser.add_argument("--idle-window", type=float, default=120,
                        help="seconds of quiet to measure idle requests (default 120); "
                             "a VMNode's heartbeat time is written every half "
                             "staleAfterSeconds (150 s by default), so a shorter window "
                             "can miss those writes")
    parser.add_argument("--platform-rate", type=float, default=DEFAULT_PLATFORM_RATE,
                        help="the operator's REEF_PLATFORM_RATE (default %(default)g calls/s, "
                             "the operator's default; the burst keeps the default proportion): "
                             "raise it to see the operator's own limit rather than this one")
    parser.add_argument("--json", type=Path, default=Path("bench-scale.json"),
                        help="where to write the figures (default: %(default)s)")
    return parser


def run_all(lieutenant_ns: list[int], vmnode_ns: list[int], idle_window: float,
            platform_rate: float) -> list[Result]:
    """Every planned run, on one control plane; the work directory is kept (and named)
    when a run fails, for its logs."""
    work = Path(tempfile.mkdtemp(prefix="reef-sc-"))
    bench = Bench(work, platform_rate)
    results: list[Result] = []
    finished = False
    try:
        for n, kind, note in plan(lieutenant_ns, vmnode_ns, available_bytes()):
            # Checked just before each run: what earlier runs left behind counts too.
            refusal = memory_refusal(n, kind, available_bytes())
            result = (Result(n, kind.label, skipped=refusal) if refusal
                      else bench.run(n, kind, idle_window))
            result.note = note
            results.append(result)
        finished = True
    finally:
        bench.close()
        if finished:
            shutil.rmtree(work, ignore_errors=True)
        else:  # what went wrong is in the logs
            print(f"kept {work}: operator logs op-*.log, simulator sim/versim.log",
                  file=sys.stderr)
    return results


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    lieutenant_ns = args.n if args.n or args.vmnodes else [10, 100, 500, 1000]
    try:
        results = run_all(lieutenant_ns, args.vmnodes, args.idle_window, args.platform_rate)
    except BenchError as error:
        print(f"bench.scale: {error}", file=sys.stderr)
        return 1
    print(table(results))
    print(f"REEF_PLATFORM_RATE {args.platform_rate:g} calls/s, burst {burst(args.platform_rate)}")
    write_json(results, args.json)
    print(f"figures written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
