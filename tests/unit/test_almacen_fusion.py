"""The store's merge: two or three stores exchanging changes by hand."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from servidor.almacen import Almacen, Cadena, ResultadoFusion, consultas
from servidor.dominio import Dominio
from sync.cambios import Cambio, desde_json
from sync.errores import CadenaRota, CambioInvalido, DerivaReloj, OrigenDesconocido, OrigenPropio
from sync.reloj import reloj_de_pared, sello
from tests.bd import BACKENDS, base_nueva
from tests.replicas import digest, sincronizar, todos_con_todos, tres_dominios


@pytest.fixture(params=BACKENDS)
async def tres(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[list[Dominio]]:
    async with tres_dominios(request.param, tmp_path) as dominios:
        yield dominios


async def _catalogo(d: Dominio, stock: int = 10) -> tuple[str, str]:
    c = await d.crear_cliente({"nombre": "Ana", "email": "ana@example.com"})
    p = await d.crear_producto({"nombre": "Taza", "precio": "4.50", "stock": stock})
    return c["id"], p["id"]


async def test_local_writes_are_logged_with_gap_free_seq_and_one_increasing_stamp_per_write(
    tres: list[Dominio],
) -> None:
    d = tres[0]
    cid, _ = await _catalogo(d)
    filas = await d.almacen.leer(consultas.cambios_de, "nodo1")
    assert [f.seq for f in filas] == list(range(1, len(filas) + 1))
    # Two writes (a client, a product): each one's changes share a stamp, the second's is later.
    por_clave = {f.clave: f.hlc for f in filas if f.entidad != "stock"}
    assert all(f.hlc == por_clave[cid] for f in filas if f.clave == cid)
    assert all(a.hlc <= b.hlc for a, b in zip(filas, filas[1:], strict=False))
    assert len({f.hlc for f in filas}) == 2


async def test_a_replica_that_merges_everything_holds_the_same_state(tres: list[Dominio]) -> None:
    a, b, _ = tres
    cid, pid = await _catalogo(a)
    pedido = await a.crear_pedido({"cliente_id": cid, "items": [{"producto_id": pid, "cantidad": 3}]})
    await sincronizar(a.almacen, b.almacen)
    assert await digest(a) == await digest(b)
    assert (await b.obtener_pedido(pedido["id"]))["total"] == pedido["total"]
    assert (await b.obtener_producto(pid))["stock"] == 7


async def test_applying_the_same_changes_twice_or_shuffled_changes_nothing(tres: list[Dominio]) -> None:
    a, b, c = tres
    cid, pid = await _catalogo(a)
    pedido = await a.crear_pedido({"cliente_id": cid, "items": [{"producto_id": pid, "cantidad": 2}]})
    await a.cambiar_estado(pedido["id"], "cancelado")
    todo = await a.almacen.cambios_para({}, 10_000)
    await b.almacen.fusionar(todo)
    resultado = await b.almacen.fusionar(todo)
    assert resultado.aplicados == [] and resultado.duplicados == len(todo)
    barajado = list(todo)
    random.Random(7).shuffle(barajado)
    for i in range(0, len(barajado), 3):
        await c.almacen.fusionar(barajado[i : i + 3])
    await sincronizar(a.almacen, c.almacen)
    assert await digest(a) == await digest(b) == await digest(c)


async def test_a_change_past_a_gap_waits_until_the_gap_is_filled(tres: list[Dominio]) -> None:
    a, b, _ = tres
    await _catalogo(a)
    todo = await a.almacen.cambios_para({}, 10_000)
    primero, resto = todo[0], todo[1:]
    r = await b.almacen.fusionar(resto)
    assert r.aplicados == [] and r.pendientes == len(resto)
    await b.almacen.fusionar([primero])
    await sincronizar(a.almacen, b.almacen)
    assert await digest(a) == await digest(b)


async def test_a_batch_with_a_change_stamped_too_far_ahead_is_refused_whole(tres: list[Dominio]) -> None:
    a, b, _ = tres
    await _catalogo(a)
    todo = await a.almacen.cambios_para({}, 10_000)
    futuro = sello(reloj_de_pared() + 60_000)
    ultimo = todo[-1]
    malo = Cambio(ultimo.origen, ultimo.seq + 1, futuro, "cliente", "x", "nombre", "Eva")
    antes = await digest(b)
    with pytest.raises(DerivaReloj):
        await b.almacen.fusionar([*todo, malo])
    assert await digest(b) == antes
    assert b.almacen.vector == {}


async def test_concurrent_estado_changes_resolve_to_the_same_winner_and_the_clash_is_recorded(
    tres: list[Dominio],
) -> None:
    a, b, c = tres
    cid, pid = await _catalogo(a)
    pedido = await a.crear_pedido({"cliente_id": cid, "items": [{"producto_id": pid, "cantidad": 4}]})
    await todos_con_todos(tres)
    await a.cambiar_estado(pedido["id"], "confirmado")
    await b.cambiar_estado(pedido["id"], "cancelado")
    await todos_con_todos(tres)
    estados = {(await d.obtener_pedido(pedido["id"]))["estado"] for d in tres}
    assert len(estados) == 1
    ganador = estados.pop()
    # nodo2's write came later in wall-clock order, so it carries the higher stamp.
    assert ganador == "cancelado"
    stocks = {(await d.obtener_producto(pid))["stock"] for d in tres}
    assert stocks == {10}
    for d in tres:
        conflictos = await d.conflictos()
        assert len(conflictos) == 1
        assert conflictos[0]["pedido_id"] == pedido["id"]
        assert conflictos[0]["ganador"].endswith(":nodo2")
    assert await digest(a) == await digest(b) == await digest(c)


async def test_sequential_estado_changes_on_different_nodes_are_not_a_clash(tres: list[Dominio]) -> None:
    a, b, _ = tres
    cid, pid = await _catalogo(a)
    pedido = await a.crear_pedido({"cliente_id": cid, "items": [{"producto_id": pid, "cantidad": 1}]})
    await a.cambiar_estado(pedido["id"], "confirmado")
    await todos_con_todos(tres)
    await b.cambiar_estado(pedido["id"], "enviado")
    await todos_con_todos(tres)
    assert await a.conflictos() == []


async def test_an_update_concurrent_with_a_delete_does_not_bring_the_client_back(tres: list[Dominio]) -> None:
    a, b, _ = tres
    cid, _ = await _catalogo(a)
    await todos_con_todos(tres)
    await a.eliminar_cliente(cid)
    await b.actualizar_cliente(cid, {"nombre": "Ana María"})
    await todos_con_todos(tres)
    for d in tres:
        assert cid not in {c["id"] for c in await d.listar_clientes()}
    assert await digest(a) == await digest(b)


async def test_stock_sold_on_two_nodes_adds_up_on_every_node(tres: list[Dominio]) -> None:
    a, b, c = tres
    cid, pid = await _catalogo(a, stock=10)
    assert (await a.ceder_derechos("nodo2", pid, 2, 0))[0] == 2
    await todos_con_todos(tres)
    await a.crear_pedido({"cliente_id": cid, "items": [{"producto_id": pid, "cantidad": 3}]})
    await b.crear_pedido({"cliente_id": cid, "items": [{"producto_id": pid, "cantidad": 2}]})
    await c.ajustar_stock(pid, 5)
    await todos_con_todos(tres)
    assert {(await d.obtener_producto(pid))["stock"] for d in tres} == {10}


async def test_a_cancellation_that_arrives_before_the_order_it_cancels_still_returns_its_units(
    tres: list[Dominio],
) -> None:
    a, b, c = tres
    cid, pid = await _catalogo(a, stock=10)
    await todos_con_todos(tres)
    pedido = await a.crear_pedido({"cliente_id": cid, "items": [{"producto_id": pid, "cantidad": 4}]})
    await sincronizar(a.almacen, b.almacen)
    await b.cambiar_estado(pedido["id"], "cancelado")
    cancelacion = await b.almacen.cambios_para(c.almacen.vector | {"nodo1": 10**9}, 100)
    assert [x.campo for x in cancelacion] == ["estado"]
    await c.almacen.fusionar(cancelacion)  # nodo3 hears of the cancel before the order itself
    await sincronizar(a.almacen, c.almacen)
    producto = await c.obtener_producto(pid)
    assert (producto["stock"], producto["por_devolver"]) == (6, 4)  # apart until every node has the cancel
    assert await digest(b) == await digest(c)
    await todos_con_todos(tres)
    for d in tres:
        producto = await d.obtener_producto(pid)
        assert (producto["stock"], producto["por_devolver"], producto["derechos"]) == (10, 0, {"nodo1": 10})
    assert await digest(a) == await digest(b) == await digest(c)


async def test_a_write_whose_caller_is_cancelled_still_commits_before_the_next(tres: list[Dominio]) -> None:
    """A cancelled request must not let a merge queued behind its write turn ``seq`` back."""
    a, _, _ = tres
    await a.crear_cliente({"nombre": "Ana", "email": "ana@example.com"})
    escritura = asyncio.create_task(a.crear_cliente({"nombre": "Bea", "email": "bea@example.com"}))
    while not a.almacen.escribiendo:
        await asyncio.sleep(0)
    escritura.cancel()
    ajeno = Cambio("nodo9", 1, sello(reloj_de_pared()), "cliente", "c9", "nombre", "Eva")
    await a.almacen.fusionar([ajeno])
    with contextlib.suppress(asyncio.CancelledError):
        await escritura
    await a.crear_cliente({"nombre": "Carla", "email": "carla@example.com"})
    propios = [f.seq for f in await a.almacen.leer(consultas.cambios_de, "nodo1")]
    assert propios == list(range(1, len(propios) + 1))
    assert a.almacen.vector["nodo1"] == propios[-1] and a.almacen.vector["nodo9"] == 1


async def test_a_batch_for_a_peer_says_exactly_what_the_log_holds(tres: list[Dominio]) -> None:
    """The link's batch is built from stored columns: it must decode to the same changes, in the same order."""
    a, b, _ = tres
    cid, pid = await _catalogo(a)
    await a.actualizar_cliente(cid, {"direccion": 'Calle "Ñandú" 7\\n\t€', "telefono": None})
    pedido = await a.crear_pedido({"cliente_id": cid, "items": [{"producto_id": pid, "cantidad": 2}]})
    await a.cambiar_estado(pedido["id"], "confirmado")  # a change with a base
    await sincronizar(a.almacen, b.almacen)
    await b.crear_cliente({"nombre": "Bea", "email": "bea@example.com"})
    tiene = {"nodo1": 3}
    for limite in (1, 5, 1000):
        lote = await b.almacen.lote_para(tiene, limite)
        cambios = await b.almacen.cambios_para(tiene, limite)
        assert lote.claves == [(c.origen, c.seq) for c in cambios]
        assert [json.loads(t) for t in lote.textos] == [c.a_json() for c in cambios]
        assert [desde_json(json.loads(t)) for t in lote.textos] == cambios
    assert any(c.base is not None for c in await b.almacen.cambios_para(tiene, 1000))
    assert not await b.almacen.lote_para(b.almacen.vector, 1000)


async def test_only_a_transaction_with_a_local_write_waits_for_the_disk(tmp_path: Path) -> None:
    """SQLite: merges commit without an fsync of their own (peers hold them); local writes with one."""
    a = await Almacen.abrir(f"sqlite+aiosqlite:///{tmp_path / 'a.db'}", "nodo1")
    try:
        dominio = Dominio(a)

        def sincronia(conn: Any) -> int:
            return int(conn.exec_driver_sql("PRAGMA synchronous").scalar_one())

        await dominio.crear_cliente({"nombre": "Ana", "email": "ana@example.com"})
        assert await a.motores.transaccion(sincronia) == 2  # FULL
        ajeno = Cambio("nodo2", 1, sello(reloj_de_pared()), "cliente", "c9", "nombre", "Eva")
        assert len((await a.fusionar([ajeno])).aplicados) == 1
        assert await a.motores.transaccion(sincronia, duradera=False) == 1  # NORMAL, as the merge left it
        await dominio.crear_cliente({"nombre": "Bea", "email": "bea@example.com"})
        assert await a.motores.transaccion(sincronia) == 2
    finally:
        await a.cerrar()


async def test_a_stopped_writer_task_leaves_no_write_waiting_forever(tmp_path: Path) -> None:
    a = await Almacen.abrir(f"sqlite+aiosqlite:///{tmp_path / 'a.db'}", "nodo1")
    try:
        dominio = Dominio(a)
        await dominio.crear_cliente({"nombre": "Ana", "email": "ana@example.com"})
        escritor = a._escritor
        assert escritor is not None
        escritor.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await escritor
        bea = await asyncio.wait_for(dominio.crear_cliente({"nombre": "Bea", "email": "bea@example.com"}), 10)
        assert (await dominio.obtener_cliente(bea["id"]))["nombre"] == "Bea"
        assert [f.seq for f in await a.leer(consultas.cambios_de, "nodo1")] == list(range(1, a.vector["nodo1"] + 1))
    finally:
        await a.cerrar()


@contextlib.contextmanager
def _sentencias_del_escritor(almacen: Almacen) -> Iterator[list[str]]:
    """The statements the store's writer runs inside the block (SQLite)."""
    vistas: list[str] = []
    motor = almacen.motores.escritor
    assert motor is not None

    def anotar(_conn: Any, _cursor: Any, sql: str, *_: Any) -> None:
        vistas.append(sql)

    event.listen(motor, "before_cursor_execute", anotar)
    try:
        yield vistas
    finally:
        event.remove(motor, "before_cursor_execute", anotar)


async def test_writes_queued_together_share_a_transaction_and_one_that_fails_fails_alone(tmp_path: Path) -> None:
    a = await Almacen.abrir(f"sqlite+aiosqlite:///{tmp_path / 'a.db'}", "nodo1")
    try:
        dominio = Dominio(a)
        await dominio.crear_cliente({"nombre": "Ana", "email": "ana@example.com"})

        def a_medias(tx: Any) -> None:
            # writes a row, then fails: its savepoint must take the row back
            tx.sql.ejecutar("INSERT INTO clientes (id, nombre, eliminado) VALUES ('fantasma', 'x', 0)")
            raise RuntimeError("fails halfway")

        with _sentencias_del_escritor(a) as vistas:
            hechos = await asyncio.gather(
                dominio.crear_cliente({"nombre": "Bea", "email": "bea@example.com"}),
                a.escribir(a_medias),
                dominio.crear_cliente({"nombre": "Eva", "email": "eva@example.com"}),
                return_exceptions=True,
            )
        assert isinstance(hechos[1], RuntimeError)
        assert [h["nombre"] for h in (hechos[0], hechos[2])] == ["Bea", "Eva"]  # type: ignore[index]
        assert sum(s.startswith("BEGIN") for s in vistas) == 1  # one transaction for the three
        assert sum(s.startswith("SAVEPOINT") for s in vistas) == 3
        assert sum(s.startswith("ROLLBACK TO SAVEPOINT") for s in vistas) == 1
        todos = await a.leer(consultas.clientes)
        assert sorted(c["nombre"] for c in todos) == ["Ana", "Bea", "Eva"]
        assert await a.leer(consultas.cliente, "fantasma") is None
        propios = [f.seq for f in await a.leer(consultas.cambios_de, "nodo1")]
        assert propios == list(range(1, len(propios) + 1)) and a.vector["nodo1"] == propios[-1]
    finally:
        await a.cerrar()


async def test_a_batch_the_vector_already_covers_runs_no_statement(tmp_path: Path) -> None:
    a = await Almacen.abrir(f"sqlite+aiosqlite:///{tmp_path / 'a.db'}", "nodo1")
    try:
        ajenos = [Cambio("nodo2", n, sello(reloj_de_pared()), "cliente", f"c{n}", "nombre", "Eva") for n in (1, 2)]
        assert len((await a.fusionar(ajenos)).aplicados) == 2
        with _sentencias_del_escritor(a) as vistas:
            hecho = await a.fusionar(ajenos)
        assert (hecho.aplicados, hecho.duplicados, vistas) == ([], 2, [])
    finally:
        await a.cerrar()


# --- the batches of one peer link: applied in order, or not at all -------------------------

AHORA_MS = 1_700_000_000_000  # the wall clock of the store in these tests, standing still
PLAZO_S = 10.0


@pytest.fixture(params=BACKENDS)
async def quieto(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Almacen]:
    """A store whose wall clock stands at ``AHORA_MS``."""
    async with base_nueva(request.param, tmp_path) as url:
        almacen = await Almacen.abrir(url, "nodo1", ahora=lambda: AHORA_MS)
        try:
            yield almacen
        finally:
            await almacen.cerrar()


def _cliente(origen: str, seq: int, adelanto_ms: int = 0, campo: str = "nombre") -> Cambio:
    return Cambio(origen, seq, sello(AHORA_MS + adelanto_ms, seq), "cliente", f"c-{origen}", campo, "Eva")


async def _hasta(condicion: Callable[[], bool]) -> None:
    async with asyncio.timeout(PLAZO_S):
        while not condicion():
            await asyncio.sleep(0)


@pytest.mark.parametrize("juntos", [True, False], ids=["queued-together", "one-after-another"])
@pytest.mark.parametrize(
    ("malo", "error"),
    [
        pytest.param(_cliente("nodo2", 2, adelanto_ms=60_000), DerivaReloj, id="stamped-too-far-ahead"),
        pytest.param(_cliente("nodo2", 2, campo="apodo"), CambioInvalido, id="malformed"),
    ],
)
async def test_once_a_batch_of_a_link_is_refused_no_later_batch_of_that_link_is_applied(
    quieto: Almacen, juntos: bool, malo: Cambio, error: type[Exception]
) -> None:
    """The third batch needs the refused second across origins (say, nodo3 cancels nodo2's order): the vector,
    gap-free per origin, would let it in; only the link's order keeps it out."""
    cadena = Cadena()
    lotes = [[_cliente("nodo2", 1)], [malo], [_cliente("nodo3", 1)]]
    hechos: list[ResultadoFusion | BaseException] = []
    if juntos:  # all three wait for the writer at once, as a link's batches do: one transaction, a savepoint each
        hechos = await asyncio.gather(*(quieto.fusionar(x, cadena=cadena) for x in lotes), return_exceptions=True)
    else:
        for lote in lotes:
            try:
                hechos.append(await quieto.fusionar(lote, cadena=cadena))
            except Exception as e:  # noqa: BLE001 - what each batch got is the point
                hechos.append(e)
    assert isinstance(hechos[0], ResultadoFusion) and hechos[0].aplicados == lotes[0]
    assert isinstance(hechos[1], error)
    assert isinstance(hechos[2], CadenaRota)
    assert quieto.vector == {"nodo2": 1}
    assert await quieto.leer(consultas.cambios_de, "nodo3") == []
    with pytest.raises(CadenaRota):  # nor any batch after, even one with nothing new in it
        await quieto.fusionar(lotes[0], cadena=cadena)


async def test_a_refused_batch_does_not_hold_back_the_batches_of_another_link(quieto: Almacen) -> None:
    de_uno, de_otro = Cadena(), Cadena()
    hechos = await asyncio.gather(
        quieto.fusionar([_cliente("nodo2", 1)], cadena=de_uno),
        quieto.fusionar([_cliente("nodo2", 2, adelanto_ms=60_000)], cadena=de_uno),
        quieto.fusionar([_cliente("nodo3", 1)], cadena=de_otro),
        quieto.fusionar([_cliente("nodo4", 1)]),  # no chain, as every caller but a link
        quieto.fusionar([_cliente("nodo5", 1)], cadena=de_uno),
        return_exceptions=True,
    )
    esperados = [ResultadoFusion, DerivaReloj, ResultadoFusion, ResultadoFusion, CadenaRota]
    assert [type(h) for h in hechos] == esperados
    assert quieto.vector == {"nodo2": 1, "nodo3": 1, "nodo4": 1}
    assert len((await quieto.fusionar([_cliente("nodo3", 2)], cadena=de_otro)).aplicados) == 1


async def test_a_batch_dropped_before_it_ran_holds_back_the_later_batches_of_its_link(tmp_path: Path) -> None:
    """SQLite, whose writer runs on its own thread, so that a write can hold it while batches queue up."""
    a = await Almacen.abrir(f"sqlite+aiosqlite:///{tmp_path / 'a.db'}", "nodo1", ahora=lambda: AHORA_MS)
    try:
        suelta = threading.Event()
        ocupado = asyncio.ensure_future(a.escribir(lambda tx: suelta.wait(PLAZO_S)))
        await _hasta(lambda: a.escribiendo)
        cadena = Cadena()
        fusiones = [
            asyncio.ensure_future(a.fusionar([_cliente(o, 1)], cadena=cadena)) for o in ("nodo2", "nodo3", "nodo4")
        ]
        await _hasta(lambda: len(a._cola) == 3)
        fusiones[1].cancel()  # its link went away: the writer drops it when it forms the next group
        suelta.set()
        await ocupado
        hechos = await asyncio.gather(*fusiones, return_exceptions=True)
        assert isinstance(hechos[0], ResultadoFusion)  # before the dropped one: a later break does not touch it
        assert isinstance(hechos[1], asyncio.CancelledError)
        assert isinstance(hechos[2], CadenaRota)
        assert a.vector == {"nodo2": 1}
    finally:
        await a.cerrar()


# --- who may write: members only, and never this node's own origin ----------------------------


@pytest.fixture(params=BACKENDS)
async def de_tres(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Almacen]:
    """nodo1's store in a cluster of nodo1, nodo2 and nodo3, its wall clock at ``AHORA_MS``."""
    async with base_nueva(request.param, tmp_path) as url:
        almacen = await Almacen.abrir(
            url, "nodo1", ahora=lambda: AHORA_MS, miembros=frozenset({"nodo1", "nodo2", "nodo3"})
        )
        try:
            yield almacen
        finally:
            await almacen.cerrar()


@pytest.mark.parametrize(
    ("intruso", "error"),
    [
        pytest.param(_cliente("nodo7", 1), OrigenDesconocido, id="not-a-member"),
        pytest.param(_cliente("nodo1", 1), OrigenPropio, id="this-nodes-own-origin"),
    ],
)
async def test_a_batch_with_a_change_of_an_origin_that_may_not_write_here_is_refused_whole(
    de_tres: Almacen, intruso: Cambio, error: type[Exception]
) -> None:
    cadena = Cadena()
    with pytest.raises(error):
        await de_tres.fusionar([_cliente("nodo2", 1), intruso, _cliente("nodo3", 1)], cadena=cadena)
    assert de_tres.vector == {}
    assert await de_tres.leer(consultas.clientes) == []
    with pytest.raises(CadenaRota):  # the link's later batches wait for it to be dialled again
        await de_tres.fusionar([_cliente("nodo2", 1)], cadena=cadena)
    assert len((await de_tres.fusionar([_cliente("nodo2", 1), _cliente("nodo3", 1)])).aplicados) == 2


async def test_a_change_of_this_nodes_own_origin_is_refused_even_as_a_duplicate(de_tres: Almacen) -> None:
    propio = await Dominio(de_tres).crear_cliente({"nombre": "Ana", "email": "ana@example.com"})
    vuelto = (await de_tres.cambios_para({}, 1))[0]
    assert vuelto.clave == propio["id"]
    antes = de_tres.vector
    with pytest.raises(OrigenPropio):
        await de_tres.fusionar([vuelto])
    with pytest.raises(OrigenPropio):  # one ahead of its own seq would have moved it, and reused a number
        await de_tres.fusionar([Cambio("nodo1", antes["nodo1"] + 1, vuelto.hlc, "cliente", "c9", "nombre", "Eva")])
    assert de_tres.vector == antes
