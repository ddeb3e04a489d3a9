"""Setting-level oversight at the host local authority's node: signals, published rules, clocks and replay."""
