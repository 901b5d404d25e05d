"""The engine: layers with hand-written backward passes, networks over flat buffers, Adam, losses and penalties."""
