"""rustorch_tools.analytics."""
