"""A real local Kubernetes control plane (etcd + kube-apiserver + kube-controller-manager).

Shared by `reef-operator dev`, the demo and the test suite.
"""

from reef_operator.testing.controlplane.build import Binaries, ensure_binaries
from reef_operator.testing.controlplane.cluster import LocalControlPlane
from reef_operator.testing.controlplane.errors import ControlPlaneError

__all__ = ["Binaries", "ControlPlaneError", "LocalControlPlane", "ensure_binaries"]
