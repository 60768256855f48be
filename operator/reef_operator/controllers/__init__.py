"""kopf handlers: thin adapters from watch events to the domain modules.

Importing this package registers every handler with kopf.
"""

from reef_operator.controllers import bootprofile, lieutenant, reefpolicy, startup, vmnode, vmpool

__all__ = ["bootprofile", "lieutenant", "reefpolicy", "startup", "vmnode", "vmpool"]
