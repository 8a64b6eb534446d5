"""Domain operations: the only way the APIs change or read state.

Every write runs inside :meth:`Almacen.escribir`: it reads what it must
check on the write connection (so no other write slips in between the check
and the change), raises a coded error when the request cannot be honoured,
or declares the changes it makes. Nothing is written when it raises.

Rules that live here:

- ``estado`` moves ``pendiente → confirmado → enviado → entregado``, and
  ``pendiente | confirmado → cancelado``; ``entregado`` and ``cancelado`` are
  final. Units of a cancelled order return to stock (see ``sync.reglas``).
- Deleting an order that is not final cancels it first.
- Setting a product's ``stock`` to an absolute value becomes an adjustment by
  the difference, at this node's counter entry.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar

from servidor.almacen import Almacen, Escritura, consultas
from servidor.dominio import validacion as v
from servidor.dominio.ids import nuevo_id
from servidor.errores import NoEncontrado, StockInsuficiente, TransicionInvalida, Validacion

T = TypeVar("T")

TRANSICIONES: dict[str, tuple[str, ...]] = {
    "pendiente": ("confirmado", "cancelado"),
    "confirmado": ("enviado", "cancelado"),
    "enviado": ("entregado",),
    "entregado": (),
    "cancelado": (),
}
FINALES = tuple(e for e, siguientes in TRANSICIONES.items() if not siguientes)


class Dominio:
    def __init__(self, almacen: Almacen) -> None:
        self.almacen = almacen

    @property
    def nodo_id(self) -> str:
        return self.almacen.nodo_id

    def _ahora(self) -> str:
        ms = self.almacen.reloj.ahora_ms()
        return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")

    async def _leer(self, lector: Callable[..., T], *args: Any, **kw: Any) -> T:
        return await self.almacen.leer(lector, *args, **kw)

    async def _escribir(
        self, op: Callable[[Escritura], None], lector: Callable[..., Any], entidad: str, id: str
    ) -> dict[str, Any]:
        """Run ``op`` and answer the entity ``id`` as it stands after it, read in the same transaction."""
        hecho = await self.almacen.escribir(op, lambda conn: _existe(lector(conn, id), entidad, id))
        assert hecho is not None
        return hecho

    async def _obtener(self, lector: Callable[..., Any], entidad: str, id: str) -> dict[str, Any]:
        return _existe(await self._leer(lector, id), entidad, id)

    # --- clientes ---------------------------------------------------------

    async def crear_cliente(self, datos: Any) -> dict[str, Any]:
        limpio = v.cliente(datos)
        id = nuevo_id()

        def op(tx: Escritura) -> None:
            for campo in sorted(v.CAMPOS_CLIENTE):
                tx.poner("cliente", id, campo, limpio.get(campo))
            tx.poner("cliente", id, "creado_en", self._ahora())

        return await self._escribir(op, consultas.cliente, "cliente", id)

    async def listar_clientes(self) -> list[dict[str, Any]]:
        return await self._leer(consultas.clientes)

    async def obtener_cliente(self, id: str) -> dict[str, Any]:
        return await self._obtener(consultas.cliente, "cliente", id)

    async def actualizar_cliente(self, id: str, datos: Any) -> dict[str, Any]:
        limpio = v.cliente(datos, parcial=True)

        def op(tx: Escritura) -> None:
            _existe(consultas.cliente(tx.conn, id), "cliente", id)
            for campo, valor in sorted(limpio.items()):
                tx.poner("cliente", id, campo, valor)

        return await self._escribir(op, consultas.cliente, "cliente", id)

    async def eliminar_cliente(self, id: str) -> None:
        def op(tx: Escritura) -> None:
            _existe(consultas.cliente(tx.conn, id), "cliente", id)
            tx.poner("cliente", id, "eliminado", True)

        await self.almacen.escribir(op)

    # --- productos --------------------------------------------------------

    async def crear_producto(self, datos: Any) -> dict[str, Any]:
        limpio = v.producto(datos)
        id = nuevo_id()

        def op(tx: Escritura) -> None:
            tx.poner("producto", id, "nombre", limpio["nombre"])
            tx.poner("producto", id, "descripcion", limpio.get("descripcion"))
            tx.poner("producto", id, "precio", str(limpio["precio"]))
            tx.poner("producto", id, "creado_en", self._ahora())
            tx.sumar_stock(id, "entradas", limpio.get("stock", 0))

        return await self._escribir(op, consultas.producto, "producto", id)

    async def listar_productos(self) -> list[dict[str, Any]]:
        return await self._leer(consultas.productos)

    async def obtener_producto(self, id: str) -> dict[str, Any]:
        return await self._obtener(consultas.producto, "producto", id)

    async def actualizar_producto(self, id: str, datos: Any) -> dict[str, Any]:
        limpio = v.producto(datos, parcial=True)

        def op(tx: Escritura) -> None:
            actual = _existe(consultas.producto(tx.conn, id), "producto", id)
            for campo in ("nombre", "descripcion"):
                if campo in limpio:
                    tx.poner("producto", id, campo, limpio[campo])
            if "precio" in limpio:
                tx.poner("producto", id, "precio", str(limpio["precio"]))
            if "stock" in limpio:
                _ajustar(tx, id, limpio["stock"] - actual["stock"], actual["stock"])

        return await self._escribir(op, consultas.producto, "producto", id)

    async def ajustar_stock(self, id: str, cantidad: Any) -> dict[str, Any]:
        n = v.entero(cantidad, "cantidad", -v.MAX_STOCK, v.MAX_STOCK)
        if n == 0:
            raise Validacion("'cantidad' must not be zero", {"campo": "cantidad"})

        def op(tx: Escritura) -> None:
            actual = _existe(consultas.producto(tx.conn, id), "producto", id)
            _ajustar(tx, id, n, actual["stock"])

        return await self._escribir(op, consultas.producto, "producto", id)

    # --- pedidos ----------------------------------------------------------

    async def crear_pedido(self, datos: Any) -> dict[str, Any]:
        cliente_id, unidades = v.pedido(datos)
        id = nuevo_id()

        def op(tx: Escritura) -> None:
            _existe(consultas.cliente(tx.conn, cliente_id), "cliente", cliente_id)
            productos = consultas.productos_por_ids(tx.conn, list(unidades))
            items, total = [], Decimal("0.00")
            for pid, cantidad in unidades.items():
                producto = productos.get(pid)
                if producto is None:
                    raise NoEncontrado("producto", pid)
                if producto["stock"] < cantidad:
                    raise StockInsuficiente(
                        f"not enough stock of {producto['nombre']!r}: {producto['stock']} left, {cantidad} asked",
                        {"producto_id": pid, "disponible": producto["stock"], "pedido": cantidad},
                    )
                subtotal = producto["precio"] * cantidad
                total += subtotal
                items.append(
                    {
                        "producto_id": pid,
                        "cantidad": cantidad,
                        "precio_unitario": str(producto["precio"]),
                        "subtotal": str(subtotal),
                    }
                )
            if total > v.MAX_PRECIO:
                raise Validacion(f"order total exceeds {v.MAX_PRECIO}", {"campo": "items"})
            tx.poner("pedido", id, "cliente_id", cliente_id)
            tx.poner("pedido", id, "items", items)
            tx.poner("pedido", id, "total", str(total))
            tx.poner("pedido", id, "estado", "pendiente")
            tx.poner("pedido", id, "nodo_origen", self.nodo_id)
            tx.poner("pedido", id, "creado_en", self._ahora())
            for pid, cantidad in unidades.items():
                tx.sumar_stock(pid, "salidas", cantidad)

        return await self._escribir(op, consultas.pedido, "pedido", id)

    async def listar_pedidos(self, estado: str | None = None, cliente_id: str | None = None) -> list[dict[str, Any]]:
        if estado is not None:
            estado = v.estado(estado)
        return await self._leer(consultas.pedidos, estado=estado, cliente_id=cliente_id)

    async def obtener_pedido(self, id: str) -> dict[str, Any]:
        return await self._obtener(consultas.pedido, "pedido", id)

    async def cambiar_estado(self, id: str, estado: Any) -> dict[str, Any]:
        nuevo = v.estado(estado)

        def op(tx: Escritura) -> None:
            actual = _existe(consultas.pedido(tx.conn, id), "pedido", id)
            permitidos = TRANSICIONES[actual["estado"]]
            if nuevo not in permitidos:
                raise TransicionInvalida(
                    f"an order in estado {actual['estado']!r} cannot move to {nuevo!r}",
                    {"actual": actual["estado"], "pedido": nuevo, "permitidos": list(permitidos)},
                )
            tx.poner("pedido", id, "estado", nuevo)

        return await self._escribir(op, consultas.pedido, "pedido", id)

    async def eliminar_pedido(self, id: str) -> None:
        def op(tx: Escritura) -> None:
            actual = _existe(consultas.pedido(tx.conn, id), "pedido", id)
            if actual["estado"] not in FINALES:
                tx.poner("pedido", id, "estado", "cancelado")
            tx.poner("pedido", id, "eliminado", True)

        await self.almacen.escribir(op)

    async def conflictos(self) -> list[dict[str, Any]]:
        return await self._leer(consultas.conflictos)


def _existe(encontrado: dict[str, Any] | None, entidad: str, id: str) -> dict[str, Any]:
    if encontrado is None:
        raise NoEncontrado(entidad, id)
    return dict(encontrado)


def _ajustar(tx: Escritura, producto_id: str, delta: int, disponible: int) -> None:
    """Adjust stock by ``delta`` units at this node's counter entry."""
    if delta > 0:
        if disponible + delta > v.MAX_STOCK:
            raise Validacion(f"stock would exceed {v.MAX_STOCK} units", {"campo": "cantidad", "disponible": disponible})
        tx.sumar_stock(producto_id, "entradas", delta)
    elif delta < 0:
        if disponible + delta < 0:
            raise StockInsuficiente(
                f"cannot remove {-delta} units: {disponible} in stock",
                {"producto_id": producto_id, "disponible": disponible, "pedido": -delta},
            )
        tx.sumar_stock(producto_id, "salidas", -delta)


__all__ = ["Dominio", "TRANSICIONES", "FINALES"]
