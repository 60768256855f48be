"""VMPools: warm VMNodes booted ahead, and the claims that hand them over (pure decisions;
the pool controller and the claiming VMNode's reconciler do the I/O)."""
