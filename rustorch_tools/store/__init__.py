"""rustorch_tools.store."""
