"""`kubectl reef`: the kubectl plugin for lieutenants and their VMs (script `kubectl-reef`)."""
