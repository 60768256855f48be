"""kubectl reef: lieutenants and their VMs from the command line.

    kubectl reef create api --role "Build the API" --task "Scaffold it"
    kubectl reef send api "Add a /health route" [--mode prompt|steer|followUp]
    kubectl reef read api [--history 3] [--tail 2000] [--follow]
    kubectl reef status | pause api | resume api | destroy api|'*'
    kubectl reef discover | tree | diff A B | exec api -- ls | cp api:/root/x ./x
    kubectl reef wait api --for=condition=Ready | config [set KEY VALUE] | dashboard

Exit codes: 0 done, 1 failed (the message says why), 2 bad usage.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from reef_operator.cli.plugin import dashboard, fleet, lieutenants, output, settings, vm
from reef_operator.cli.plugin.cluster import Cluster, PluginError


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="kubectl reef", description=__doc__,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    top.add_argument("--kubeconfig", default=None, help="kubeconfig file (default: $KUBECONFIG "
                     "or ~/.kube/config)")
    top.add_argument("--context", default=None, help="kubeconfig context to use")
    top.add_argument("-n", "--namespace", default=None,
                     help="namespace (default: the context's, else default)")
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    # The same options after the command (`kubectl reef status -n team`), as kubectl allows.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--kubeconfig", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    common.add_argument("--context", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    common.add_argument("-n", "--namespace", default=argparse.SUPPRESS,
                        help="namespace (default: the context's, else default)")

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        return commands.add_parser(name, help=help_text, description=help_text,
                                   parents=[common])

    def formats(sub: argparse.ArgumentParser, default: str = "table") -> None:
        sub.add_argument("-o", "--output", choices=output.FORMATS, default=default,
                         help="output format (default: %(default)s)")

    def everywhere(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("-A", "--all-namespaces", action="store_true",
                         help="every namespace")

    sub = command("create", "create a lieutenant (then send it tasks)")
    sub.add_argument("name")
    sub.add_argument("--role", required=True, help="the lieutenant's job (system prompt)")
    sub.add_argument("--profile", help="BootProfile name (default: the operator's)")
    sub.add_argument("--model", help="PROVIDER/ID, e.g. anthropic/claude-sonnet-4-5")
    sub.add_argument("--credentials", metavar="SECRET",
                     help="Secret whose keys become the agent's environment")
    sub.add_argument("--providers", metavar="CONFIGMAP",
                     help="ConfigMap with pi's models.json, for custom model providers")
    sub.add_argument("--instructions", help="extra system-prompt text")
    sub.add_argument("--history-limit", type=int, help="responses kept in status.history")
    sub.add_argument("--task", action="append", default=[], metavar="MESSAGE",
                     help="a first task (repeatable: run one after another)")
    sub.add_argument("--wait", action="store_true", help="wait until it accepts tasks")
    sub.add_argument("--timeout", type=float, default=300, help="seconds for --wait")

    sub = command("send", "send a task: append it to spec.tasks")
    sub.add_argument("name")
    sub.add_argument("message")
    sub.add_argument("--mode", default="prompt", help="prompt (default), steer or followUp")
    sub.add_argument("--task-name", help="task name (default: task-N)")

    sub = command("read", "the lieutenant's output: live output, or the last response")
    sub.add_argument("name")
    sub.add_argument("--tail", type=int, metavar="N", help="only the last N characters")
    sub.add_argument("--history", type=int, metavar="N",
                     help="the last N responses (=== Response i ===), then the current one")
    sub.add_argument("--follow", "-f", action="store_true",
                     help="stream the live output until the task ends")
    sub.add_argument("--timeout", type=float, default=3600, help="seconds for --follow")

    sub = command("status", "a table of lieutenants")
    everywhere(sub)
    formats(sub)

    for name, help_text in (("pause", "pause: after the current task the VM freezes"),
                            ("resume", "resume a paused lieutenant: the conversation goes on")):
        sub = command(name, help_text)
        sub.add_argument("name")
        sub.add_argument("--wait", action="store_true", help="wait until it has happened")
        sub.add_argument("--timeout", type=float, default=600, help="seconds for --wait")

    sub = command("destroy", "destroy lieutenants ('*' = every lieutenant, nothing else)")
    sub.add_argument("name", help="a lieutenant, or '*'")
    sub.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    sub.add_argument("--delete", action="store_true",
                     help="also delete the objects (default: keep them and their history)")
    everywhere(sub)

    sub = command("discover", "what the operator manages: VMs, lieutenants, re-attachments")
    everywhere(sub)
    formats(sub)

    sub = command("tree", "the VM lineage as a tree: category, state, DNA")
    sub.add_argument("root", nargs="?", help="only this node's subtree")
    sub.add_argument("--category", help="only nodes of this category (Lieutenant, Swarm, "
                     "Agent, Infra) and their ancestors")
    sub.add_argument("--module", help="only nodes whose DNA has this module (and ancestors)")
    sub.add_argument("--capability",
                     help="only nodes whose DNA has this capability (and ancestors)")
    everywhere(sub)
    formats(sub)

    sub = command("diff", "DNA difference between two VMNodes")
    sub.add_argument("a")
    sub.add_argument("b")
    formats(sub)

    sub = command("exec", "run a command on a lieutenant's VM (or vmnode/NAME)")
    sub.add_argument("name")
    sub.add_argument("argv", nargs=argparse.REMAINDER, metavar="-- COMMAND",
                     help="the command (a single argument is run by the shell)")
    sub.add_argument("--timeout", type=float, default=300, help="seconds")

    sub = command("cp", "copy a file or directory from a lieutenant's VM: NAME:PATH LOCAL")
    sub.add_argument("source", metavar="NAME:PATH")
    sub.add_argument("destination", type=Path, metavar="LOCAL")

    sub = command("wait", "wait for a condition: --for=condition=Ready[=false] or "
                  "--for=phase=Idle")
    sub.add_argument("name", help="a lieutenant, or vmnode/NAME")
    sub.add_argument("--for", dest="wait_for", required=True, metavar="condition=TYPE[=STATUS]")
    sub.add_argument("--timeout", type=float, default=300, help="seconds (default 300)")

    sub = command("dashboard", "the lieutenants and the VM tree in a browser, live "
                  "(read-only, served from this machine)")
    sub.add_argument("--address", default="127.0.0.1",
                     help="address to listen on (default: %(default)s, this machine only)")
    sub.add_argument("--port", type=int, default=8474,
                     help="port (default: %(default)s; 0 picks a free one)")
    everywhere(sub)

    sub = command("config", "the operator configuration, with where each value comes from; "
                  "`config set KEY VALUE` / `config unset KEY` change its ConfigMap")
    sub.add_argument("change", nargs="*", metavar="set KEY VALUE | unset KEY",
                     help="change one key in the operator's ConfigMap (checked first)")
    sub.add_argument("--from-deployment", metavar="NAME", nargs="?", const="reef-operator",
                     help="use the environment of the operator's Deployment (default name "
                     "reef-operator) instead of this shell's")
    sub.add_argument("--operator-namespace", default="reef-system",
                     help="where the operator's ConfigMap/Secret live (default: %(default)s)")
    formats(sub)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        cluster = Cluster.connect(args.kubeconfig, args.context, args.namespace)
        return dispatch(cluster, args)
    except PluginError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        return 130


def say(text: str) -> None:
    print(text, flush=True)


def dispatch(cluster: Cluster, args: argparse.Namespace) -> int:
    command = args.command
    if command == "create":
        say(lieutenants.create(cluster, args.name, args.role, profile=args.profile,
                               model=args.model, credentials=args.credentials,
                               providers=args.providers,
                               instructions=args.instructions, tasks=args.task,
                               history_limit=args.history_limit))
        if args.wait:
            lieutenants.wait_for(cluster, args.name, "Ready", "True", args.timeout)
            say(f"lieutenant/{args.name} is ready")
    elif command == "send":
        say(lieutenants.send(cluster, args.name, args.message, args.mode, args.task_name))
    elif command == "read":
        if args.follow:
            return lieutenants.follow(cluster, args.name, args.timeout, _write)
        say(lieutenants.read(cluster, args.name, tail=args.tail, history=args.history))
    elif command == "status":
        found = cluster.items("lieutenants", all_namespaces=args.all_namespaces)
        if args.output != "table":
            say(output.structured([_summary(o) for o in found], args.output))
        elif not found:
            say("No lieutenants found" + ("." if args.all_namespaces
                                          else f" in namespace {cluster.namespace}."))
        else:
            say(output.table(*lieutenants.status_rows(found, args.all_namespaces)))
    elif command in ("pause", "resume"):
        state = "Paused" if command == "pause" else "Running"
        say(lieutenants.set_state(cluster, args.name, state))
        if args.wait:
            condition = "Paused" if command == "pause" else "Ready"
            lieutenants.wait_for(cluster, args.name, condition, "True", args.timeout)
            say(f"lieutenant/{args.name} is {'paused' if command == 'pause' else 'running'}")
    elif command == "destroy":
        for line in lieutenants.destroy(cluster, args.name, yes=args.yes, delete=args.delete,
                                        all_namespaces=args.all_namespaces,
                                        confirm=lieutenants.ask):
            say(line)
    elif command == "discover":
        rows = fleet.discover_rows(
            cluster.items("lieutenants", all_namespaces=args.all_namespaces),
            cluster.items("vmnodes", all_namespaces=args.all_namespaces))
        if args.output != "table":
            say(output.structured(rows, args.output))
        else:
            say(fleet.discover_table(rows) if rows else "No VMs managed here.")
    elif command == "tree":
        nodes = cluster.items("vmnodes", all_namespaces=args.all_namespaces)
        if args.root and not any(n["metadata"]["name"] == args.root for n in nodes):
            raise PluginError(f"vmnode {args.root!r} not found in namespace {cluster.namespace}")
        wanted = None
        if args.category or args.module or args.capability:
            wanted = fleet.selector(args.category, args.module, args.capability)
        if args.output != "table":
            say(output.structured([_node_summary(n) for n in fleet.flatten(
                fleet.shown(nodes, args.root, wanted))], args.output))
        else:
            say("\n".join(fleet.tree(nodes, args.root, wanted)) or
                ("No VMNodes match." if wanted else "No VMNodes found."))
    elif command == "diff":
        a, b = cluster.get("vmnodes", args.a), cluster.get("vmnodes", args.b)
        difference = fleet.dna_diff(a, b)
        say(output.structured(difference, args.output) if args.output != "table"
            else fleet.diff_text(args.a, args.b, difference))
    elif command == "exec":
        argv = [a for a in args.argv if a != "--"] if args.argv[:1] == ["--"] else args.argv
        if not argv:
            raise PluginError("exec: no command given (kubectl reef exec NAME -- COMMAND)",
                              exit_code=2)
        result = asyncio.run(vm.run(cluster, args.name, argv, args.timeout))
        sys.stdout.write(result.stdout)
        sys.stderr.write(result.stderr)
        return result.exit_status
    elif command == "cp":
        say(asyncio.run(vm.copy(cluster, args.source, args.destination)))
    elif command == "wait":
        condition, expected = _parse_for(args.wait_for)
        plural, name = "lieutenants", args.name
        if "/" in name:
            plural, name = "vmnodes", name.split("/", 1)[1]
        lieutenants.wait_for(cluster, name, condition, expected, args.timeout, plural=plural)
        say(f"{plural[:-1]}/{name} condition met")
    elif command == "dashboard":
        dashboard.serve(cluster, args.address, args.port, args.all_namespaces, say)
    elif command == "config":
        env = (settings.deployment_env(cluster, args.from_deployment, args.operator_namespace)
               if args.from_deployment else dict(os.environ))
        if args.change:
            key, value = _parse_change(args.change)
            for line in settings.change(cluster, env, args.operator_namespace, key, value):
                say(line)
            return 0
        rows = settings.resolved(cluster, env, args.operator_namespace)
        say(output.structured(rows, args.output) if args.output != "table" else
            output.table(["key", "value", "source"],
                         [[r["key"], r["value"], r["source"]] for r in rows]))
    return 0


def _write(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def _parse_change(words: list[str]) -> tuple[str, str | None]:
    if len(words) == 3 and words[0] == "set":
        return words[1], words[2]
    if len(words) == 2 and words[0] == "unset":
        return words[1], None
    raise PluginError(f"config {' '.join(words)}: expected `config set KEY VALUE` or "
                      "`config unset KEY`", exit_code=2)


def _parse_for(text: str) -> tuple[str, str]:
    kind, _, rest = text.partition("=")
    if kind == "phase" and rest:
        return f"phase={rest}", ""
    if kind != "condition" or not rest:
        raise PluginError(f"--for={text}: expected condition=TYPE[=STATUS] or phase=PHASE",
                          exit_code=2)
    condition, _, expected = rest.partition("=")
    return condition, {"": "True", "true": "True", "false": "False"}.get(expected.lower(),
                                                                          expected)


def _summary(lieutenant: dict[str, object]) -> dict[str, object]:
    meta = lieutenant["metadata"]
    assert isinstance(meta, dict)
    return {"name": meta["name"], "namespace": meta.get("namespace"),
            "spec": lieutenant.get("spec"), "status": lieutenant.get("status") or {}}


def _node_summary(node: dict[str, object]) -> dict[str, object]:
    meta, spec = node["metadata"], node.get("spec") or {}
    status = node.get("status") or {}
    assert isinstance(meta, dict) and isinstance(spec, dict) and isinstance(status, dict)
    return {"name": meta["name"], "namespace": meta.get("namespace"),
            "parent": (spec.get("parentRef") or {}).get("name"),
            "category": spec.get("category"), "state": status.get("vmState"),
            "vmId": status.get("vmId"), "dna": fleet.dna(node)}


if __name__ == "__main__":
    sys.exit(main())
