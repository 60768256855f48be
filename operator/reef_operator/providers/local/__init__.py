"""The Local provider: VMs as directories and ordinary processes on the operator's host."""

from reef_operator.providers.local.provider import LocalProvider, kill_every_vm
from reef_operator.providers.local.shell import LocalShell, LocalStream

__all__ = ["LocalProvider", "LocalShell", "LocalStream", "kill_every_vm"]
