"""The peer protocol without sockets: sessions take messages and answer messages."""

from __future__ import annotations

from typing import Any

import pytest

from sync import protocolo as p
from sync.cambios import Cambio
from sync.enlace import _continuacion
from sync.errores import CambioInvalido

AHORA = 1_800_000_000_000


def _par(secreto_cliente: str = "s3creto", nodo: str = "nodo2", destino: str = "nodo1") -> p.SesionCliente:
    return p.SesionCliente("pedidos", secreto_cliente, nodo, destino, nonce="ab" * 16)


def _servidor(reto: str = "cd" * 16) -> p.SesionServidor:
    return p.SesionServidor("pedidos", "s3creto", "nodo1", frozenset({"nodo2", "nodo3"}), reto=reto)


def _hola(cliente: p.SesionCliente, servidor: p.SesionServidor, vector: dict[str, int] | None = None) -> dict[str, Any]:
    """The dialer's hello in answer to the server's challenge."""
    return cliente.hola(servidor.desafio(), vector or {})


def _cambio(seq: int, origen: str = "nodo1") -> Cambio:
    return Cambio(origen, seq, (AHORA << 16) + seq, "cliente", f"c{seq}", "nombre", "Ana")


def test_a_peer_that_proves_the_secret_is_welcomed_and_can_check_the_welcome() -> None:
    cliente, servidor = _par(), _servidor()
    assert servidor.desafio() == {"tipo": "reto", "version": p.VERSION, "nonce": "cd" * 16}
    bienvenida = servidor.hola(_hola(cliente, servidor, {"nodo3": 4}), {"nodo1": 9})
    assert bienvenida["tipo"] == "bienvenida" and bienvenida["vector"] == {"nodo1": 9}
    assert servidor.par == "nodo2" and servidor.cursor == {"nodo3": 4}
    assert cliente.recibir(bienvenida) is None and cliente.autenticado


@pytest.mark.parametrize(
    ("alterar", "codigo"),
    [
        (lambda m: m.update(prueba="0" * 64), "SECRETO"),
        (lambda m: m.update(version=99), "VERSION"),
        (lambda m: m.update(cluster="otro"), "CLUSTER"),
        (lambda m: m.update(nodo="intruso"), "NODO_DESCONOCIDO"),
        (lambda m: m.update(nonce=None), "MALFORMADO"),
        (lambda m: m.update(nonce="ab" * 8), "MALFORMADO"),
        (lambda m: m.update(reto=None), "MALFORMADO"),
        (lambda m: m.update(reto="ef" * 16), "HOLA_REPETIDO"),  # answers some other link's challenge
        (lambda m: m.update(prueba="\ud800"), "SECRETO"),
        (lambda m: m.update(vector={"nodo3": -1}), "MALFORMADO"),
        (lambda m: m.update(tipo="ack"), "PROTOCOLO"),
    ],
)
def test_a_bad_hello_is_refused_with_a_reason(alterar: Any, codigo: str) -> None:
    servidor = _servidor()
    msg = _hola(_par(), servidor)
    alterar(msg)
    with pytest.raises(p.Rechazo) as e:
        servidor.hola(msg, {})
    assert e.value.codigo == codigo


def test_a_hello_signed_with_another_secret_is_refused() -> None:
    servidor = _servidor()
    with pytest.raises(p.Rechazo) as e:
        servidor.hola(_hola(_par("otro-secreto"), servidor), {})
    assert e.value.codigo == "SECRETO"


def test_entries_of_nodes_that_are_not_members_are_ignored_in_a_hello_and_in_an_ack() -> None:
    """However many: 1,006 invented origins in a vector once had every hello refused."""
    inventados = {f"inventado-{n}": 1 for n in range(1006)}
    cliente, servidor = _par(), _servidor()
    bienvenida = servidor.hola(_hola(cliente, servidor, {"nodo3": 4, **inventados}), {"nodo1": 9, "viejo": 2})
    assert servidor.acuse == {"nodo3": 4}
    # what the server's own log holds of a non-member is never sent: counted as sent already
    assert servidor.cursor == {"nodo3": 4, "viejo": 2}
    assert cliente.recibir(bienvenida | {"vector": {"nodo1": 9, **inventados}}) is None
    servidor.recibir(cliente.ack({"nodo1": 3, **inventados}))
    assert servidor.acuse == {"nodo1": 3}


def test_a_replayed_hello_is_refused_by_every_later_link_with_nothing_remembered() -> None:
    """Each link's challenge is fresh and random: a recording answers none but its own,
    so a restarted server (a new session, no memory) refuses it as well as a running one."""
    hola = _hola(_par(), _servidor())
    _servidor().hola(dict(hola), {})
    for otro in (_servidor(reto="ef" * 16), p.SesionServidor("pedidos", "s3creto", "nodo1", frozenset({"nodo2"}))):
        with pytest.raises(p.Rechazo) as e:
            otro.hola(dict(hola), {})
        assert e.value.codigo == "HOLA_REPETIDO"


def test_a_challenge_is_spent_by_the_first_hello_good_or_bad() -> None:
    servidor = _servidor()
    hola = _hola(_par(), servidor)
    with pytest.raises(p.Rechazo):
        servidor.hola(hola | {"prueba": "0" * 64}, {})
    with pytest.raises(p.Rechazo) as e:
        servidor.hola(hola, {})
    assert e.value.codigo == "HOLA_REPETIDO"


def test_every_new_link_is_challenged_afresh() -> None:
    retos = {p.SesionServidor("pedidos", "s3creto", "nodo1", frozenset()).desafio()["nonce"] for _ in range(100)}
    assert len(retos) == 100 and all(len(r) == 32 for r in retos)


def test_a_hello_meant_for_another_node_is_refused() -> None:
    servidor = _servidor()
    hola = _par(destino="nodo3").hola(servidor.desafio(), {})
    with pytest.raises(p.Rechazo) as e:
        servidor.hola(hola, {})
    assert e.value.codigo == "SECRETO"


@pytest.mark.parametrize(
    ("reto", "codigo"),
    [
        ({"tipo": "reto", "version": p.VERSION + 1, "nonce": "cd" * 16}, "VERSION"),
        ({"tipo": "reto", "version": p.VERSION, "nonce": "cd"}, "MALFORMADO"),
        ({"tipo": "bienvenida", "nodo": "nodo1", "vector": {}, "prueba": "f" * 64}, "PROTOCOLO"),
        ({"tipo": "error", "codigo": "VERSION", "mensaje": "no"}, "VERSION"),
    ],
)
def test_the_dialer_answers_only_a_well_formed_challenge_of_its_own_version(reto: dict[str, Any], codigo: str) -> None:
    with pytest.raises(p.Rechazo) as e:
        _par().hola(reto, {})
    assert e.value.codigo == codigo


def test_a_welcome_is_checked_against_the_dialers_own_nonce() -> None:
    """A welcome recorded from another link (another dialer's nonce) does not prove the server to this one."""
    servidor = _servidor()
    bienvenida = servidor.hola(_hola(_par(), servidor), {})
    otro = p.SesionCliente("pedidos", "s3creto", "nodo2", "nodo1", nonce="ef" * 16)
    otro.hola(_servidor().desafio(), {})  # the same challenge, even
    with pytest.raises(p.Rechazo) as e:
        otro.recibir(bienvenida)
    assert e.value.codigo == "SECRETO" and not otro.autenticado


def test_a_welcome_that_does_not_prove_the_secret_is_refused() -> None:
    cliente = _par()
    _hola(cliente, _servidor())
    with pytest.raises(p.Rechazo) as e:
        cliente.recibir({"tipo": "bienvenida", "nodo": "nodo1", "vector": {}, "prueba": "f" * 64})
    assert e.value.codigo == "SECRETO" and not cliente.autenticado


def test_changes_before_the_welcome_are_refused() -> None:
    with pytest.raises(p.Rechazo):
        _par().recibir({"tipo": "cambios", "cambios": [_cambio(1).a_json()]})


def _enlazados() -> tuple[p.SesionCliente, p.SesionServidor]:
    cliente, servidor = _par(), _servidor()
    cliente.recibir(servidor.hola(_hola(cliente, servidor), {}))
    return cliente, servidor


def test_a_batch_moves_the_server_cursor_and_the_client_gets_the_changes() -> None:
    cliente, servidor = _enlazados()
    msg = servidor.enviar(p.lote([_cambio(1), _cambio(2)]))
    assert servidor.cursor == {"nodo1": 2} and servidor.en_vuelo == 1
    assert msg == p.codificar({"tipo": "cambios", "cambios": [_cambio(1).a_json(), _cambio(2).a_json()]})
    assert cliente.recibir(p.decodificar(msg)) == [_cambio(1), _cambio(2)]


def test_a_malformed_change_in_a_batch_refuses_the_batch() -> None:
    cliente, _ = _enlazados()
    malo = _cambio(1).a_json() | {"campo": "contrasena"}
    with pytest.raises(CambioInvalido):
        cliente.recibir({"tipo": "cambios", "cambios": [_cambio(2).a_json(), malo]})


def test_the_server_keeps_at_most_a_window_of_batches_in_flight() -> None:
    cliente, servidor = _enlazados()
    for n in range(p.VENTANA_LOTES):
        assert servidor.puede_enviar()
        servidor.enviar(p.lote([_cambio(n + 1)]))
    assert not servidor.puede_enviar()
    servidor.recibir(cliente.ack({"nodo1": 1}))
    assert servidor.puede_enviar() and servidor.acuse == {"nodo1": 1}


def test_an_ack_with_more_than_was_sent_moves_the_cursor_past_it() -> None:
    cliente, servidor = _enlazados()
    servidor.recibir(cliente.ack({"nodo3": 40}))
    assert servidor.cursor["nodo3"] == 40


def test_an_oversized_or_non_json_message_is_refused() -> None:
    with pytest.raises(p.Rechazo) as e:
        p.decodificar("x" * (p.MAX_MENSAJE + 1))
    assert e.value.codigo == "MENSAJE_GRANDE"
    with pytest.raises(p.Rechazo):
        p.decodificar("{no es json")
    with pytest.raises(p.Rechazo):
        p.decodificar("[1, 2]")


def test_a_batch_is_cut_to_stay_under_the_byte_limit() -> None:
    grande = [Cambio("nodo1", n, n, "cliente", f"c{n}", "direccion", "ñ" * 2000) for n in range(1, 501)]
    lote = p.lote(grande)
    assert 0 < len(lote.claves) == len(lote.textos) < 500
    mensaje = p.SesionServidor("c", "s", "nodo1", frozenset()).enviar(lote)
    assert len(mensaje.encode()) <= p.MAX_LOTE_BYTES + 4096


def test_recent_changes_are_sent_from_memory_only_when_they_are_all_the_peer_lacks() -> None:
    recientes = [_cambio(4), _cambio(5), _cambio(1, "nodo3")]
    assert _continuacion(recientes, {"nodo1": 3}, {"nodo1": 5, "nodo3": 1}, "nodo2") == [
        _cambio(4),
        _cambio(5),
        _cambio(1, "nodo3"),
    ]
    # the peer lacks seq 3 too, which memory no longer holds: read the log instead
    assert _continuacion(recientes, {"nodo1": 2}, {"nodo1": 5, "nodo3": 1}, "nodo2") is None
    # a commit not yet seen in memory
    assert _continuacion(recientes, {"nodo1": 3}, {"nodo1": 6, "nodo3": 1}, "nodo2") is None
    # the peer's own changes are never sent back
    assert _continuacion([_cambio(1, "nodo2")], {}, {"nodo2": 1}, "nodo2") == []


def test_a_request_for_rights_is_checked_and_its_answer_waits_for_the_grant_to_go_out() -> None:
    cliente, servidor = _enlazados()
    peticion = servidor.recibir(cliente.pedir(7, "p1", 3, 2))
    assert peticion == p.Peticion(7, "p1", 3, 2)
    assert not servidor.enviado(5)  # the grant, nodo1's change 5, has not been sent
    servidor.enviar(p.lote([_cambio(s) for s in range(1, 6)]))
    assert servidor.enviado(5) and servidor.enviado(None)
    respuesta = peticion.respuesta(3, 5)
    assert respuesta == {"tipo": "derechos", "id": 7, "unidades": 3, "seq": 5}
    assert cliente.recibir(respuesta) is None


@pytest.mark.parametrize(
    "malo",
    [
        {"id": -1},
        {"id": "7"},
        {"producto": "no es id"},
        {"necesita": -3},
        {"necesita": True},
        {"extra": 10**13},
    ],
)
def test_a_malformed_request_for_rights_is_refused(malo: dict[str, Any]) -> None:
    cliente, servidor = _enlazados()
    with pytest.raises(p.Rechazo) as e:
        servidor.recibir({**cliente.pedir(1, "p1", 1, 0), **malo})
    assert e.value.codigo == "MALFORMADO"


@pytest.mark.parametrize(
    "malo",
    [
        {"unidades": -1},
        {"unidades": 2, "seq": None},  # units granted by no change
        {"unidades": 0, "seq": 4},
        {"seq": 0},
        {"id": None},
    ],
)
def test_a_malformed_answer_about_rights_is_refused(malo: dict[str, Any]) -> None:
    cliente, _ = _enlazados()
    with pytest.raises(p.Rechazo) as e:
        cliente.recibir({"tipo": "derechos", "id": 1, "unidades": 2, "seq": 4, **malo})
    assert e.value.codigo == "MALFORMADO"
