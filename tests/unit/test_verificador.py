"""The checker on doctored histories and photos: each invariant, broken alone, is named."""

from __future__ import annotations

import copy
from typing import Any

from servidor.dominio.ids import id_de_clave
from sync.cambios import Cambio
from sync.reglas import contexto_texto
from tests.caos.carga import FALLIDA, INCIERTA, OK, Intento, Operacion
from tests.caos.foto import Foto
from tests.caos.verificador import Entrada, Informe, verificar
from tests.caos.vigia import Lectura

P = "producto-1"
CLIENTE = "cliente-1"


def crear(n: int, nodo: str, resultado: str, pedido: str | None, cantidad: int = 1) -> Operacion:
    datos = {"cliente_id": CLIENTE, "items": [{"producto_id": P, "cantidad": cantidad}]}
    return Operacion(n, 0, nodo, "crear_pedido", datos, 0.0, 0.0, resultado, pedido_id=pedido)


def con_clave(tipo: str, clave: str, datos: dict[str, Any], *intentos: tuple[str, str, bool]) -> Operacion:
    """A keyed create and its attempts (node, outcome, answered as a replay)."""
    op = Operacion(0, 0, intentos[0][0], tipo, datos, 0.0, clave=clave)
    for nodo, resultado, repetida in intentos:
        op.intentos.append(Intento(nodo, 0.0, 0.0, resultado, "", repetida))
    op.concluir()
    return op


def pedido_con_clave(clave: str, *intentos: tuple[str, str, bool], cantidad: int = 1) -> Operacion:
    datos = {"cliente_id": CLIENTE, "items": [{"producto_id": P, "cantidad": cantidad}]}
    op = con_clave("crear_pedido", clave, datos, *intentos)
    if op.resultado == OK:
        op.pedido_id = op.respuesta_id = id_de_clave("pedido", clave)
    return op


def reponer(n: int, resultado: str, cantidad: int) -> Operacion:
    return Operacion(n, 0, "nodo1", "reponer", {"producto_id": P, "cantidad": cantidad}, 0.0, 0.0, resultado)


def pedido(nodo: str, cantidad: int = 1, estado: str = "pendiente", **kw: Any) -> dict[str, Any]:
    return {
        "estado": estado,
        "eliminado_en": None,
        "eliminado": False,
        "visible": True,
        "creado": True,
        "devuelto": False,
        "cliente_id": CLIENTE,
        "nodo_origen": nodo,
        "items": [(P, cantidad)],
    } | kw


def estado(origen: str, seq: int, hlc: int, clave: str, valor: str, visto: dict[str, int] | None = None) -> Cambio:
    return Cambio(origen, seq, hlc, "pedido", clave, "estado", valor, contexto_texto(visto or {}))


def foto(nodo: str, pedidos: dict[str, dict[str, Any]], stock: int, cambios: list[Cambio] | None = None) -> Foto:
    cambios = (
        cambios
        if cambios is not None
        else [estado("nodo1", i + 1, 100 + i, pid, p["estado"]) for i, (pid, p) in enumerate(sorted(pedidos.items()))]
    )
    listados = [pid for pid, p in sorted(pedidos.items()) if not p["eliminado"]]
    return Foto(nodo, "d" * 64, {"nodo1": 9}, copy.deepcopy(pedidos), {P: stock}, [], cambios, "d" * 64, listados)


def veredicto(historia: list[Operacion], fotos: list[Foto], **kw: Any) -> Informe:
    return verificar(Entrada(historia, fotos, {P: 10}, convergencia_s=kw.pop("convergencia_s", 0.5), **kw))


def invariantes(informe: Informe) -> set[str]:
    return {v.invariante for v in informe.violaciones}


def detalles(informe: Informe) -> str:
    return "\n".join(v.detalle for v in informe.violaciones)


def test_a_clean_run_has_no_violation_and_counts_recovered_and_never_read_creations() -> None:
    historia = [
        crear(0, "nodo1", OK, "a", 2),
        crear(1, "nodo2", INCIERTA, None, 3),  # happened: found in the state
        crear(2, "nodo2", INCIERTA, None, 1),  # did not happen: never read
        crear(3, "nodo1", FALLIDA, None, 1),
        reponer(4, OK, 4),
        reponer(5, INCIERTA, 5),
    ]
    pedidos = {"a": pedido("nodo1", 2), "b": pedido("nodo2", 3)}
    informe = veredicto(historia, [foto("nodo1", pedidos, 9), foto("nodo2", pedidos, 9)])
    assert informe.valido, informe.tabla()
    assert (informe.reconocidos, informe.perdidos, informe.recuperados, informe.nunca_leidos) == (1, 0, 1, 1)


def test_an_acknowledged_order_missing_on_one_node_is_lost() -> None:
    informe = veredicto([crear(0, "nodo1", OK, "a")], [foto("nodo1", {"a": pedido("nodo1")}, 9), foto("nodo2", {}, 9)])
    assert informe.perdidos == 1
    assert "pedidos" in invariantes(informe)


def test_an_order_listed_twice_or_one_creation_stored_twice_is_duplicated() -> None:
    listado = foto("nodo1", {"a": pedido("nodo1")}, 9)
    listado.lectura_api = ["a", "a"]
    assert veredicto([crear(0, "nodo1", OK, "a")], [listado]).duplicados == 1
    dos_copias = foto("nodo1", {"a": pedido("nodo1"), "b": pedido("nodo1")}, 8)
    informe = veredicto([crear(0, "nodo1", OK, "a")], [dos_copias])
    assert informe.duplicados == 1 and "pedidos" in invariantes(informe)


def test_an_order_that_only_a_refused_creation_could_have_made_is_a_violation() -> None:
    informe = veredicto([crear(0, "nodo1", FALLIDA, None)], [foto("nodo1", {"x": pedido("nodo1")}, 9)])
    assert any("no operation could have made" in v.detalle for v in informe.violaciones)


def test_an_order_deleted_without_any_deletion_is_a_violation() -> None:
    borrado = pedido("nodo1", estado="cancelado", eliminado_en="cancelado", eliminado=True, devuelto=True)
    informe = veredicto([crear(0, "nodo1", OK, "a")], [foto("nodo1", {"a": borrado}, 10)])
    assert invariantes(informe) == {"pedidos"}
    assert any("no deletion" in v.detalle for v in informe.violaciones)


def test_an_order_is_hidden_exactly_when_no_later_estado_outranks_its_delete_and_listed_when_shown() -> None:
    historia = [crear(0, "nodo1", OK, "a"), Operacion(1, 0, "nodo1", "eliminar_pedido", {}, 0.0, 0.0, OK, "", "a")]
    # Deleted while pending (so cancelled), shipped concurrently elsewhere: the shipment keeps it visible.
    enviado = pedido("nodo1", estado="enviado", eliminado_en="cancelado")
    cambios = [estado("nodo1", 1, 100, "a", "pendiente"), estado("nodo2", 1, 101, "a", "enviado", {"nodo1": 1})]
    assert veredicto(historia, [foto("nodo1", {"a": enviado}, 9, cambios)]).valido

    escondido = foto("nodo1", {"a": enviado | {"eliminado": True}}, 9, cambios)
    assert any("is hidden" in v.detalle for v in veredicto(historia, [escondido]).violaciones)

    sin_listar = foto("nodo1", {"a": enviado}, 9, cambios)
    sin_listar.lectura_api = []
    assert any("omits visible ones ['a']" in v.detalle for v in veredicto(historia, [sin_listar]).violaciones)


def test_stock_outside_what_the_restocks_allow_and_negative_stock_are_violations() -> None:
    historia = [reponer(0, OK, 4), reponer(1, INCIERTA, 5)]
    assert veredicto(historia, [foto("nodo1", {}, 14)]).valido
    assert veredicto(historia, [foto("nodo1", {}, 19)]).valido
    aplicado_dos_veces = veredicto(historia, [foto("nodo1", {}, 18 + 5)])
    assert "stock" in invariantes(aplicado_dos_veces)
    vendido_de_mas = veredicto([crear(0, "nodo1", OK, "a", 12)], [foto("nodo1", {"a": pedido("nodo1", 12)}, -2)])
    assert [v.detalle for v in vendido_de_mas.violaciones] == ["nodo1: product producto-1 has negative stock -2"]
    visto = reponer(0, OK, 1)
    visto.stock_visto = -1
    informe = veredicto([visto], [foto("nodo1", {}, 11)])
    assert any("answered operation 0 with negative stock -1" in v.detalle for v in informe.violaciones)


def test_units_of_a_cancelled_order_count_as_returned_only_once_devuelto_and_wait_apart_until_then() -> None:
    historia = [crear(0, "nodo1", OK, "a", 3)]
    devuelto = pedido("nodo1", 3, estado="cancelado", devuelto=True)
    assert veredicto(historia, [foto("nodo1", {"a": devuelto}, 10)]).valido

    pendiente = pedido("nodo1", 3, estado="cancelado")
    aparte = foto("nodo1", {"a": pendiente}, 7)
    aparte.por_devolver = {P: 3}
    assert veredicto(historia, [aparte]).valido

    devuelto_antes = foto("nodo1", {"a": pendiente}, 10)
    devuelto_antes.por_devolver = {P: 3}
    assert "stock" in invariantes(veredicto(historia, [devuelto_antes]))
    sin_apartar = foto("nodo1", {"a": pendiente}, 7)
    informe = veredicto(historia, [sin_apartar])
    assert "nodo1: product producto-1 has por_devolver 0, expected 3" in detalles(informe)


def test_a_shipped_order_is_never_returned_nor_are_its_units_credited() -> None:
    historia = [crear(0, "nodo1", OK, "a", 3)]
    cambios = [estado("nodo1", 1, 100, "a", "pendiente"), estado("nodo1", 2, 101, "a", "enviado")]
    enviado = pedido("nodo1", 3, estado="enviado")
    assert veredicto(historia, [foto("nodo1", {"a": enviado}, 7, cambios)]).valido

    marcado = veredicto(historia, [foto("nodo1", {"a": enviado | {"devuelto": True}}, 7, cambios)])
    assert invariantes(marcado) == {"envio"}
    assert "order a is 'enviado', yet its units were returned" in detalles(marcado)

    abonado = veredicto(historia, [foto("nodo1", {"a": enviado}, 10, cambios)])
    assert invariantes(abonado) == {"stock", "envio"}
    assert "3 unit(s) more than allowed with its 1 shipped order(s) counted as sold" in detalles(abonado)


def test_estado_is_the_most_advanced_value_written() -> None:
    cambios = [
        estado("nodo1", 1, 100, "a", "pendiente"),
        estado("nodo1", 2, 200, "a", "cancelado"),
        estado("nodo2", 1, 150, "a", "enviado", {"nodo1": 1}),
    ]
    pedidos = {"a": pedido("nodo1", estado="cancelado")}
    informe = veredicto([crear(0, "nodo1", OK, "a")], [foto("nodo1", pedidos, 10, cambios)])
    assert "order a is 'cancelado', yet a write gave it 'enviado'" in detalles(informe)


def test_nodes_that_disagree_on_an_estado_or_hold_different_digests_are_violations() -> None:
    uno = foto("nodo1", {"a": pedido("nodo1", estado="cancelado", devuelto=True)}, 10)
    dos = foto("nodo2", {"a": pedido("nodo1", estado="confirmado")}, 9)
    dos.digest = "e" * 64
    informe = veredicto([crear(0, "nodo1", OK, "a")], [uno, dos])
    assert {"estado", "convergencia"} <= invariantes(informe)


def _choque(ganador: str, perdedor: str) -> dict[str, Any]:
    return {"entidad": "pedido", "pedido_id": "a", "campo": "estado", "ganador": ganador, "perdedor": perdedor}


def test_every_concurrent_pair_of_estado_writes_must_be_recorded_and_every_record_must_be_one() -> None:
    # nodo1 creates and confirms; nodo2, having seen only the creation, cancels: confirm and cancel are concurrent.
    cambios = [
        estado("nodo1", 1, 100, "a", "pendiente"),
        estado("nodo1", 2, 200, "a", "confirmado"),
        estado("nodo2", 1, 201, "a", "cancelado", {"nodo1": 1}),
    ]
    pedidos = {"a": pedido("nodo1", estado="cancelado", devuelto=True)}
    historia = [crear(0, "nodo1", OK, "a")]
    informe = veredicto(historia, [foto("nodo1", pedidos, 10, cambios)])
    assert informe.choques == 1 and "clash on order a between ['200:nodo1', '201:nodo2'] not recorded" in detalles(
        informe
    )

    registrado = foto("nodo1", pedidos, 10, cambios)
    registrado.conflictos = [_choque("201:nodo2", "200:nodo1")]
    assert veredicto(historia, [registrado]).valido
    # Which of the pair is named winner is the merge rule's business, not the checker's.
    registrado.conflictos = [_choque("200:nodo1", "201:nodo2")]
    assert veredicto(historia, [registrado]).valido

    # nodo2 had seen the confirmation: its cancel came after it, no clash.
    despues = cambios[:2] + [estado("nodo2", 1, 300, "a", "cancelado", {"nodo1": 2})]
    assert veredicto(historia, [foto("nodo1", pedidos, 10, despues)]).valido
    inventado = foto("nodo1", pedidos, 10, despues)
    inventado.conflictos = [_choque("300:nodo2", "200:nodo1")]
    assert "is no concurrent pair" in detalles(veredicto(historia, [inventado]))


def test_conflictos_must_be_the_same_on_every_node() -> None:
    cambios = [
        estado("nodo1", 1, 100, "a", "pendiente"),
        estado("nodo1", 2, 200, "a", "confirmado"),
        estado("nodo2", 1, 201, "a", "cancelado", {"nodo1": 1}),
    ]
    pedidos = {"a": pedido("nodo1", estado="cancelado", devuelto=True)}
    uno, dos = foto("nodo1", pedidos, 10, cambios), foto("nodo2", pedidos, 10, cambios)
    uno.conflictos = [_choque("201:nodo2", "200:nodo1") | {"valor_ganador": "cancelado"}]
    dos.conflictos = [_choque("201:nodo2", "200:nodo1") | {"valor_ganador": "confirmado"}]
    informe = veredicto([crear(0, "nodo1", OK, "a")], [uno, dos])
    assert invariantes(informe) == {"estado"}
    assert "conflictos differ between nodes" in detalles(informe)


def _leida(nodo: str, estado: str, inicio: float, fin: float) -> Lectura:
    return Lectura(nodo, "a", estado, inicio, fin)


def test_a_node_that_shows_an_order_less_advanced_than_it_showed_it_before_goes_back() -> None:
    pedidos = {"a": pedido("nodo1", estado="enviado")}
    cambios = [estado("nodo1", 1, 100, "a", "pendiente"), estado("nodo1", 2, 101, "a", "enviado")]
    fotos = [foto("nodo1", pedidos, 9, cambios)]
    historia = [crear(0, "nodo1", OK, "a")]
    adelante = [_leida("nodo1", "pendiente", 0.0, 0.1), _leida("nodo1", "enviado", 0.2, 0.3)]
    # Another node may lag behind, and reads that overlap in time are not ordered.
    otros = [_leida("nodo2", "pendiente", 0.4, 0.5), _leida("nodo1", "pendiente", 0.25, 0.35)]
    informe = veredicto(historia, fotos, lecturas=adelante + otros)
    assert informe.valido and informe.lecturas == 4

    atras = veredicto(historia, fotos, lecturas=adelante + [_leida("nodo1", "confirmado", 0.4, 0.5)])
    assert invariantes(atras) == {"retroceso"} and atras.retrocesos == 1
    assert "nodo1 showed order a as 'confirmado' at 0.400 s, after showing it 'enviado' at 0.300 s" in detalles(atras)


def test_an_acknowledged_keyed_create_is_on_every_node_once_under_the_id_its_key_gives() -> None:
    clave = "k1"
    pid = id_de_clave("pedido", clave)
    # Sent to nodo1, lost in a timeout; sent again to nodo2, which made it too: the merge kept one.
    op = pedido_con_clave(clave, ("nodo1", INCIERTA, False), ("nodo2", OK, False), cantidad=2)
    fotos = [foto(n, {pid: pedido("nodo2", 2)}, 8) for n in ("nodo1", "nodo2")]
    informe = veredicto([op], fotos)
    assert informe.valido, informe.tabla()
    assert (informe.reconocidos, informe.con_clave, informe.reenviadas) == (1, 1, 1)

    vendido_dos_veces = veredicto([op], [foto("nodo1", {pid: pedido("nodo2", 2)}, 6)])
    assert invariantes(vendido_dos_veces) == {"stock"}

    otro_id = copy.copy(op)
    otro_id.respuesta_id = "x"
    assert "was answered x, not" in detalles(veredicto([otro_id], fotos))

    primera_repetida = pedido_con_clave(clave, ("nodo1", OK, True), cantidad=2)
    assert "first sending of key k1 was answered as a replay" in detalles(veredicto([primera_repetida], fotos))


def test_a_keyed_create_refused_everywhere_made_nothing() -> None:
    clave = "k2"
    pid = id_de_clave("pedido", clave)
    # Uncertain, then refused by a healed cluster: it never happened.
    op = pedido_con_clave(clave, ("nodo1", INCIERTA, False))
    op.intentos.append(Intento("nodo2", 0.0, 0.0, FALLIDA, "ConnectError", curado=True))
    op.concluir()
    assert op.resultado == INCIERTA, "a node that could not be reached proves nothing"
    op.intentos.append(Intento("nodo2", 0.0, 0.0, FALLIDA, "409 STOCK_INSUFICIENTE", curado=True, http=409))
    op.concluir()
    assert op.resultado == FALLIDA
    assert veredicto([op], [foto("nodo1", {}, 10)]).valido
    informe = veredicto([op], [foto("nodo1", {pid: pedido("nodo1")}, 9)])
    assert invariantes(informe) == {"idempotencia"}
    assert f"pedido {pid} exists, but every create of key k2 failed" in detalles(informe)
    # Refused during the run, after a timeout, is no proof: it may have happened.
    incierto = pedido_con_clave(clave, ("nodo1", INCIERTA, False), ("nodo2", FALLIDA, False))
    assert incierto.resultado == INCIERTA
    informe = veredicto([incierto], [foto("nodo1", {pid: pedido("nodo1")}, 9)])
    assert informe.valido and informe.recuperados == 1


def test_keyed_clients_products_and_restocks_exist_once_and_nothing_else_does() -> None:
    cliente = con_clave("crear_cliente", "c1", {"nombre": "Ana", "email": "a@example.com"}, ("nodo1", OK, False))
    jarra = {"nombre": "Jarra", "precio": "3.25", "stock": 4}
    producto = con_clave("crear_producto", "p1", jarra, ("nodo2", OK, False))
    restock = con_clave("reponer", "r1", {"producto_id": P, "cantidad": 5}, ("nodo1", OK, False))
    nuevo, stock_nuevo = id_de_clave("producto", "p1"), id_de_clave("producto-stock", "p1")
    ajuste = id_de_clave("ajuste", "r1")
    historia = [cliente, producto, restock]

    def completa() -> Foto:
        f = foto("nodo1", {}, 15)
        f.stock[nuevo] = 4
        f.clientes = {"inicial", id_de_clave("cliente", "c1")}
        f.ajustes = {
            ajuste: {"producto_id": P, "cantidad": 5, "firme": True},
            stock_nuevo: {"producto_id": nuevo, "cantidad": 4, "firme": True},
        }
        return f

    assert veredicto(historia, [completa()], clientes_iniciales=["inicial"]).valido

    sin_cliente = completa()
    sin_cliente.clientes = {"inicial"}
    informe = veredicto(historia, [sin_cliente], clientes_iniciales=["inicial"])
    assert "cliente " + id_de_clave("cliente", "c1") + " of acknowledged key c1 is missing" in detalles(informe)

    intruso = completa()
    intruso.clientes.add("otro")
    informe = veredicto(historia, [intruso], clientes_iniciales=["inicial"])
    assert "cliente otro is one no operation could have made" in detalles(informe)

    mal_movido = completa()
    mal_movido.ajustes[ajuste]["cantidad"] = 10
    mal_movido.stock[P] = 20
    informe = veredicto(historia, [mal_movido], clientes_iniciales=["inicial"])
    assert invariantes(informe) == {"idempotencia"} and "moves 10 of producto-1, asked 5" in detalles(informe)


def test_units_a_keyed_restock_adds_wait_apart_until_it_is_settled() -> None:
    restock = con_clave("reponer", "r1", {"producto_id": P, "cantidad": 5}, ("nodo1", OK, False))
    f = foto("nodo1", {}, 10)
    f.ajustes = {id_de_clave("ajuste", "r1"): {"producto_id": P, "cantidad": 5, "firme": False}}
    f.por_confirmar = {P: 5}
    assert veredicto([restock], [f]).valido
    f.stock[P] = 15
    assert "stock" in invariantes(veredicto([restock], [f]))


def test_a_log_that_rebuilds_to_another_state_is_a_violation() -> None:
    f = foto("nodo1", {}, 10)
    f.digest_reconstruido = "f" * 64
    assert invariantes(veredicto([], [f])) == {"registro"}


def test_no_convergence_within_the_deadline_is_a_violation() -> None:
    assert invariantes(veredicto([], [foto("nodo1", {}, 10)], convergencia_s=None)) == {"convergencia"}


def test_a_node_slightly_ahead_must_never_be_refused_and_one_far_ahead_must_be() -> None:
    f = [foto("nodo1", {}, 10)]
    assert veredicto([], f, reloj="leve", rechazos_deriva=0).valido
    assert invariantes(veredicto([], f, reloj="leve", rechazos_deriva=2)) == {"reloj"}
    assert veredicto([], f, reloj="lejano", rechazos_deriva=3).valido
    assert invariantes(veredicto([], f, reloj="lejano", rechazos_deriva=0)) == {"reloj"}
