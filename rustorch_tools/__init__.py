"""rustorch_tools: experiment logging, checkpoints, governance and analytics."""
