"""The checker on doctored histories and photos: each invariant, broken alone, is named."""

from __future__ import annotations

import copy
from typing import Any

from sync.cambios import Cambio
from tests.caos.carga import FALLIDA, INCIERTA, OK, Operacion
from tests.caos.foto import Foto
from tests.caos.verificador import Entrada, Informe, verificar

P = "producto-1"
CLIENTE = "cliente-1"
BASE = "100:nodo1"


def crear(n: int, nodo: str, resultado: str, pedido: str | None, cantidad: int = 1) -> Operacion:
    datos = {"cliente_id": CLIENTE, "items": [{"producto_id": P, "cantidad": cantidad}]}
    return Operacion(n, 0, nodo, "crear_pedido", datos, 0.0, 0.0, resultado, pedido_id=pedido)


def reponer(n: int, resultado: str, cantidad: int) -> Operacion:
    return Operacion(n, 0, "nodo1", "reponer", {"producto_id": P, "cantidad": cantidad}, 0.0, 0.0, resultado)


def pedido(nodo: str, cantidad: int = 1, estado: str = "pendiente") -> dict[str, Any]:
    return {
        "estado": estado,
        "eliminado": False,
        "visible": True,
        "creado": True,
        "cliente_id": CLIENTE,
        "nodo_origen": nodo,
        "items": [(P, cantidad)],
    }


def estado(origen: str, seq: int, hlc: int, clave: str, valor: str, base: str | None) -> Cambio:
    return Cambio(origen, seq, hlc, "pedido", clave, "estado", valor, base)


def foto(nodo: str, pedidos: dict[str, dict[str, Any]], stock: int, cambios: list[Cambio] | None = None) -> Foto:
    cambios = (
        cambios
        if cambios is not None
        else [
            estado("nodo1", i + 1, 100 + i, pid, p["estado"], None)
            for i, (pid, p) in enumerate(sorted(pedidos.items()))
        ]
    )
    return Foto(nodo, "d" * 64, {"nodo1": 9}, copy.deepcopy(pedidos), {P: stock}, [], cambios, "d" * 64, list(pedidos))


def veredicto(historia: list[Operacion], fotos: list[Foto], **kw: Any) -> Informe:
    return verificar(Entrada(historia, fotos, {P: 10}, convergencia_s=kw.pop("convergencia_s", 0.5), **kw))


def invariantes(informe: Informe) -> set[str]:
    return {v.invariante for v in informe.violaciones}


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
    borrado = pedido("nodo1") | {"eliminado": True, "visible": False}
    informe = veredicto([crear(0, "nodo1", OK, "a")], [foto("nodo1", {"a": borrado}, 9)])
    assert any("no deletion" in v.detalle for v in informe.violaciones)


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


def test_nodes_that_disagree_on_an_estado_or_hold_different_digests_are_violations() -> None:
    uno = foto("nodo1", {"a": pedido("nodo1", estado="cancelado")}, 10)
    dos = foto("nodo2", {"a": pedido("nodo1", estado="confirmado")}, 9)
    dos.digest = "e" * 64
    informe = veredicto([crear(0, "nodo1", OK, "a")], [uno, dos])
    assert {"estado", "convergencia"} <= invariantes(informe)


def test_every_clash_must_be_recorded_and_every_record_must_be_a_clash() -> None:
    cambios = [
        estado("nodo1", 1, 100, "a", "pendiente", None),
        estado("nodo1", 2, 200, "a", "confirmado", BASE),
        estado("nodo2", 1, 201, "a", "cancelado", BASE),
    ]
    pedidos = {"a": pedido("nodo1", estado="cancelado")}
    sin_registro = foto("nodo1", pedidos, 10, cambios)
    informe = veredicto([crear(0, "nodo1", OK, "a")], [sin_registro])
    assert informe.choques == 1 and any("not recorded" in v.detalle for v in informe.violaciones)

    registrado = foto("nodo1", pedidos, 10, cambios)
    registrado.conflictos = [{"pedido_id": "a", "ganador": "201:nodo2", "perdedor": "200:nodo1"}]
    assert veredicto([crear(0, "nodo1", OK, "a")], [registrado]).valido
    # Which of the pair is named winner is the merge rule's business, not the checker's.
    registrado.conflictos = [{"pedido_id": "a", "ganador": "200:nodo1", "perdedor": "201:nodo2"}]
    assert veredicto([crear(0, "nodo1", OK, "a")], [registrado]).valido

    inventado = foto("nodo1", pedidos, 10, cambios[:2] + [estado("nodo2", 1, 300, "a", "cancelado", "200:nodo1")])
    inventado.conflictos = [{"pedido_id": "a", "ganador": "300:nodo2", "perdedor": "200:nodo1"}]
    informe = veredicto([crear(0, "nodo1", OK, "a")], [inventado])
    assert any("no concurrent pair" in v.detalle for v in informe.violaciones)


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
