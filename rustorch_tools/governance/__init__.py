"""rustorch_tools.governance."""
