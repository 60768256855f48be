"""`reef-versim`: a faithful stand-in for the Vers platform, on loopback.

    reef-versim --api-port P --tls-port Q --domain D --api-key-file F --state-dir DIR

serves the API at http://127.0.0.1:P/api/v1 and SSH-in-TLS on Q for host names
<vm_id>.vm.D, and prints one line starting with "reef-versim ready:" once both
listen. Needs root: every VM is a sandbox in its own mount and PID namespace.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from pathlib import Path

from aiohttp import web

from reef_devkit.controlplane.processes import free_port
from reef_devkit.versim.api import build_app
from reef_devkit.versim.platform import Platform
from reef_devkit.versim.router import SniRouter
from reef_operator.certificates import CertificateAuthority

READY = "reef-versim ready:"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="reef-versim", description=__doc__.splitlines()[0])
    parser.add_argument("--api-port", type=int, default=0, help="HTTP API port (0: any free)")
    parser.add_argument("--tls-port", type=int, default=0, help="SSH-in-TLS port (0: any free)")
    parser.add_argument("--domain", default="sim.vers.test",
                        help="VMs are <vm_id>.vm.DOMAIN (default: %(default)s)")
    key = parser.add_mutually_exclusive_group()
    key.add_argument("--api-key", help="accepted bearer token (visible in the process list: "
                     "prefer --api-key-file or VERS_API_KEY)")
    key.add_argument("--api-key-file", type=Path, help="file holding the accepted bearer token")
    parser.add_argument("--state-dir", type=Path, required=True,
                        help="VM sandboxes, commits and the TLS certificate live here")
    parser.add_argument("--boot-delay", type=float, default=0.5,
                        help="seconds a VM stays booting (default: %(default)s)")
    parser.add_argument("--resume-delay", type=float, default=0.0,
                        help="seconds a resume of a paused VM takes (default: %(default)s)")
    parser.add_argument("--error-rate", type=float, default=0.0,
                        help="share of API requests answered 5xx")
    parser.add_argument("--lose-response-rate", type=float, default=0.0,
                        help="share of creates carried out whose answer is dropped")
    parser.add_argument("--rate-limit-burst", type=int, default=0,
                        help="answer the first N requests 429")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added per request")
    parser.add_argument("--max-vms", type=int, default=0, help="live VM limit (0: none)")
    return parser.parse_args(argv)


def api_key_from(args: argparse.Namespace) -> str:
    if args.api_key:
        return str(args.api_key)
    if args.api_key_file:
        return str(args.api_key_file.read_text().strip())
    key = os.environ.get("VERS_API_KEY", "")
    if not key:
        raise SystemExit("reef-versim: give the API key with --api-key-file, VERS_API_KEY or "
                         "--api-key")
    return key


async def serve(args: argparse.Namespace) -> None:
    state_dir = args.state_dir.absolute()
    state_dir.mkdir(parents=True, exist_ok=True)
    platform = Platform(state_dir, boot_delay=args.boot_delay, resume_delay=args.resume_delay)
    faults = platform.faults
    faults.error_rate, faults.lose_response_rate = args.error_rate, args.lose_response_rate
    faults.rate_limit_burst, faults.latency = args.rate_limit_burst, args.latency
    faults.max_vms = args.max_vms

    ca = CertificateAuthority(state_dir / "pki", "reef-versim CA")
    pair = ca.issue_server("vm-wildcard", [f"*.vm.{args.domain}", f"vm.{args.domain}"])
    router = SniRouter(platform, args.domain, pair.cert, pair.key)
    tls_port = args.tls_port or free_port()
    await router.start(tls_port)

    runner = web.AppRunner(build_app(platform, api_key_from(args)), access_log=None)
    await runner.setup()
    api_port = args.api_port or free_port()
    await web.TCPSite(runner, "127.0.0.1", api_port).start()

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    print(f"{READY} api http://127.0.0.1:{api_port}/api/v1 tls 127.0.0.1:{tls_port} "
          f"domain {args.domain} ca {ca.cert_path}", flush=True)
    try:
        await stop.wait()
    finally:
        await router.close()
        await runner.cleanup()
        await platform.shutdown()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if os.geteuid() != 0:
        print("reef-versim needs root: every simulated VM is a sandbox in its own mount and PID "
              "namespace (unshare) with a freezer cgroup", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
