"""The one error the local control plane raises: it always says what failed and why."""


class ControlPlaneError(RuntimeError):
    """A step of building, starting or stopping the local control plane failed."""
