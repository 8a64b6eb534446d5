"""Rights to stock (escrow): the policy's arithmetic, three stores trading rights by hand, and asking peers.

Peers are asked in-process (:class:`Vecinos`): a request is answered by the
peer's ``ceder_derechos`` and a grant merged here, as the peer link does.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from servidor.almacen import consultas
from servidor.dominio import Dominio
from servidor.dominio.derechos import Falta, FaltanDerechos, Reparto, a_conceder, cuota, plan, tiene_prioridad
from servidor.errores import StockInsuficiente
from tests.bd import BACKENDS
from tests.replicas import digest, sincronizar, todos_con_todos, tres_dominios

# --- the policy, as arithmetic ---------------------------------------------------


def test_the_fair_share_rounds_up_and_never_goes_negative() -> None:
    assert cuota(10, 3) == 4
    assert cuota(9, 3) == 3
    assert cuota(0, 3) == 0
    assert cuota(-2, 3) == 0


def test_a_peer_grants_everything_it_holds_for_an_order_but_only_its_surplus_ahead_of_demand() -> None:
    assert a_conceder(propios=5, necesita=8, extra=0, cuota_propia=4) == 5
    assert a_conceder(propios=5, necesita=2, extra=0, cuota_propia=4) == 2
    assert a_conceder(propios=9, necesita=0, extra=10, cuota_propia=4) == 5
    assert a_conceder(propios=3, necesita=0, extra=10, cuota_propia=4) == 0
    assert a_conceder(propios=-1, necesita=3, extra=3, cuota_propia=0) == 0


def test_a_peer_keeps_back_what_its_own_waiting_orders_need_unless_the_asker_goes_first() -> None:
    assert a_conceder(propios=3, necesita=5, extra=0, cuota_propia=0, reservadas=2) == 1
    assert a_conceder(propios=1, necesita=1, extra=0, cuota_propia=0, reservadas=4) == 0
    assert a_conceder(propios=3, necesita=5, extra=0, cuota_propia=0, reservadas=2, prioridad=True) == 3
    # a top-up takes neither its share nor its waiting orders' units, whoever asks
    assert a_conceder(propios=9, necesita=0, extra=10, cuota_propia=2, reservadas=4, prioridad=True) == 5
    assert tiene_prioridad("nodo1", "nodo2") and not tiene_prioridad("nodo2", "nodo1")


def test_the_plan_asks_the_biggest_known_holders_first() -> None:
    assert plan(5, {"nodo2": 3, "nodo3": 4}, ["nodo2", "nodo3"]) == {"nodo3": 4, "nodo2": 1}


def test_what_known_holders_cannot_cover_is_asked_of_every_linked_peer() -> None:
    assert plan(5, {"nodo2": 2, "nodo3": 0}, ["nodo2", "nodo3"]) == {"nodo2": 5, "nodo3": 3}
    assert plan(5, {"nodo4": 9}, ["nodo2"]) == {"nodo2": 5}
    assert plan(3, {}, []) == {}


def test_a_refusal_says_whether_the_cluster_is_out_of_units_or_only_this_node() -> None:
    derechos = {"nodo1": 1, "nodo2": 6}
    sin = FaltanDerechos([Falta("p1", "Taza", 3, 1, 7, derechos)], "nodo1").rechazo()
    assert sin.detalle == {
        "producto_id": "p1",
        "pedido": 3,
        "disponible_aqui": 1,
        "disponible_global": 7,
        "motivo": "sin_derechos",
    }
    assert "1 held here" in sin.mensaje and "7 in the cluster" in sin.mensaje
    agotado = FaltanDerechos([Falta("p1", "Taza", 9, 1, 7, derechos)], "nodo1").rechazo()
    assert agotado.detalle["motivo"] == "agotado"
    assert agotado.mensaje == "not enough stock of 'Taza': 9 asked, 7 left"


# --- three stores, rights moved by hand ----------------------------------------------


@pytest.fixture(params=BACKENDS)
async def tres(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[list[Dominio]]:
    async with tres_dominios(request.param, tmp_path) as dominios:
        yield dominios


async def _catalogo(d: Dominio, stock: int = 10) -> tuple[str, str]:
    c = await d.crear_cliente({"nombre": "Ana", "email": "ana@example.com"})
    p = await d.crear_producto({"nombre": "Taza", "precio": "4.50", "stock": stock})
    return c["id"], p["id"]


def _pedido(cid: str, pid: str, cantidad: int) -> dict[str, Any]:
    return {"cliente_id": cid, "items": [{"producto_id": pid, "cantidad": cantidad}]}


async def test_units_added_at_a_node_are_that_nodes_rights(tres: list[Dominio]) -> None:
    a, b, c = tres
    _, pid = await _catalogo(a, stock=10)
    await todos_con_todos(tres)
    await b.ajustar_stock(pid, 4)
    await todos_con_todos(tres)
    for d in tres:
        producto = await d.obtener_producto(pid)
        assert producto["stock"] == 14
        assert producto["derechos"] == {"nodo1": 10, "nodo2": 4}


async def test_a_node_without_rights_refuses_the_order_and_says_what_the_cluster_holds(tres: list[Dominio]) -> None:
    a, b, _ = tres
    cid, pid = await _catalogo(a, stock=10)
    await todos_con_todos(tres)
    antes = await digest(b)
    with pytest.raises(StockInsuficiente) as e:
        await b.crear_pedido(_pedido(cid, pid, 2))
    assert e.value.detalle == {
        "producto_id": pid,
        "pedido": 2,
        "disponible_aqui": 0,
        "disponible_global": 10,
        "motivo": "sin_derechos",
    }
    assert await digest(b) == antes


async def test_removing_units_also_needs_rights(tres: list[Dominio]) -> None:
    a, b, _ = tres
    _, pid = await _catalogo(a, stock=10)
    await todos_con_todos(tres)
    with pytest.raises(StockInsuficiente):
        await b.ajustar_stock(pid, -1)
    with pytest.raises(StockInsuficiente):
        await b.actualizar_producto(pid, {"stock": 9})
    assert (await a.ajustar_stock(pid, -3))["stock"] == 7


async def test_transferred_rights_let_the_receiver_sell_and_the_giver_no_longer(tres: list[Dominio]) -> None:
    a, b, c = tres
    cid, pid = await _catalogo(a, stock=10)
    concedidas, seq = await a.ceder_derechos("nodo2", pid, necesita=7, extra=0)
    assert concedidas == 7 and seq == a.almacen.vector["nodo1"]
    await todos_con_todos(tres)
    await b.crear_pedido(_pedido(cid, pid, 7))
    with pytest.raises(StockInsuficiente) as e:
        await a.crear_pedido(_pedido(cid, pid, 4))
    assert e.value.detalle["disponible_aqui"] == 3
    await todos_con_todos(tres)
    for d in tres:
        producto = await d.obtener_producto(pid)
        assert producto["stock"] == 3
        assert producto["derechos"] == {"nodo1": 3, "nodo2": 0}
    assert await digest(a) == await digest(b) == await digest(c)


async def test_a_node_never_grants_more_than_it_holds(tres: list[Dominio]) -> None:
    a, b, _ = tres
    _, pid = await _catalogo(a, stock=5)
    assert (await a.ceder_derechos("nodo2", pid, necesita=9, extra=0))[0] == 5
    assert await a.ceder_derechos("nodo3", pid, necesita=1, extra=0) == (0, None)
    assert await a.ceder_derechos("nodo3", "no-such-product", necesita=1, extra=0) == (0, None)


async def test_cancelled_units_return_to_the_node_that_sold_them_wherever_the_cancel_happened(
    tres: list[Dominio],
) -> None:
    a, b, c = tres
    cid, pid = await _catalogo(a, stock=10)
    pedido = await a.crear_pedido(_pedido(cid, pid, 4))
    await todos_con_todos(tres)
    await c.cambiar_estado(pedido["id"], "cancelado")
    await todos_con_todos(tres)
    for d in tres:
        producto = await d.obtener_producto(pid)
        assert producto["stock"] == 10 and producto["derechos"] == {"nodo1": 10}
    await a.crear_pedido(_pedido(cid, pid, 10))  # nodo1 may sell the returned units again


async def test_a_shipment_beats_a_concurrent_cancellation_and_its_units_are_never_returned(
    tres: list[Dominio],
) -> None:
    """Goods that left cannot be un-shipped: the units of a cancel that may still lose stay apart."""
    a, b, c = tres
    cid, pid = await _catalogo(a, stock=4)
    pedido = await a.crear_pedido(_pedido(cid, pid, 4))
    await todos_con_todos(tres)
    await a.cambiar_estado(pedido["id"], "cancelado")
    await b.cambiar_estado(pedido["id"], "confirmado")  # concurrent with the cancel
    await b.cambiar_estado(pedido["id"], "enviado")
    producto = await a.obtener_producto(pid)
    assert (producto["stock"], producto["por_devolver"]) == (0, 4)
    with pytest.raises(StockInsuficiente):  # the cancel can still lose: its units are not for sale
        await a.crear_pedido(_pedido(cid, pid, 4))
    await todos_con_todos(tres)
    for d in tres:
        assert (await d.obtener_pedido(pedido["id"]))["estado"] == "enviado"
        producto = await d.obtener_producto(pid)
        assert (producto["stock"], producto["por_devolver"], producto["derechos"]) == (0, 0, {"nodo1": 0})
        conflictos = {(x["valor_ganador"], x["valor_perdedor"]) for x in await d.conflictos()}
        assert conflictos == {('"cancelado"', '"confirmado"'), ('"enviado"', '"cancelado"')}
    assert await digest(a) == await digest(b) == await digest(c)


async def test_a_cancellation_beats_a_concurrent_confirmation_whichever_order_they_arrive_in(
    tres: list[Dominio],
) -> None:
    a, b, c = tres
    cid, pid = await _catalogo(a, stock=4)
    pedido = await a.crear_pedido(_pedido(cid, pid, 2))
    await todos_con_todos(tres)
    await a.cambiar_estado(pedido["id"], "cancelado")
    await b.cambiar_estado(pedido["id"], "confirmado")
    await sincronizar(b.almacen, c.almacen)  # the confirmation first
    assert (await c.obtener_pedido(pedido["id"]))["estado"] == "confirmado"
    await sincronizar(a.almacen, c.almacen)
    assert (await c.obtener_pedido(pedido["id"]))["estado"] == "cancelado"
    assert (await c.obtener_producto(pid))["por_devolver"] == 2
    await todos_con_todos(tres)
    for d in tres:
        assert (await d.obtener_producto(pid))["stock"] == 4
    assert await digest(a) == await digest(b) == await digest(c)


async def test_rights_add_up_to_the_stock_after_sales_restocks_cancels_and_transfers(tres: list[Dominio]) -> None:
    a, b, c = tres
    cid, pid = await _catalogo(a, stock=12)
    await a.ceder_derechos("nodo2", pid, 5, 0)
    await a.ceder_derechos("nodo3", pid, 3, 0)
    await todos_con_todos(tres)
    p1 = await b.crear_pedido(_pedido(cid, pid, 4))
    await c.crear_pedido(_pedido(cid, pid, 3))
    await c.ajustar_stock(pid, 6)
    await todos_con_todos(tres)
    await a.cambiar_estado(p1["id"], "cancelado")
    await c.ceder_derechos("nodo1", pid, 2, 0)
    await todos_con_todos(tres)
    for d in tres:
        producto = await d.obtener_producto(pid)
        assert producto["stock"] == 12 + 6 - 3
        assert producto["derechos"] == {"nodo1": 6, "nodo2": 5, "nodo3": 4}
        assert sum(producto["derechos"].values()) == producto["stock"]
        assert await d.almacen.leer(consultas.derechos, [pid]) == {pid: producto["derechos"]}


async def test_two_nodes_waiting_for_the_same_units_never_hand_them_back_and_forth(tres: list[Dominio]) -> None:
    """nodo2 and nodo3 hold one unit each and each waits to sell two: nodo2 goes first and gathers both."""
    a, b, c = tres
    cid, pid = await _catalogo(a, stock=2)
    await a.ceder_derechos("nodo2", pid, 1, 0)
    await a.ceder_derechos("nodo3", pid, 1, 0)
    await todos_con_todos(tres)
    falta = [Falta(pid, "Taza", 2, 1, 2, {})]
    soltar_b, soltar_c = b.esperas.apuntar(falta), c.esperas.apuntar(falta)
    assert b.esperas.reservadas(pid) == 2
    assert await b.ceder_derechos("nodo3", pid, 1, 0) == (0, None)  # nodo2 keeps its unit from nodo3
    assert (await c.ceder_derechos("nodo2", pid, 1, 0))[0] == 1  # and nodo3 gives way to nodo2
    assert await c.ceder_derechos("nodo2", pid, 1, 0) == (0, None)  # nothing left to hand back
    await todos_con_todos(tres)
    soltar_b()
    assert b.esperas.reservadas(pid) == 0
    await b.crear_pedido(_pedido(cid, pid, 2))
    soltar_c()
    await todos_con_todos(tres)
    for d in tres:
        assert (await d.obtener_producto(pid))["derechos"] == {"nodo1": 0, "nodo2": 0, "nodo3": 0}


# --- asking peers, round after round ----------------------------------------------------


class Vecinos:
    """A node's peers in this process, every one linked; ``callados`` never answer."""

    def __init__(self, yo: Dominio, todos: list[Dominio], callados: frozenset[str] = frozenset()) -> None:
        self.yo = yo
        self.pares = {d.nodo_id: d for d in todos if d is not yo}
        self.callados = callados
        self.preguntas: list[str] = []

    def enlazados(self) -> list[str]:
        return sorted(self.pares)

    async def pedir_derechos(self, par: str, producto_id: str, necesita: int, extra: int, plazo: float) -> int | None:
        self.preguntas.append(par)
        if par in self.callados:
            await asyncio.sleep(0)
            return None
        cedente = self.pares[par]
        n, seq = await cedente.ceder_derechos(self.yo.nodo_id, producto_id, necesita, extra)
        if seq is not None:
            await sincronizar(cedente.almacen, self.yo.almacen)
        return n


Enlazar = Callable[..., Vecinos]


@pytest.fixture
async def enlazar(tres: list[Dominio]) -> AsyncIterator[Enlazar]:
    """Give a node of ``tres`` its peers and a wait for rights; its background top-ups end with the test."""
    repartos: list[Reparto] = []

    def enlazar(d: Dominio, espera: float, **kw: Any) -> Vecinos:
        vecinos = Vecinos(d, tres, **kw)
        d.reparto = Reparto(vecinos, len(tres), espera)
        repartos.append(d.reparto)
        return vecinos

    yield enlazar
    for r in repartos:
        await r.cerrar()


async def test_an_order_keeps_asking_while_the_units_are_in_flight_to_a_third_node(
    tres: list[Dominio], enlazar: Enlazar
) -> None:
    a, b, c = tres
    cid, pid = await _catalogo(a, stock=10)
    await todos_con_todos(tres)  # nodo2 sees nodo1 holding all ten…
    await a.ceder_derechos("nodo3", pid, 10, 0)  # …but nodo1 just handed them to nodo3
    await sincronizar(a.almacen, c.almacen)
    vecinos = enlazar(b, espera=10.0)
    await b.crear_pedido(_pedido(cid, pid, 1))
    assert vecinos.preguntas[0] == "nodo1" and "nodo3" in vecinos.preguntas
    assert b.esperas.reservadas(pid) == 0  # the order no longer waits


async def test_a_cluster_out_of_units_refuses_at_once_when_every_peer_answered(
    tres: list[Dominio], enlazar: Enlazar
) -> None:
    a, b, _ = tres
    cid, pid = await _catalogo(a, stock=2)
    await a.crear_pedido(_pedido(cid, pid, 2))
    await todos_con_todos(tres)
    vecinos = enlazar(b, espera=2.0)
    with pytest.raises(StockInsuficiente) as e:
        await b.crear_pedido(_pedido(cid, pid, 1))
    assert e.value.detalle["motivo"] == "agotado"
    assert vecinos.preguntas == ["nodo1", "nodo3"]  # one round, not two seconds of them


async def test_a_node_cut_off_from_the_holder_asks_until_the_wait_runs_out(
    tres: list[Dominio], enlazar: Enlazar
) -> None:
    a, b, _ = tres
    cid, pid = await _catalogo(a, stock=5)
    await todos_con_todos(tres)
    vecinos = enlazar(b, espera=0.5, callados=frozenset({"nodo1"}))
    with pytest.raises(StockInsuficiente) as e:
        await b.crear_pedido(_pedido(cid, pid, 1))
    assert e.value.detalle["motivo"] == "sin_derechos"
    assert vecinos.preguntas.count("nodo1") > 1
    assert b.esperas.reservadas(pid) == 0


async def test_of_two_nodes_waiting_for_the_last_units_one_gets_them(tres: list[Dominio], enlazar: Enlazar) -> None:
    """Concurrent orders on nodo2 and nodo3, each holding half of what both want: one is served."""
    a, b, c = tres
    cid, pid = await _catalogo(a, stock=2)
    await a.ceder_derechos("nodo2", pid, 1, 0)
    await a.ceder_derechos("nodo3", pid, 1, 0)
    await todos_con_todos(tres)
    for d in (b, c):
        enlazar(d, espera=1.0)
    hechos = await asyncio.gather(*(d.crear_pedido(_pedido(cid, pid, 2)) for d in (b, c)), return_exceptions=True)
    servidos = [h for h in hechos if not isinstance(h, BaseException)]
    assert len(servidos) == 1, hechos
    assert all(isinstance(h, StockInsuficiente) for h in hechos if h not in servidos), hechos
