"""Domain operations: the only way the APIs change or read state.

Every write runs inside :meth:`Almacen.escribir`: it reads what it must
check on the write connection (so no other write slips in between the check
and the change), raises a coded error when the request cannot be honoured,
or declares the changes it makes. Nothing is written when it raises.

Rules that live here:

- ``estado`` moves ``pendiente → confirmado → enviado → entregado``, and
  ``pendiente | confirmado → cancelado``; ``entregado`` and ``cancelado`` are
  final. Every transition moves up the order the merge ranks states by
  (``sync.reglas``), so what a node allows locally never goes back when
  merged. Asking for the state an order is already in answers the order
  and writes nothing: a client that lost the first answer may retry.
- Units of a cancelled order return to stock once the cancellation is
  settled: at once on a cluster of one node, else when every node has it
  (:meth:`Dominio.asentar`; until then they show as ``por_devolver``).
- Deleting an order that is pending or confirmed cancels it first; a
  shipped order that is not yet delivered cannot be deleted. A delete
  records the state it saw (``eliminado_en``), so a concurrent shipment
  elsewhere keeps the order visible.
- Creates and stock adjustments may carry an idempotency key
  (``servidor.dominio.idempotencia``): the entity's id comes from the key.
- Setting a product's ``stock`` to an absolute value becomes an adjustment by
  the difference, at this node's counter entry.
- Units are sold or removed only out of this node's rights to them; when it
  holds too few, the write is undone, rights are asked of peers, and it is
  tried again (see ``servidor.dominio.derechos``).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar

from servidor.almacen import Almacen, Escritura, consultas
from servidor.dominio import idempotencia
from servidor.dominio import validacion as v
from servidor.dominio.derechos import (
    PAUSA_MAX_S,
    PAUSA_MIN_S,
    Esperas,
    Falta,
    FaltanDerechos,
    Reparto,
    a_conceder,
    cuota,
    tiene_prioridad,
)
from servidor.dominio.ids import id_de_clave, nuevo_id
from servidor.errores import NoEncontrado, TransicionInvalida, Validacion

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
    def __init__(self, almacen: Almacen, nodos: int = 1) -> None:
        self.almacen = almacen
        self.nodos = nodos
        self.reparto: Reparto | None = None  # set when the node has peers to ask for rights
        self.esperas = Esperas()  # this node's orders waiting for rights
        almacen.observar(self.esperas.al_confirmar)

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

    async def _con_derechos(self, intento: Callable[[], Awaitable[T]]) -> T:
        """Run a write that sells or removes units; when rights are short, get them and retry.

        Peers are asked round after round until ``reparto.espera`` runs out,
        with a pause after a round that brought nothing (units may be in
        flight between peers); the write is refused sooner only when waiting
        cannot help (see ``servidor.dominio.derechos``). Meanwhile the units
        it waits for are kept back from askers without priority.
        """
        reparto = self.reparto
        limite = time.monotonic() + (reparto.espera if reparto else 0.0)
        pausa = PAUSA_MIN_S
        vacia = False  # the last round brought nothing
        soltar: Callable[[], None] | None = None
        try:
            while True:
                try:
                    return await intento()
                except FaltanDerechos as e:
                    restante = limite - time.monotonic()
                    if reparto is None or restante <= 0:
                        raise e.rechazo() from None
                    if soltar is None:
                        soltar = self.esperas.apuntar(e.faltas)
                    ronda = await reparto.conseguir(e.faltas, restante, a_todos=vacia)
                    vacia = not ronda.unidades
                    if ronda.unidades:
                        continue
                    if ronda.completa and e.agotado:
                        raise e.rechazo() from None
                    await self.esperas.pausa(min(pausa, limite - time.monotonic()))
                    pausa = min(2 * pausa, PAUSA_MAX_S)
        finally:
            if soltar is not None:
                soltar()

    async def _crear(
        self,
        entidad: str,
        lector: Callable[..., Any],
        id: str,
        clave: str | None,
        huella: str,
        escribir: Callable[[Escritura], None],
    ) -> dict[str, Any]:
        """Create ``entidad`` ``id`` with ``escribir``; with a key, answer an earlier creation of it instead."""
        repetida: list[bool] = []

        def op(tx: Escritura) -> None:
            repetida.clear()
            if clave is not None:
                if _ya_creada(tx, entidad, id, huella):
                    repetida.append(True)
                    return
                tx.poner(entidad, id, "huella", huella)
            escribir(tx)

        hecho = await self._escribir(op, lector, entidad, id)
        return idempotencia.Repeticion(hecho) if repetida else hecho

    def _id(self, entidad: str, clave: str | None) -> str:
        return nuevo_id() if clave is None else id_de_clave(entidad, clave)

    async def _obtener(self, lector: Callable[..., Any], entidad: str, id: str) -> dict[str, Any]:
        return _existe(await self._leer(lector, id), entidad, id)

    # --- clientes ---------------------------------------------------------

    async def crear_cliente(self, datos: Any, clave: str | None = None) -> dict[str, Any]:
        limpio = v.cliente(datos)
        id = self._id("cliente", clave)

        def op(tx: Escritura) -> None:
            for campo in sorted(v.CAMPOS_CLIENTE):
                tx.poner("cliente", id, campo, limpio.get(campo))
            tx.poner("cliente", id, "creado_en", self._ahora())

        return await self._crear("cliente", consultas.cliente, id, clave, idempotencia.huella("cliente", limpio), op)

    async def listar_clientes(self, pagina: v.Pagina | None = None) -> list[dict[str, Any]]:
        return await self._leer(consultas.clientes, **_pagina(pagina))

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

    async def crear_producto(self, datos: Any, clave: str | None = None) -> dict[str, Any]:
        limpio = v.producto(datos)
        id = self._id("producto", clave)
        huella = idempotencia.huella("producto", limpio)

        def op(tx: Escritura) -> None:
            tx.poner("producto", id, "nombre", limpio["nombre"])
            tx.poner("producto", id, "descripcion", limpio.get("descripcion"))
            tx.poner("producto", id, "precio", str(limpio["precio"]))
            tx.poner("producto", id, "creado_en", self._ahora())
            if clave is None:
                tx.sumar_stock(id, "entradas", limpio.get("stock", 0))
            elif limpio.get("stock"):
                # Two nodes cut off from each other may both take the key: the initial
                # units are a keyed adjustment, counted once whichever creation wins.
                self._ajuste(tx, id_de_clave("producto-stock", clave), id, limpio["stock"], huella)

        return await self._crear("producto", consultas.producto, id, clave, huella, op)

    def _ajuste(self, tx: Escritura, id: str, producto_id: str, cantidad: int, huella: str) -> None:
        """A keyed stock adjustment: its units move once per key (see ``sync.reglas``, credits)."""
        tx.poner("ajuste", id, "movimiento", {"producto_id": producto_id, "cantidad": cantidad})
        tx.poner("ajuste", id, "creado_en", self._ahora())
        tx.poner("ajuste", id, "huella", huella)
        if cantidad < 0:
            tx.sumar_stock(producto_id, "salidas", -cantidad)
        elif self.nodos == 1:  # no other node can have taken the key: settled at once
            tx.poner("ajuste", id, "firme", self.nodo_id)

    async def listar_productos(self, pagina: v.Pagina | None = None) -> list[dict[str, Any]]:
        return await self._leer(consultas.productos, **_pagina(pagina))

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
                _ajustar(tx, actual, limpio["stock"] - actual["stock"])

        return await self._con_derechos(lambda: self._escribir(op, consultas.producto, "producto", id))

    async def ajustar_stock(self, id: str, cantidad: Any, clave: str | None = None) -> dict[str, Any]:
        n = v.entero(cantidad, "cantidad", -v.MAX_STOCK, v.MAX_STOCK)
        if n == 0:
            raise Validacion("'cantidad' must not be zero", {"campo": "cantidad"})
        if clave is None:

            def op(tx: Escritura) -> None:
                _ajustar(tx, _existe(consultas.producto(tx.conn, id), "producto", id), n)

            return await self._con_derechos(lambda: self._escribir(op, consultas.producto, "producto", id))

        ajuste_id = id_de_clave("ajuste", clave)
        huella = idempotencia.huella("ajuste", {"producto_id": id, "cantidad": n})
        repetida: list[bool] = []

        def con_clave(tx: Escritura) -> None:
            repetida.clear()
            producto = _existe(consultas.producto(tx.conn, id), "producto", id)
            if _ya_creada(tx, "ajuste", ajuste_id, huella):
                repetida.append(True)
                return
            _ajustar(tx, producto, n, escribir=False)
            self._ajuste(tx, ajuste_id, id, n, huella)

        hecho = await self._con_derechos(lambda: self._escribir(con_clave, consultas.producto, "producto", id))
        return idempotencia.Repeticion(hecho) if repetida else hecho

    async def ceder_derechos(self, destino: str, producto_id: str, necesita: int, extra: int) -> tuple[int, int | None]:
        """A peer asks for rights to units of a product: grant what the policy allows.

        Units this node's own waiting orders need are kept back unless
        ``destino`` has priority (see ``servidor.dominio.derechos``).

        Answers the units granted and the ``seq`` of the change that grants
        them (``None`` when nothing was granted).
        """
        hecho: list[tuple[int, Escritura]] = []
        prioridad = tiene_prioridad(destino, self.nodo_id)

        def op(tx: Escritura) -> None:
            producto = consultas.producto(tx.conn, producto_id)
            if producto is None:
                return
            propios = producto["derechos"].get(self.nodo_id, 0)
            reservadas = self.esperas.reservadas(producto_id)  # as of the grant: orders may have started waiting
            n = a_conceder(propios, necesita, extra, cuota(producto["stock"], self.nodos), reservadas, prioridad)
            if n > 0:
                tx.ceder(producto_id, destino, n)
                hecho.append((n, tx))

        await self.almacen.escribir(op)
        if not hecho:
            return 0, None
        n, tx = hecho[0]
        return n, tx.sellados[-1].seq

    # --- pedidos ----------------------------------------------------------

    async def crear_pedido(self, datos: Any, clave: str | None = None) -> dict[str, Any]:
        cliente_id, unidades = v.pedido(datos)
        id = self._id("pedido", clave)
        huella = idempotencia.huella("pedido", {"cliente_id": cliente_id, "unidades": sorted(unidades.items())})

        vendidos: dict[str, dict[str, Any]] = {}

        def op(tx: Escritura) -> None:
            _existe(consultas.cliente(tx.conn, cliente_id), "cliente", cliente_id)
            productos = consultas.productos_por_ids(tx.conn, list(unidades), con_derechos=False)
            propios = consultas.derechos_propios(tx.conn, list(productos), self.nodo_id)
            items, total, faltas = [], Decimal("0.00"), []
            for pid, cantidad in unidades.items():
                producto = productos.get(pid)
                if producto is None:
                    raise NoEncontrado("producto", pid)
                aqui = propios.get(pid, 0)
                if aqui < cantidad:
                    faltas.append(_falta(tx, producto, cantidad, aqui))
                vendidos[pid] = {**producto, "aqui": aqui - cantidad, "stock": producto["stock"] - cantidad}
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
            if faltas:
                raise FaltanDerechos(faltas, self.nodo_id)
            tx.poner("pedido", id, "cliente_id", cliente_id)
            tx.poner("pedido", id, "items", items)
            tx.poner("pedido", id, "total", str(total))
            tx.poner("pedido", id, "estado", "pendiente")
            tx.poner("pedido", id, "nodo_origen", self.nodo_id)
            tx.poner("pedido", id, "creado_en", self._ahora())
            for pid, cantidad in unidades.items():
                tx.sumar_stock(pid, "salidas", cantidad)

        pedido = await self._con_derechos(lambda: self._crear("pedido", consultas.pedido, id, clave, huella, op))
        if self.reparto is not None and not isinstance(pedido, idempotencia.Repeticion):
            for pid, p in vendidos.items():
                if self.reparto.bajo_cuota(p["aqui"], p["stock"]):
                    derechos = await self._leer(consultas.derechos, [pid])
                    self.reparto.tras_venta(pid, p["aqui"], p["stock"], derechos.get(pid, {}))
        return pedido

    async def listar_pedidos(
        self, estado: str | None = None, cliente_id: str | None = None, pagina: v.Pagina | None = None
    ) -> list[dict[str, Any]]:
        if estado is not None:
            estado = v.estado(estado)
        if cliente_id is not None:
            cliente_id = v.identificador(cliente_id, "cliente_id")
        return await self._leer(consultas.pedidos, estado=estado, cliente_id=cliente_id, **_pagina(pagina))

    async def obtener_pedido(self, id: str) -> dict[str, Any]:
        return await self._obtener(consultas.pedido, "pedido", id)

    async def cambiar_estado(self, id: str, estado: Any) -> dict[str, Any]:
        nuevo = v.estado(estado)

        def op(tx: Escritura) -> None:
            actual = _existe(consultas.pedido(tx.conn, id), "pedido", id)
            if actual["estado"] == nuevo:
                return  # a retry of a transition that happened: nothing to write
            permitidos = TRANSICIONES[actual["estado"]]
            if nuevo not in permitidos:
                raise TransicionInvalida(
                    f"an order in estado {actual['estado']!r} cannot move to {nuevo!r}",
                    {"actual": actual["estado"], "pedido": nuevo, "permitidos": list(permitidos)},
                )
            self._poner_estado(tx, id, nuevo)

        return await self._escribir(op, consultas.pedido, "pedido", id)

    def _poner_estado(self, tx: Escritura, id: str, estado: str) -> None:
        tx.poner("pedido", id, "estado", estado)
        if estado == "cancelado" and self.nodos == 1:  # no other node can ship it: settled at once
            tx.poner("pedido", id, "devuelto", True)

    async def eliminar_pedido(self, id: str) -> None:
        def op(tx: Escritura) -> None:
            actual = _existe(consultas.pedido(tx.conn, id), "pedido", id)
            estado = actual["estado"]
            if estado == "enviado":
                raise TransicionInvalida(
                    "a shipped order cannot be deleted before it is delivered",
                    {"actual": estado, "permitidos": []},
                )
            if estado not in FINALES:
                estado = "cancelado"
                self._poner_estado(tx, id, estado)
            tx.poner("pedido", id, "eliminado_en", estado)

        await self.almacen.escribir(op)

    async def asentar(
        self, miembros: frozenset[str], acuses: Mapping[str, Mapping[str, int]]
    ) -> tuple[int, bool]:
        """Settle what can no longer be undone: write ``devuelto`` and ``firme`` (see ``sync.reglas``).

        ``miembros`` are the other nodes of the cluster, ``acuses`` the last
        version vector each acknowledged to this node. Answers how many
        entities were settled, and whether others still wait.
        """
        vector = self.almacen.vector  # read before the store: what we know of peers only grows
        esperan = await self._leer(consultas.por_asentar)
        if not esperan:
            return 0, False
        listos = sorted(k for k, escritas in esperan.items() if asentado(escritas, miembros, acuses, vector))
        if not listos:
            return 0, True

        def op(tx: Escritura) -> None:
            # Read again inside the transaction: a settle must never be written twice for nothing.
            aun = consultas.por_asentar(tx.conn)
            for entidad, clave in listos:
                if (entidad, clave) not in aun:
                    continue
                if entidad == "pedido":
                    tx.poner(entidad, clave, "devuelto", True)
                elif (ganador := consultas.ganador(tx.conn, entidad, clave)) is not None:
                    # Every creation of it is here now: name the one that counts, so that no
                    # node that has not heard of them all yet can credit another one meanwhile.
                    tx.poner(entidad, clave, "firme", ganador)

        await self.almacen.escribir(op)
        return len(listos), len(listos) < len(esperan)

    async def conflictos(self, pagina: v.Pagina | None = None) -> list[dict[str, Any]]:
        return await self._leer(consultas.conflictos, **_pagina(pagina))


def _pagina(pagina: v.Pagina | None) -> dict[str, int]:
    """The reader's page arguments; no page (internal callers only) reads the whole list."""
    return {} if pagina is None else {"limite": pagina.limite, "desde": pagina.desde}


def _ya_creada(tx: Escritura, entidad: str, id: str, huella: str) -> bool:
    """Whether a keyed creation of ``entidad`` ``id`` is here; refuse it if it came from another request.

    A creation whose changes have only partly arrived is not here yet: it is
    created again, and the two merge into one (``sync.reglas``).
    """
    guardada = consultas.huella(tx.conn, entidad, id)
    if guardada is None:
        return False
    idempotencia.repetir(guardada, huella, entidad, id)
    return True


def _existe(encontrado: dict[str, Any] | None, entidad: str, id: str) -> dict[str, Any]:
    if encontrado is None:
        raise NoEncontrado(entidad, id)
    return dict(encontrado)


def _falta(tx: Escritura, producto: dict[str, Any], pedido: int, aqui: int, retirada: bool = False) -> Falta:
    """What a refusal or a request to peers needs to know of a product short of rights."""
    derechos = producto.get("derechos")
    if derechos is None:
        derechos = consultas.derechos(tx.conn, [producto["id"]]).get(producto["id"], {})
    return Falta(producto["id"], producto["nombre"], pedido, aqui, producto["stock"], derechos, retirada)


def _ajustar(tx: Escritura, producto: dict[str, Any], delta: int, escribir: bool = True) -> None:
    """Adjust stock by ``delta`` units at this node's counter entry; removals spend its rights.

    ``escribir=False`` only checks (a keyed adjustment moves its units itself).
    """
    if delta > 0:
        if producto["stock"] + producto["por_confirmar"] + delta > v.MAX_STOCK:
            raise Validacion(
                f"stock would exceed {v.MAX_STOCK} units", {"campo": "cantidad", "disponible": producto["stock"]}
            )
        if escribir:
            tx.sumar_stock(producto["id"], "entradas", delta)
    elif delta < 0:
        aqui = producto["derechos"].get(tx.nodo_id, 0)
        if aqui < -delta:
            raise FaltanDerechos([_falta(tx, producto, -delta, aqui, retirada=True)], tx.nodo_id)
        if escribir:
            tx.sumar_stock(producto["id"], "salidas", -delta)


def asentado(
    escritas: list[tuple[str, int]],
    miembros: frozenset[str],
    acuses: Mapping[str, Mapping[str, int]],
    vector: Mapping[str, int],
) -> bool:
    """Whether no node can still undo a write of ``escritas`` (any one of them will do).

    Every other member has acknowledged one of them, and this node has
    applied everything that member had written when it did. A member's
    writes concurrent with them (a shipment racing a cancellation, a second
    creation of a keyed adjustment) were made before its acknowledgement, so
    they are here and already merged; its writes after it have seen them. A
    member never heard from blocks settling: waiting is safe, guessing is not.
    """
    for miembro in miembros:
        acuse = acuses.get(miembro)
        if acuse is None or vector.get(miembro, 0) < acuse.get(miembro, 0):
            return False
        if not any(acuse.get(origen, 0) >= seq for origen, seq in escritas):
            return False
    return True


__all__ = ["Dominio", "TRANSICIONES", "FINALES", "asentado"]
