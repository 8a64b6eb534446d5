"""Domain operations over clientes, productos and pedidos."""

from servidor.dominio.operaciones import FINALES, TRANSICIONES, Dominio

__all__ = ["Dominio", "FINALES", "TRANSICIONES"]
