"""The workload: concurrent clients doing random operations against random nodes.

Each client is a task with its own seeded random source and HTTP client. It
picks a node (any, whatever the nemesis is doing to it) and an operation —
create an order, a client or a product, move an order's ``estado``, cancel
it, delete it, restock or remove units, update a client or a product — and
records an :class:`Operacion` before sending it and its outcome after:

- ``ok``: a 2xx answer; it happened.
- ``fallida``: a 4xx answer (the API promises that a refused request changes
  nothing), or a connection that could not even be opened: it did not happen.
- ``incierta``: a timeout, a connection lost after the request went out, or a
  5xx: it may or may not have happened, and the checker must allow both.

Every create (``POST /api/pedidos``, ``/api/clientes``, ``/api/productos``,
``/api/productos/{id}/stock``) carries an ``Idempotency-Key`` (the
operation's ``clave``), so the entity's id is known before the answer
(``servidor.dominio.ids.id_de_clave``). A create of uncertain outcome is
sent again with the same key, on a node drawn again (the same or another),
up to :data:`REINTENTOS` times while the run lasts, and once more after the
cluster heals (:meth:`Carga.resolver`): then every node knows every key, so a
replay says it happened and a refusal says it never did. Each attempt is an
:class:`Intento` of the one operation. Creates made without a key (the
checker still accepts such histories) are recognised by their signature:
the node that took it, the client and the items (see ``verificador``).

Every ``estado`` an answer shows is a :class:`Lectura` of that node at that
time, as are those the watcher reads (``vigia``): the checker asks that no
node ever shows an order going back.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from servidor.dominio.idempotencia import CABECERA, CABECERA_REPETIDA
from tests import credenciales
from tests.caos.vigia import Lectura, Vigia

OK, FALLIDA, INCIERTA = "ok", "fallida", "incierta"
PLAZO_PETICION_S = 1.5
PAUSA_MEDIA_S = 0.05
REINTENTOS = 3  # retries of a create of uncertain outcome while the run lasts
PAUSA_REINTENTO_S = 0.2
INTENTOS_RESOLUCION = 6  # attempts per create still uncertain once the cluster healed
RECIENTES = 8  # orders the watcher reads, the last ones whose estado a client touched

# Operation kinds and their weights in the mix.
MEZCLA = {
    "crear_pedido": 32,
    "cambiar_estado": 22,
    "cancelar": 8,
    "eliminar_pedido": 5,
    "reponer": 11,
    "actualizar_cliente": 9,
    "actualizar_producto": 9,
    "crear_cliente": 2,
    "crear_producto": 2,
}
# Creates, and the entity each one's key names (``id_de_clave``).
CREACIONES = {"crear_pedido": "pedido", "crear_cliente": "cliente", "crear_producto": "producto", "reponer": "ajuste"}
SIGUIENTE = {"pendiente": "confirmado", "confirmado": "enviado", "enviado": "entregado"}


@dataclass
class Intento:
    """One sending of an operation's request to one node, and what came of it."""

    nodo: str
    inicio: float
    fin: float | None = None
    resultado: str = "invocada"
    detalle: str = ""
    repetida: bool = False  # answered as a replay of an earlier creation (``Idempotent-Replayed``)
    curado: bool = False  # sent once the cluster had healed and converged
    http: int | None = None  # the answer's status; None when none came

    @property
    def rechazada(self) -> bool:
        """Refused by a node that answered (not merely unreachable)."""
        return self.resultado == FALLIDA and self.http is not None


@dataclass
class Operacion:
    """One operation of the history: what was asked of which node, and what came of it."""

    n: int
    cliente: int
    nodo: str  # the node of the first attempt
    tipo: str
    datos: dict[str, Any]
    inicio: float
    fin: float | None = None
    resultado: str = "invocada"
    detalle: str = ""
    pedido_id: str | None = None  # the order created (when ok) or acted on
    stock_visto: int | None = None  # a product's stock as the answer showed it (restock, product update)
    clave: str | None = None  # the Idempotency-Key of a create
    respuesta_id: str | None = None  # the id of the entity a create's answer showed
    intentos: list[Intento] = field(default_factory=list)
    ruta: str = ""
    cuerpo: dict[str, Any] | None = None

    def firma(self) -> tuple[str, str, tuple[tuple[str, int], ...]]:
        """What identifies an order creation without its id: node, client and items."""
        items = tuple(sorted((i["producto_id"], int(i["cantidad"])) for i in self.datos["items"]))
        return (self.nodo, self.datos["cliente_id"], items)

    def concluir(self) -> None:
        """The outcome of all attempts: ok if any was; refused if every one was, or a healed cluster refused it.

        Once the cluster has healed and converged every node knows every key,
        so a node that refuses a key's create proves that no creation of it
        happened anywhere; a node that cannot be reached proves nothing.
        """
        ultimo = self.intentos[-1]
        self.fin, self.detalle = ultimo.fin, ultimo.detalle
        if any(i.resultado == OK for i in self.intentos):
            self.resultado = OK
        elif (ultimo.curado and ultimo.rechazada) or all(i.resultado == FALLIDA for i in self.intentos):
            self.resultado = FALLIDA
        else:
            self.resultado = INCIERTA


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
    vigilar: bool = True  # run the watcher (``vigia``) beside the clients
    historia: list[Operacion] = field(default_factory=list)
    lecturas: list[Lectura] = field(default_factory=list)
    recientes: deque[str] = field(default_factory=lambda: deque(maxlen=RECIENTES))
    _pedidos: dict[str, str] = field(default_factory=dict)  # id → last estado a client saw
    _clientes: list[str] = field(default_factory=list)  # the catalogue's, and those created since
    _productos: list[str] = field(default_factory=list)

    async def ejecutar(self, duracion: float) -> list[Operacion]:
        self._clientes = list(self.catalogo.clientes)
        self._productos = list(self.catalogo.productos)
        limite = time.monotonic() + duracion
        parar = asyncio.Event()
        vigia = Vigia(self.nodos, self.recientes, self.lecturas)
        tareas = [asyncio.create_task(vigia.ejecutar(parar))] if self.vigilar else []
        try:
            await asyncio.gather(*(self._cliente(i, limite) for i in range(self.clientes)))
        finally:
            parar.set()
            await asyncio.gather(*tareas)
        return self.historia

    async def resolver(self) -> int:
        """Send again every create still uncertain, on a healed cluster; answers how many there were."""
        pendientes = [op for op in self.historia if op.clave is not None and op.resultado == INCIERTA]
        azar = random.Random(self.semilla * 104729)
        ids = sorted(self.nodos)
        async with httpx.AsyncClient(timeout=PLAZO_PETICION_S, headers=credenciales.cabecera()) as http:
            for op in pendientes:
                for _ in range(INTENTOS_RESOLUCION):
                    await self._intentar(http, op, azar.choice(ids), curado=True)
                    if op.resultado != INCIERTA:
                        break
                    await asyncio.sleep(PAUSA_REINTENTO_S)  # pacing: a healed node may still be restarting
        return len(pendientes)

    async def _cliente(self, i: int, limite: float) -> None:
        azar = random.Random(self.semilla * 7919 + i)
        ids = sorted(self.nodos)
        async with httpx.AsyncClient(timeout=PLAZO_PETICION_S, headers=credenciales.cabecera()) as http:
            while time.monotonic() < limite:
                await self._una(http, i, azar.choice(ids), azar, limite)
                # Pacing of the load, not a wait for a condition.
                await asyncio.sleep(azar.expovariate(1 / PAUSA_MEDIA_S))

    async def _una(self, http: httpx.AsyncClient, cliente: int, nodo: str, azar: random.Random, limite: float) -> None:
        tipos, pesos = zip(*MEZCLA.items(), strict=True)
        tipo = azar.choices(tipos, pesos)[0] if self._pedidos else "crear_pedido"
        ruta, cuerpo, pedido = self._peticion(tipo, azar)
        datos = {**(cuerpo or {}), **({"producto_id": ruta.split("/")[3]} if tipo == "reponer" else {})}
        op = Operacion(len(self.historia), cliente, nodo, tipo, datos, time.monotonic(), pedido_id=pedido)
        op.ruta, op.cuerpo = ruta, cuerpo
        if tipo in CREACIONES:
            op.clave = f"caos.s{self.semilla}.c{cliente}.{op.n}"
        self.historia.append(op)
        await self._intentar(http, op, nodo)
        for _ in range(REINTENTOS if op.clave is not None else 0):
            if op.resultado != INCIERTA or time.monotonic() >= limite:
                break
            await asyncio.sleep(PAUSA_REINTENTO_S)  # pacing of retries, not a wait for a condition
            await self._intentar(http, op, azar.choice(sorted(self.nodos)))

    async def _intentar(self, http: httpx.AsyncClient, op: Operacion, nodo: str, curado: bool = False) -> None:
        intento = Intento(nodo, time.monotonic(), curado=curado)
        op.intentos.append(intento)
        metodo = {"eliminar_pedido": "DELETE"}.get(op.tipo, "POST" if op.tipo in CREACIONES else "PUT")
        cabeceras = {CABECERA: op.clave} if op.clave is not None else {}
        r: httpx.Response | None = None
        try:
            r = await http.request(metodo, self.nodos[nodo] + op.ruta, json=op.cuerpo, headers=cabeceras)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as e:
            intento.resultado, intento.detalle = FALLIDA, type(e).__name__  # never reached the node
        except httpx.TransportError as e:
            intento.resultado, intento.detalle = INCIERTA, type(e).__name__
        else:
            intento.http = r.status_code
            if r.is_success:
                intento.resultado = OK
                intento.repetida = r.headers.get(CABECERA_REPETIDA) == "true"
            elif r.status_code < 500:
                intento.resultado, intento.detalle = FALLIDA, _codigo(r)
            else:
                intento.resultado, intento.detalle = INCIERTA, f"HTTP {r.status_code}"
        intento.fin = time.monotonic()
        op.concluir()
        if intento.resultado != INCIERTA:
            self._anotar(op, intento, r)

    def _peticion(self, tipo: str, azar: random.Random) -> tuple[str, dict[str, Any] | None, str | None]:
        if tipo == "crear_pedido":
            productos = azar.sample(self._productos, azar.randint(1, min(2, len(self._productos))))
            items = [{"producto_id": p, "cantidad": azar.randint(1, 3)} for p in productos]
            return "/api/pedidos", {"cliente_id": azar.choice(self._clientes), "items": items}, None
        if tipo == "crear_cliente":
            n = azar.randint(1, 999)
            return "/api/clientes", {"nombre": f"Cliente nuevo {n}", "email": f"nuevo{n}@example.com"}, None
        if tipo == "crear_producto":
            cuerpo = {"nombre": f"Producto nuevo {azar.randint(1, 99)}", "precio": "3.25", "stock": azar.randint(0, 6)}
            return "/api/productos", cuerpo, None
        if tipo in ("reponer", "actualizar_producto"):
            producto = azar.choice(self._productos)
            if tipo == "reponer":
                cantidad = azar.randint(1, 5) if azar.random() < 0.8 else -azar.randint(1, 3)
                return f"/api/productos/{producto}/stock", {"cantidad": cantidad}, None
            cuerpo = {"precio": f"{azar.randint(100, 9999) / 100:.2f}"} if azar.random() < 0.5 else {}
            return f"/api/productos/{producto}", {**cuerpo, "nombre": f"Producto {azar.randint(1, 99)}"}, None
        if tipo == "actualizar_cliente":
            nombre = azar.choice(["Ana", "Luis", "Eva", "Marta", "Iker"]) + f" {azar.randint(1, 99)}"
            return f"/api/clientes/{azar.choice(self._clientes)}", {"nombre": nombre}, None
        pedido = azar.choice(sorted(self._pedidos))
        if tipo == "eliminar_pedido":
            return f"/api/pedidos/{pedido}", None, pedido
        if tipo == "cancelar":
            estado = "cancelado"
        else:
            actual = self._pedidos[pedido]
            siguiente = SIGUIENTE.get(actual)
            estado = siguiente if siguiente and azar.random() < 0.8 else azar.choice(list(SIGUIENTE.values()))
        return f"/api/pedidos/{pedido}/estado", {"estado": estado}, pedido

    def _anotar(self, op: Operacion, intento: Intento, r: httpx.Response | None) -> None:
        """What a definite answer shows: the entity made, the stock, the estado read."""
        if r is None:
            return
        cuerpo = _json(r)
        if intento.resultado == FALLIDA:
            detalle = cuerpo.get("error", {}).get("detalle", {}) if isinstance(cuerpo, dict) else {}
            actual = detalle.get("actual") if isinstance(detalle, dict) else None
            if op.pedido_id and isinstance(actual, str):  # a refused transition shows the estado it saw
                self._leido(op.pedido_id, actual, intento)
            return
        if not isinstance(cuerpo, dict):
            return
        if op.tipo in CREACIONES and op.tipo != "reponer":
            op.respuesta_id = cuerpo.get("id")
        if op.tipo == "crear_pedido":
            op.pedido_id = cuerpo["id"]
        elif op.tipo == "crear_cliente":
            self._clientes.append(cuerpo["id"])
        elif op.tipo == "crear_producto":
            self._productos.append(cuerpo["id"])
        if op.tipo in ("crear_pedido", "cambiar_estado", "cancelar") and op.pedido_id:
            self._pedidos[op.pedido_id] = cuerpo["estado"]
            self._leido(op.pedido_id, cuerpo["estado"], intento)
        if op.tipo in ("reponer", "actualizar_producto"):
            op.stock_visto = cuerpo["stock"]

    def _leido(self, pedido: str, estado: str, intento: Intento) -> None:
        assert intento.fin is not None
        self.lecturas.append(Lectura(intento.nodo, pedido, estado, intento.inicio, intento.fin))
        if pedido in self.recientes:
            self.recientes.remove(pedido)
        self.recientes.append(pedido)


def _json(r: httpx.Response) -> Any:
    try:
        return r.json()
    except ValueError:
        return None


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
