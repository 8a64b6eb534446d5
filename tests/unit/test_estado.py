"""An order's estado on three stores: it only moves forward, concurrent pairs are conflicts everywhere."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from servidor.almacen import consultas
from servidor.dominio import Dominio
from servidor.errores import StockInsuficiente, TransicionInvalida
from sync import reglas
from tests.bd import BACKENDS
from tests.replicas import digest, sincronizar, todos_con_todos, tres_dominios

# --- the register, as pure functions ------------------------------------------------


def test_progress_orders_states_and_a_shipment_outranks_a_cancellation() -> None:
    assert reglas.PROGRESO == ("pendiente", "confirmado", "cancelado", "enviado", "entregado")
    cancelar = reglas.orden("pedido", "estado", "cancelado", (1, "a"))
    assert reglas.orden("pedido", "estado", "confirmado", (99, "z")) < cancelar
    assert reglas.orden("pedido", "estado", "enviado", (0, "a")) > cancelar
    # Plain fields are ordered by their stamp alone.
    assert reglas.orden("pedido", "total", "9.00", (2, "a")) > reglas.orden("pedido", "total", "1.00", (1, "z"))


@given(
    st.lists(
        st.tuples(st.sampled_from(reglas.PROGRESO), st.integers(0, 20), st.sampled_from(["a", "b", "c"])),
        min_size=1,
        max_size=5,
        unique_by=lambda w: (w[1], w[2]),
    )
)
def test_every_arrival_order_picks_the_most_advanced_state(escrituras: list[tuple[str, int, str]]) -> None:
    ganadores = set()
    for orden in itertools.islice(itertools.permutations(escrituras), 120):
        actual: tuple[int, int, str] | None = None
        valor = None
        for estado, hlc, origen in orden:
            nuevo = reglas.orden("pedido", "estado", estado, (hlc, origen))
            if reglas.gana(nuevo, actual):
                actual, valor = nuevo, estado
        ganadores.add(valor)
    assert ganadores == {max((e for e, _, _ in escrituras), key=reglas.RANGO.__getitem__)}


def test_concurrency_is_decided_by_what_each_writer_had_seen() -> None:
    creacion: tuple[str, int, dict[str, int]] = ("a", 5, {})
    confirma_b = ("b", 3, {"a": 5})  # saw the creation
    cancela_c = ("c", 9, {"a": 5})  # saw the creation, not b's confirmation
    envia_b = ("b", 4, {"a": 5})  # b's next write: after its own confirmation
    assert not reglas.concurrentes(creacion, confirma_b)
    assert reglas.concurrentes(confirma_b, cancela_c)
    assert reglas.concurrentes(envia_b, cancela_c)
    assert not reglas.concurrentes(confirma_b, envia_b)
    assert not reglas.concurrentes(("c", 10, {"a": 5, "b": 4}), envia_b)


def test_a_context_reads_back_what_was_written_and_refuses_anything_else() -> None:
    visto = {"nodo2": 7, "nodo1": 12}
    assert reglas.contexto(reglas.contexto_texto(visto)) == visto
    assert reglas.contexto("") == {}
    for malo in ("nodo1", "nodo1:x", "nodo2:1,nodo1:2", "nodo1:1,nodo1:2", ":3", "nodo1:١"):
        with pytest.raises(ValueError):
            reglas.contexto(malo)


def test_a_delete_hides_an_order_only_while_it_went_no_further_than_the_delete_saw() -> None:
    assert reglas.oculto("cancelado", "cancelado")
    assert reglas.oculto("entregado", "entregado")
    assert not reglas.oculto("enviado", "cancelado")  # shipped elsewhere, concurrently
    assert not reglas.oculto("entregado", "cancelado")
    assert not reglas.oculto("pendiente", None)


def test_credits_never_come_back_once_given_and_wait_while_a_cancellation_can_lose() -> None:
    assert reglas.abono(-3, "a", "a", "cancelado", devuelto=False) == (0, 3, 0)
    assert reglas.abono(-3, "a", "a", "cancelado", devuelto=True) == (3, 0, 0)
    assert reglas.abono(-3, "a", "a", "enviado", devuelto=True) == (0, 0, 0)
    assert reglas.abono(-3, "b", "a", "enviado") == (3, 0, 0)  # a losing creation's units, at once
    assert reglas.abono(5, "a", "a") == (0, 0, 5)
    assert reglas.abono(5, "a", "a", firme="a") == (5, 0, 0)
    assert reglas.abono(5, "b", "a", firme="a") == (0, 0, 0)  # the duplicate of a keyed restock
    # Settled by a node that knew every creation: a node that has heard only of its own still
    # credits nothing to it, so nothing credited is ever taken back.
    assert reglas.abono(5, "b", "b", firme="a") == (0, 0, 0)


# --- three stores ----------------------------------------------------------------------


@pytest.fixture(params=BACKENDS)
async def tres(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[list[Dominio]]:
    async with tres_dominios(request.param, tmp_path) as dominios:
        yield dominios


async def _pedido_en_todos(tres: list[Dominio], stock: int = 10, cantidad: int = 4) -> tuple[str, str, str]:
    a = tres[0]
    cliente = await a.crear_cliente({"nombre": "Ana", "email": "ana@example.com"})
    producto = await a.crear_producto({"nombre": "Taza", "precio": "4.50", "stock": stock})
    pedido = await a.crear_pedido(
        {"cliente_id": cliente["id"], "items": [{"producto_id": producto["id"], "cantidad": cantidad}]}
    )
    await todos_con_todos(tres)
    return cliente["id"], producto["id"], pedido["id"]


async def _estado(d: Dominio, id: str) -> str:
    fila = await d.almacen.leer(consultas.pedidos_por_ids, [id], eliminados=True)
    return str(fila[id]["estado"])


async def _conflictos(d: Dominio) -> list[tuple[Any, ...]]:
    return [(c["ganador"], c["perdedor"], c["valor_ganador"], c["valor_perdedor"]) for c in await d.conflictos()]


# Each node's own transitions, made from the same starting point without hearing of each other.
CAMINOS = {
    "entrega": ["confirmado", "enviado", "entregado"],
    "envio": ["confirmado", "enviado"],
    "confirma": ["confirmado"],
    "cancela": ["cancelado"],
    "confirma_y_cancela": ["confirmado", "cancelado"],
}


@pytest.mark.parametrize(
    "caminos",
    [list(p) for p in itertools.combinations(CAMINOS, 2)] + [["entrega", "confirma", "cancela"]],
    ids=lambda c: "+".join(c),
)
async def test_concurrent_transitions_converge_to_the_most_advanced_state_in_every_arrival_order(
    tres: list[Dominio], caminos: list[str]
) -> None:
    _, pid, id = await _pedido_en_todos(tres)
    for d, camino in zip(tres, caminos, strict=False):
        for estado in CAMINOS[camino]:
            await d.cambiar_estado(id, estado)
    esperado = max((CAMINOS[c][-1] for c in caminos), key=reglas.RANGO.__getitem__)
    # Every store hears the others in every order, and never shows the order going back.
    for orden in itertools.permutations(range(3)):
        vistos = {d.nodo_id: reglas.RANGO[await _estado(d, id)] for d in tres}
        for i, j in itertools.pairwise(orden):
            await sincronizar(tres[i].almacen, tres[j].almacen)
            for d in tres:
                rango = reglas.RANGO[await _estado(d, id)]
                assert rango >= vistos[d.nodo_id], f"{d.nodo_id} went back"
                vistos[d.nodo_id] = rango
    await todos_con_todos(tres)
    conflictos = await _conflictos(tres[0])
    assert len(conflictos) == sum(len(CAMINOS[a]) * len(CAMINOS[b]) for a, b in itertools.combinations(caminos, 2))
    for d in tres:
        assert await _estado(d, id) == esperado
        assert await _conflictos(d) == conflictos
        producto = await d.obtener_producto(pid)
        vuelve = 4 if esperado == "cancelado" else 0
        assert (producto["stock"], producto["por_devolver"]) == (6 + vuelve, 0)
        assert sum(producto["derechos"].values()) == producto["stock"]
    assert await digest(tres[0]) == await digest(tres[1]) == await digest(tres[2])


async def test_a_delivered_order_never_goes_back_to_a_stale_confirmation(tres: list[Dominio]) -> None:
    a, b, c = tres
    _, pid, id = await _pedido_en_todos(tres)
    for estado in ("confirmado", "enviado", "entregado"):
        await b.cambiar_estado(id, estado)
    await c.cambiar_estado(id, "confirmado")  # c only saw pendiente, a few ms later
    await todos_con_todos(tres)
    for d in tres:
        assert await _estado(d, id) == "entregado"
        with pytest.raises(TransicionInvalida):
            await d.cambiar_estado(id, "cancelado")
    assert {(await d.obtener_producto(pid))["stock"] for d in tres} == {6}
    # The stale confirmation raced each of b's writes: three pairs, the delivery's included.
    pares = {(x[0].split(":")[1], x[1].split(":")[1], x[2], x[3]) for x in await _conflictos(a)}
    assert pares == {
        ("nodo3", "nodo2", '"confirmado"', '"confirmado"'),  # equal ranks: the later stamp wins
        ("nodo2", "nodo3", '"enviado"', '"confirmado"'),
        ("nodo2", "nodo3", '"entregado"', '"confirmado"'),
    }


async def test_a_delivery_beats_a_concurrent_cancellation_and_the_lost_cancel_is_listed(tres: list[Dominio]) -> None:
    a, b, _ = tres
    _, pid, id = await _pedido_en_todos(tres)
    await a.cambiar_estado(id, "confirmado")
    await todos_con_todos(tres)
    await a.cambiar_estado(id, "enviado")
    await a.cambiar_estado(id, "entregado")
    await b.cambiar_estado(id, "cancelado")
    await todos_con_todos(tres)
    for d in tres:
        assert await _estado(d, id) == "entregado"
        producto = await d.obtener_producto(pid)
        assert (producto["stock"], producto["por_devolver"]) == (6, 0)
        perdedores = {x[3] for x in await _conflictos(d)}
        assert '"cancelado"' in perdedores


async def test_an_order_shipped_anywhere_is_never_hidden_by_a_concurrent_delete(tres: list[Dominio]) -> None:
    a, b, c = tres
    _, pid, id = await _pedido_en_todos(tres)
    await a.cambiar_estado(id, "confirmado")
    await todos_con_todos(tres)
    await b.eliminar_pedido(id)  # cancels and hides it on b
    await c.cambiar_estado(id, "enviado")
    assert await b.almacen.leer(consultas.pedido, id) is None
    await todos_con_todos(tres)
    for d in tres:
        pedido = await d.obtener_pedido(id)
        assert pedido["estado"] == "enviado"
        assert (await d.obtener_producto(pid))["stock"] == 6
    # A delete that saw the order delivered hides it for good.
    await c.cambiar_estado(id, "entregado")
    await todos_con_todos(tres)
    await a.eliminar_pedido(id)
    await todos_con_todos(tres)
    assert [await d.almacen.leer(consultas.pedido, id) for d in tres] == [None, None, None]


async def test_a_shipped_order_cannot_be_deleted_until_it_is_delivered(tres: list[Dominio]) -> None:
    a = tres[0]
    _, _, id = await _pedido_en_todos(tres)
    await a.cambiar_estado(id, "confirmado")
    await a.cambiar_estado(id, "enviado")
    with pytest.raises(TransicionInvalida):
        await a.eliminar_pedido(id)
    assert (await a.obtener_pedido(id))["estado"] == "enviado"


async def test_a_retried_transition_answers_the_order_and_writes_nothing(tres: list[Dominio]) -> None:
    a = tres[0]
    _, _, id = await _pedido_en_todos(tres)
    await a.cambiar_estado(id, "confirmado")
    antes = a.almacen.vector
    assert (await a.cambiar_estado(id, "confirmado"))["estado"] == "confirmado"
    with pytest.raises(TransicionInvalida):
        await a.cambiar_estado(id, "pendiente")
    assert a.almacen.vector == antes


async def test_a_cancels_units_are_sold_again_only_once_every_node_has_the_cancellation(tres: list[Dominio]) -> None:
    a, b, c = tres
    cid, pid, id = await _pedido_en_todos(tres, stock=4, cantidad=4)
    await a.cambiar_estado(id, "cancelado")
    await sincronizar(a.almacen, b.almacen)
    nuevo = {"cliente_id": cid, "items": [{"producto_id": pid, "cantidad": 1}]}
    with pytest.raises(StockInsuficiente):
        await a.crear_pedido(nuevo)  # nodo3 has not heard of the cancel: it could still ship the order
    await todos_con_todos(tres)
    for d in tres:
        producto = await d.obtener_producto(pid)
        assert (producto["stock"], producto["por_devolver"], producto["derechos"]) == (4, 0, {"nodo1": 4})
    await a.crear_pedido(nuevo)
    await todos_con_todos(tres)
    # The settle is written once, by whichever node got there first; any later one writes nothing.
    devueltos = [
        cambio
        for d in tres
        for cambio in await d.almacen.leer(consultas.cambios_de, d.nodo_id)
        if cambio.campo == "devuelto"
    ]
    assert len({(x.origen, x.seq) for x in devueltos}) >= 1
    assert await digest(a) == await digest(b) == await digest(c)


async def test_an_order_taken_with_one_key_on_two_cut_off_stores_is_one_order_sold_once(tres: list[Dominio]) -> None:
    a, b, c = tres
    cliente = await a.crear_cliente({"nombre": "Ana", "email": "ana@example.com"})
    producto = await a.crear_producto({"nombre": "Taza", "precio": "4.50", "stock": 0})
    await todos_con_todos(tres)
    await a.ajustar_stock(producto["id"], 10)
    await b.ajustar_stock(producto["id"], 10)
    await todos_con_todos(tres)
    pedido = {"cliente_id": cliente["id"], "items": [{"producto_id": producto["id"], "cantidad": 3}]}
    uno = await a.crear_pedido(pedido, clave="k1")
    otro = await b.crear_pedido(pedido, clave="k1")  # b has not heard of a's
    assert uno["id"] == otro["id"]
    await todos_con_todos(tres)
    for d in tres:
        p = await d.obtener_producto(producto["id"])
        assert (p["stock"], sum(p["derechos"].values())) == (17, 17)
        assert len(await d.listar_pedidos()) == 1
        assert not [x for x in await d.conflictos() if x["campo"] == "huella"]
    again = await c.crear_pedido(pedido, clave="k1")
    assert isinstance(again, dict) and again["id"] == uno["id"]
    assert await digest(a) == await digest(b) == await digest(c)


async def test_a_restock_taken_with_one_key_on_two_cut_off_stores_counts_once_once_settled(
    tres: list[Dominio],
) -> None:
    a, b, c = tres
    producto = await a.crear_producto({"nombre": "Taza", "precio": "4.50", "stock": 0})
    await todos_con_todos(tres)
    await a.ajustar_stock(producto["id"], 5, clave="r1")
    await b.ajustar_stock(producto["id"], 5, clave="r1")
    for d in (a, b):  # each may have taken it alone: nothing sellable yet
        p = await d.obtener_producto(producto["id"])
        assert (p["stock"], p["por_confirmar"]) == (0, 5)
    await sincronizar(a.almacen, c.almacen)  # c hears of a's only
    assert (await c.obtener_producto(producto["id"]))["por_confirmar"] == 5
    await todos_con_todos(tres)
    for d in tres:
        p = await d.obtener_producto(producto["id"])
        assert (p["stock"], p["por_confirmar"], sum(p["derechos"].values())) == (5, 0, 5)
    assert await digest(a) == await digest(b) == await digest(c)
