"""The workload: concurrent clients doing random operations against random nodes.

Each client is a task with its own seeded random source and HTTP client. It
picks a node (any, whatever the nemesis is doing to it) and an operation —
create an order, move its ``estado``, cancel it, delete it, restock or remove
units, update a client or a product — and records an :class:`Operacion`
before sending it and its outcome after:

- ``ok``: a 2xx answer; it happened.
- ``fallida``: a 4xx answer (the API promises that a refused request changes
  nothing), or a connection that could not even be opened: it did not happen.
- ``incierta``: a timeout, a connection lost after the request went out, or a
  5xx: it may or may not have happened, and the checker must allow both.

Orders are created with server-made ids, so a creation of uncertain outcome
is recognised afterwards by its signature: the node that took it, the client
and the items (see ``verificador``).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests import credenciales

OK, FALLIDA, INCIERTA = "ok", "fallida", "incierta"
PLAZO_PETICION_S = 1.5
PAUSA_MEDIA_S = 0.05

# Operation kinds and their weights in the mix.
MEZCLA = {
    "crear_pedido": 34,
    "cambiar_estado": 22,
    "cancelar": 8,
    "eliminar_pedido": 5,
    "reponer": 11,
    "actualizar_cliente": 10,
    "actualizar_producto": 10,
}
SIGUIENTE = {"pendiente": "confirmado", "confirmado": "enviado", "enviado": "entregado"}


@dataclass
class Operacion:
    """One operation of the history: what was asked of which node, and what came of it."""

    n: int
    cliente: int
    nodo: str
    tipo: str
    datos: dict[str, Any]
    inicio: float
    fin: float | None = None
    resultado: str = "invocada"
    detalle: str = ""
    pedido_id: str | None = None  # the order created (when ok) or acted on
    stock_visto: int | None = None  # a product's stock as the answer showed it (restock, product update)

    def firma(self) -> tuple[str, str, tuple[tuple[str, int], ...]]:
        """What identifies an order creation without its id: node, client and items."""
        items = tuple(sorted((i["producto_id"], int(i["cantidad"])) for i in self.datos["items"]))
        return (self.nodo, self.datos["cliente_id"], items)


@dataclass
class Catalogo:
    """What the run starts with: clients, and products with their initial units."""

    clientes: list[str]
    stock_inicial: dict[str, int]

    @property
    def productos(self) -> list[str]:
        return list(self.stock_inicial)


@dataclass
class Carga:
    """A workload over ``nodos`` (id → base URL); :meth:`ejecutar` runs it and answers the history."""

    nodos: dict[str, str]
    catalogo: Catalogo
    semilla: int
    clientes: int = 4
    historia: list[Operacion] = field(default_factory=list)
    _pedidos: dict[str, str] = field(default_factory=dict)  # id → last estado a client saw

    async def ejecutar(self, duracion: float) -> list[Operacion]:
        limite = time.monotonic() + duracion
        await asyncio.gather(*(self._cliente(i, limite) for i in range(self.clientes)))
        return self.historia

    async def _cliente(self, i: int, limite: float) -> None:
        azar = random.Random(self.semilla * 7919 + i)
        ids = sorted(self.nodos)
        async with httpx.AsyncClient(timeout=PLAZO_PETICION_S, headers=credenciales.cabecera()) as http:
            while time.monotonic() < limite:
                await self._una(http, i, azar.choice(ids), azar)
                # Pacing of the load, not a wait for a condition.
                await asyncio.sleep(azar.expovariate(1 / PAUSA_MEDIA_S))

    async def _una(self, http: httpx.AsyncClient, cliente: int, nodo: str, azar: random.Random) -> None:
        tipos, pesos = zip(*MEZCLA.items(), strict=True)
        tipo = azar.choices(tipos, pesos)[0] if self._pedidos else "crear_pedido"
        metodo, ruta, cuerpo, pedido = self._peticion(tipo, azar)
        datos = {**(cuerpo or {}), **({"producto_id": ruta.split("/")[3]} if tipo == "reponer" else {})}
        op = Operacion(len(self.historia), cliente, nodo, tipo, datos, time.monotonic(), pedido_id=pedido)
        self.historia.append(op)
        try:
            r = await http.request(metodo, self.nodos[nodo] + ruta, json=cuerpo)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as e:
            op.resultado, op.detalle = FALLIDA, type(e).__name__  # never reached the node
        except httpx.TransportError as e:
            op.resultado, op.detalle = INCIERTA, type(e).__name__
        else:
            if r.is_success:
                op.resultado = OK
                self._anotar(op, r)
            elif r.status_code < 500:
                op.resultado, op.detalle = FALLIDA, _codigo(r)
            else:
                op.resultado, op.detalle = INCIERTA, f"HTTP {r.status_code}"
        op.fin = time.monotonic()

    def _peticion(self, tipo: str, azar: random.Random) -> tuple[str, str, dict[str, Any] | None, str | None]:
        cat = self.catalogo
        if tipo == "crear_pedido":
            productos = azar.sample(cat.productos, azar.randint(1, min(2, len(cat.productos))))
            items = [{"producto_id": p, "cantidad": azar.randint(1, 3)} for p in productos]
            return "POST", "/api/pedidos", {"cliente_id": azar.choice(cat.clientes), "items": items}, None
        if tipo in ("reponer", "actualizar_producto"):
            producto = azar.choice(cat.productos)
            if tipo == "reponer":
                cantidad = azar.randint(1, 5) if azar.random() < 0.8 else -azar.randint(1, 3)
                return "POST", f"/api/productos/{producto}/stock", {"cantidad": cantidad}, None
            cuerpo = {"precio": f"{azar.randint(100, 9999) / 100:.2f}"} if azar.random() < 0.5 else {}
            return "PUT", f"/api/productos/{producto}", {**cuerpo, "nombre": f"Producto {azar.randint(1, 99)}"}, None
        if tipo == "actualizar_cliente":
            nombre = azar.choice(["Ana", "Luis", "Eva", "Marta", "Iker"]) + f" {azar.randint(1, 99)}"
            return "PUT", f"/api/clientes/{azar.choice(cat.clientes)}", {"nombre": nombre}, None
        pedido = azar.choice(sorted(self._pedidos))
        if tipo == "eliminar_pedido":
            return "DELETE", f"/api/pedidos/{pedido}", None, pedido
        if tipo == "cancelar":
            estado = "cancelado"
        else:
            actual = self._pedidos[pedido]
            siguiente = SIGUIENTE.get(actual)
            estado = siguiente if siguiente and azar.random() < 0.8 else azar.choice(list(SIGUIENTE.values()))
        return "PUT", f"/api/pedidos/{pedido}/estado", {"estado": estado}, pedido

    def _anotar(self, op: Operacion, r: httpx.Response) -> None:
        if op.tipo == "crear_pedido":
            op.pedido_id = r.json()["id"]
        if op.tipo in ("crear_pedido", "cambiar_estado", "cancelar") and op.pedido_id:
            self._pedidos[op.pedido_id] = r.json()["estado"]
        if op.tipo in ("reponer", "actualizar_producto"):
            op.stock_visto = r.json()["stock"]


def _codigo(r: httpx.Response) -> str:
    try:
        return f"{r.status_code} {r.json()['error']['codigo']}"
    except (ValueError, KeyError, TypeError):
        return f"HTTP {r.status_code}"


def resumen(historia: Sequence[Operacion]) -> dict[str, Counter[str]]:
    """Per operation kind, how many ended ok, fallida, incierta (and still invocada)."""
    cuentas: dict[str, Counter[str]] = {t: Counter() for t in MEZCLA}
    for op in historia:
        cuentas.setdefault(op.tipo, Counter())[op.resultado] += 1
    return cuentas
