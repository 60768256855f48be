"""The one error a benchmark raises: a run that cannot give its figures.

Library code raises it with the reason; only a script's `main()` turns it into a message
and an exit code, so a caller (a test, another benchmark) can catch it and clean up.
"""


class BenchError(Exception):
    """The run cannot give its figures; the message says why."""
