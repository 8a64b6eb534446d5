"""The store: the only package that speaks SQL."""

from servidor.almacen.almacen import Almacen, Escritura, ResultadoFusion

__all__ = ["Almacen", "Escritura", "ResultadoFusion"]
