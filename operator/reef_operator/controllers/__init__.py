"""kopf handlers: thin adapters from watch events to the domain modules.

Importing this package registers every handler with kopf.
"""

from reef_operator.controllers import admission, bootprofile, lieutenant, startup, vmnode

__all__ = ["admission", "bootprofile", "lieutenant", "startup", "vmnode"]
