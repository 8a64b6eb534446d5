"""pedidos: a multi-node order management server."""
