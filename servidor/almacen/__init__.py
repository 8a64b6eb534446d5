"""The store: the only package that speaks SQL."""

from servidor.almacen.almacen import Almacen, Escritura, ResultadoFusion
from servidor.almacen.cadena import Cadena

__all__ = ["Almacen", "Cadena", "Escritura", "ResultadoFusion"]
