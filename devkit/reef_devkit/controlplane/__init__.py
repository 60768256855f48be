"""A real local Kubernetes control plane (etcd + kube-apiserver + kube-controller-manager).

Shared by `reef-operator dev`, the demo and the test suite.
"""

from reef_devkit.controlplane.build import Binaries, ensure_binaries
from reef_devkit.controlplane.cluster import LocalControlPlane
from reef_devkit.controlplane.errors import ControlPlaneError

__all__ = ["Binaries", "ControlPlaneError", "LocalControlPlane", "ensure_binaries"]
