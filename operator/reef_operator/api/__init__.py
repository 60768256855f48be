"""The reef.vers.sh/v1alpha1 API: kinds, schemas and the manifests rendered from them."""

from reef_operator.api.bootprofile import BOOTPROFILE
from reef_operator.api.kinds import Kind
from reef_operator.api.lieutenant import LIEUTENANT
from reef_operator.api.reefpolicy import REEFPOLICY
from reef_operator.api.taskrecord import TASKRECORD
from reef_operator.api.vmnode import VMNODE
from reef_operator.api.vmpool import VMPOOL

KINDS: tuple[Kind, ...] = (LIEUTENANT, VMNODE, BOOTPROFILE, TASKRECORD, REEFPOLICY, VMPOOL)

__all__ = ["BOOTPROFILE", "KINDS", "LIEUTENANT", "REEFPOLICY", "TASKRECORD", "VMNODE", "VMPOOL",
           "Kind"]
