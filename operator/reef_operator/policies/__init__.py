"""A namespace's ReefPolicy: what its objects use of it (the rules each object must meet are
pure functions of the kind, in api/reefpolicy.py)."""
