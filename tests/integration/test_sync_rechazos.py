"""A peer that cannot be trusted is refused with a logged reason, and nothing it sent is applied.

Real node processes on loopback; the rogue peer lives in the test process:
a dialer speaking to a node's ``/sync`` endpoint, or a websockets server the
node dials because the settings route one of its peers there (``via``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import hmac
import json
import sqlite3
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.typing import Origin, Subprotocol

from servidor.cli import MAX_MENSAJE_WS
from sync import protocolo as p
from sync.cambios import Cambio
from sync.reloj import reloj_de_pared, sello
from tests.credenciales import cabecera
from tests.procesos import Cluster, FabricaClusters, ProcesoNodo, esperar

PLAZO = 15.0
SECRETO = "secreto-de-prueba"  # the Cluster's default secret
NOMBRE = "pedidos-test"  # the Cluster's default name
Mensaje = dict[str, Any]
GQL = Subprotocol("graphql-transport-ws")


# --- what a node holds ---------------------------------------------------------


async def obtener(nodo: ProcesoNodo, ruta: str) -> Any:
    async with nodo.cliente() as http:
        r = await http.get(ruta)
        assert r.status_code == 200, r.text
        return r.json()


def cuenta_cambios(nodo: ProcesoNodo) -> int:
    """Rows in the node's change log, read straight from its SQLite file."""
    with contextlib.closing(sqlite3.connect(nodo.database.removeprefix("sqlite+aiosqlite:///"))) as bd:
        return int(bd.execute("SELECT COUNT(*) FROM cambios").fetchone()[0])


async def foto(nodo: ProcesoNodo) -> tuple[dict[str, int], int, list[Any]]:
    return (await obtener(nodo, "/api/health"))["vector"], cuenta_cambios(nodo), await obtener(nodo, "/api/clientes")


async def sigue_sano(nodo: ProcesoNodo) -> None:
    """Ping answers and a normal write still goes through."""
    antes = (await obtener(nodo, "/api/health"))["vector"].get(nodo.id, 0)
    async with nodo.cliente() as http:
        assert (await http.get("/api/health/ping")).status_code == 200
        r = await http.post("/api/clientes", json={"nombre": "Ana", "email": "ana@example.com"})
        assert r.status_code == 201, r.text
    assert (await obtener(nodo, "/api/health"))["vector"][nodo.id] > antes


async def en_registro(nodo: ProcesoNodo, *trozos: str) -> None:
    def aparece() -> bool:
        return any(all(t in linea for t in trozos) for linea in nodo.registro().splitlines())

    await esperar(aparece, PLAZO, que=f"{nodo.id} logs a line with {trozos}")


# --- A. a rogue dialer -----------------------------------------------------------


Respuesta = Callable[[Mensaje], str | bytes]  # what to send, given the node's challenge


def hola(
    cluster: str = NOMBRE,
    secreto: str = SECRETO,
    nodo: str = "nodo2",
    vector: dict[str, int] | None = None,
    **cambiar: Any,
) -> Respuesta:
    """A hello to nodo1 answering its challenge, as nodo2 would sign it unless told otherwise."""

    def responder(reto: Mensaje) -> str:
        msg = p.SesionCliente(cluster, secreto, nodo, "nodo1").hola(reto, vector or {})
        return p.codificar({**msg, **cambiar})

    return responder


async def marcar(
    nodo: ProcesoNodo, *textos: str | bytes | Respuesta, hasta: str | None = None
) -> tuple[list[Mensaje], int | None]:
    """Open a fresh link, take the node's challenge, send ``textos`` (those that are functions
    answer the challenge); what came back after the challenge until the node closed the link
    (or ``hasta`` arrived)."""
    recibidos: list[Mensaje] = []
    async with asyncio.timeout(PLAZO), connect(f"ws://{nodo.host}:{nodo.port}/sync", proxy=None) as ws:
        with contextlib.suppress(ConnectionClosed):
            reto = json.loads(await ws.recv())
            assert reto["tipo"] == "reto", reto
            for texto in textos:
                await ws.send(texto(reto) if callable(texto) else texto)
            async for llegado in ws:
                recibidos.append(json.loads(llegado))
                if recibidos[-1]["tipo"] == hasta:
                    break
    return recibidos, ws.close_code


@pytest.fixture
async def cluster(clusters: FabricaClusters) -> Cluster:
    c = await clusters(2)
    await sigue_sano(c["nodo1"])  # so that "nothing changed" compares a non-empty state
    return c


@pytest.mark.parametrize(
    ("mensaje", "codigo"),
    [
        pytest.param(lambda: hola(secreto="otro-secreto"), "SECRETO", id="wrong-secret"),
        pytest.param(lambda: hola(reto="ab" * 16), "HOLA_REPETIDO", id="answers-another-challenge"),
        pytest.param(lambda: hola(cluster="otro-cluster"), "CLUSTER", id="other-cluster"),
        pytest.param(lambda: hola(version=p.VERSION + 1), "VERSION", id="other-version"),
        pytest.param(lambda: hola(nodo="nodo9"), "NODO_DESCONOCIDO", id="unknown-node"),
        pytest.param(lambda: "{esto no es json", "MALFORMADO", id="garbage"),
        pytest.param(lambda: b"\xff\xfe\x00garbage", "MALFORMADO", id="binary-garbage"),
        pytest.param(lambda: "x" * (p.MAX_MENSAJE + 1), "MENSAJE_GRANDE", id="over-max-mensaje"),
    ],
)
async def test_a_rogue_hello_is_answered_with_an_error_logged_and_changes_nothing(
    cluster: Cluster, mensaje: Callable[[], str | bytes | Respuesta], codigo: str
) -> None:
    uno = cluster["nodo1"]
    antes = await foto(uno)
    recibidos, cierre = await marcar(uno, mensaje())
    assert [(m["tipo"], m.get("codigo")) for m in recibidos] == [("error", codigo)]
    assert cierre == 1008
    await en_registro(uno, "nodo1: refused peer hello", codigo)
    assert await foto(uno) == antes
    await sigue_sano(uno)


async def test_a_hello_replayed_on_a_second_link_is_refused_as_a_repeat(cluster: Cluster) -> None:
    uno = cluster["nodo1"]
    antes = await foto(uno)
    capturados: list[str] = []

    def capturar(reto: Mensaje) -> str:
        capturados.append(str(hola()(reto)))
        return capturados[-1]

    primero, _ = await marcar(uno, capturar, hasta="bienvenida")
    assert primero[0]["tipo"] == "bienvenida"
    segundo, cierre = await marcar(uno, capturados[0])
    assert [(m["tipo"], m.get("codigo")) for m in segundo] == [("error", "HOLA_REPETIDO")]
    assert cierre == 1008
    await en_registro(uno, "nodo1: refused peer hello", "HOLA_REPETIDO")
    assert await foto(uno) == antes
    await sigue_sano(uno)


class Grabadora:
    """A websockets relay standing between a dialer and its peer, keeping every hello it carries."""

    def __init__(self, destino: str) -> None:
        self.destino = destino
        self.holas: list[str] = []

    async def atender(self, ws: ServerConnection) -> None:
        async with connect(self.destino, proxy=None, max_size=None, compression=None) as otro:

            async def ida() -> None:
                async for texto in ws:
                    if isinstance(texto, str) and json.loads(texto)["tipo"] == "hola":
                        self.holas.append(texto)
                    await otro.send(texto)

            async def vuelta() -> None:
                async for texto in otro:
                    await ws.send(texto)

            tareas = [asyncio.ensure_future(ida()), asyncio.ensure_future(vuelta())]
            await asyncio.wait(tareas, return_when=asyncio.FIRST_COMPLETED)
            for t in tareas:
                t.cancel()
            await asyncio.gather(*tareas, return_exceptions=True)


async def test_a_hello_recorded_from_a_real_dial_is_refused_by_the_node_once_restarted(
    clusters: FabricaClusters,
) -> None:
    """nodo2 dials nodo1 through a recording relay; the hello it sent, played back to nodo1 freshly
    restarted (nothing in memory) and within seconds (no clock to lean on), is refused."""
    c = await clusters(2, arrancar=False)
    uno = c["nodo1"]
    grabadora = Grabadora(f"ws://{uno.host}:{uno.port}/sync")
    async with serve(grabadora.atender, "127.0.0.1", 0, max_size=None, compression=None) as relevo:
        puerto = relevo.sockets[0].getsockname()[1]
        c.escribir_vias({("nodo2", "nodo1"): f"127.0.0.1:{puerto}"})
        await c.arrancar()
        await en_registro(c["nodo2"], "nodo2: linked to nodo1")
        assert grabadora.holas
        await c["nodo2"].parar()
        await uno.reiniciar()
        antes = await foto(uno)
        recibidos, cierre = await marcar(uno, grabadora.holas[0])
    assert [(m["tipo"], m.get("codigo")) for m in recibidos] == [("error", "HOLA_REPETIDO")]
    assert cierre == 1008
    await en_registro(uno, "nodo1: refused peer hello", "HOLA_REPETIDO")
    assert await foto(uno) == antes
    await sigue_sano(uno)


async def test_a_hello_whose_vector_names_a_thousand_nodes_outside_the_cluster_is_welcomed(cluster: Cluster) -> None:
    """Those entries are ignored: a peer whose log predates the check on origins still links."""
    uno = cluster["nodo1"]
    inventados = {f"inventado-{n}": 1 for n in range(1006)}
    recibidos, _ = await marcar(uno, hola(vector={"nodo2": 0, **inventados}), hasta="al_dia")
    assert [m["tipo"] for m in recibidos][0] == "bienvenida" and recibidos[-1]["tipo"] == "al_dia"
    assert set(recibidos[0]["vector"]) == {"nodo1"}
    await sigue_sano(uno)


async def test_a_frame_over_the_servers_websocket_limit_is_dropped_before_the_protocol_sees_it(
    cluster: Cluster,
) -> None:
    uno = cluster["nodo1"]
    antes = await foto(uno)
    recibidos, cierre = await marcar(uno, "x" * (MAX_MENSAJE_WS + 1))  # the server's ws_max_size
    assert recibidos == [] and cierre == 1009
    assert await foto(uno) == antes
    await sigue_sano(uno)


@pytest.mark.parametrize("origen", ["http://evil.example", "null"])
async def test_a_browser_page_cannot_open_the_peer_link(cluster: Cluster, origen: str) -> None:
    uno = cluster["nodo1"]
    antes = await foto(uno)
    with pytest.raises(InvalidStatus) as e:
        async with connect(f"ws://{uno.host}:{uno.port}/sync", proxy=None, origin=Origin(origen)):
            pass
    assert e.value.response.status_code == 403
    await en_registro(uno, "nodo1: refused /sync from a browser page", origen)
    assert await foto(uno) == antes
    await sigue_sano(uno)


async def test_a_page_outside_the_cluster_cannot_open_the_graphql_websocket(cluster: Cluster) -> None:
    uno = cluster["nodo1"]
    url = f"ws://{uno.host}:{uno.port}/graphql"
    with pytest.raises(InvalidStatus) as e:
        async with connect(url, proxy=None, origin=Origin("http://evil.example"), subprotocols=[GQL]):
            pass
    assert e.value.response.status_code == 403
    async with connect(url, proxy=None, origin=Origin(cluster["nodo2"].url), subprotocols=[GQL]) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": cabecera()}))
        assert json.loads(await ws.recv()) == {"type": "connection_ack"}


# --- B. a rogue server that nodo1 dials as its peer nodo2 -------------------------------


def cliente_de_nodo2(ahora_ms: int) -> list[Cambio]:
    """Three well-formed changes of nodo2 that make a cliente."""
    clave = str(uuid.uuid4())
    campos = [("nombre", "Eva"), ("email", "eva@example.com"), ("creado_en", "2024-05-01T10:00:00.000Z")]
    return [Cambio("nodo2", n, sello(ahora_ms, n), "cliente", clave, c, v) for n, (c, v) in enumerate(campos, 1)]


def con_campo_desconocido(ahora_ms: int) -> list[Mensaje]:
    malo = Cambio("nodo2", 4, sello(ahora_ms, 4), "cliente", "c-1", "apodo", "Evita")
    return [c.a_json() for c in [*cliente_de_nodo2(ahora_ms), malo]]


def con_reloj_adelantado(ahora_ms: int) -> list[Mensaje]:
    futuro = Cambio("nodo2", 4, sello(ahora_ms + 60_000), "cliente", "c-1", "nombre", "Eva del futuro")
    return [c.a_json() for c in [*cliente_de_nodo2(ahora_ms), futuro]]


def bien_formado(ahora_ms: int) -> list[Mensaje]:
    return [c.a_json() for c in cliente_de_nodo2(ahora_ms)]


def con_origenes_inventados(ahora_ms: int) -> list[Mensaje]:
    """nodo2's cliente, and changes of three nodes that are in no settings."""
    inventados = [Cambio(f"nodo-{n}", 1, sello(ahora_ms), "cliente", f"c-{n}", "nombre", "Nadie") for n in (7, 8, 9)]
    return [c.a_json() for c in [*cliente_de_nodo2(ahora_ms), *inventados]]


def con_un_cambio_de_nodo1(ahora_ms: int) -> list[Mensaje]:
    """nodo2's cliente, and a change that claims to be nodo1's own, sent to nodo1."""
    suplantado = Cambio("nodo1", 1, sello(ahora_ms), "cliente", "c-1", "nombre", "Eva suplantada")
    return [c.a_json() for c in [*cliente_de_nodo2(ahora_ms), suplantado]]


def con_un_surrogate_suelto(ahora_ms: int) -> list[Mensaje]:
    """nodo2's cliente, its name half a surrogate pair: JSON's "\\ud800"."""
    cambios = cliente_de_nodo2(ahora_ms)
    return [c.a_json() for c in [dataclasses.replace(cambios[0], valor="Eva \ud800"), *cambios[1:]]]


class ParFalso:
    """A websockets server that welcomes nodo1 and sends it one batch per link.

    It checks nodo1's hello with the cluster secret; with ``secreto`` it signs
    its welcome with that one instead. With ``luego``, every link after the
    first gets that batch instead.
    """

    def __init__(
        self,
        lote: Callable[[int], list[Mensaje]],
        secreto: str = SECRETO,
        luego: Callable[[int], list[Mensaje]] | None = None,
    ) -> None:
        self.lote = lote
        self.secreto = secreto
        self.luego = luego
        self.respuestas: list[Mensaje] = []  # nodo1's first answer on each link

    async def atender(self, ws: ServerConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            sesion = p.SesionServidor(NOMBRE, SECRETO, "nodo2", frozenset({"nodo1"}))
            await ws.send(p.codificar(sesion.desafio()))
            hola = p.decodificar(await ws.recv())
            bienvenida = sesion.hola(hola, {})
            if self.secreto != SECRETO:
                firmado = f"bienvenida|{p.VERSION}|{NOMBRE}|nodo2|nodo1|{hola['reto']}|{hola['nonce']}".encode()
                bienvenida["prueba"] = hmac.new(self.secreto.encode(), firmado, hashlib.sha256).hexdigest()
            await ws.send(p.codificar(bienvenida))
            lote = self.luego if self.luego is not None and self.respuestas else self.lote
            # json.dumps escapes what is not ASCII: a lone surrogate travels as "\\ud800", as a peer can send it.
            await ws.send(json.dumps({"tipo": "cambios", "cambios": lote(reloj_de_pared())}))
            self.respuestas.append(p.decodificar(await ws.recv()))


@contextlib.asynccontextmanager
async def nodo1_marca_a(
    clusters: FabricaClusters, par: ParFalso | ParConVariosLotes, nodos: int = 2
) -> AsyncIterator[ProcesoNodo]:
    """nodo1 running, with its peer nodo2 routed to ``par``; no other node runs."""
    async with serve(par.atender, "127.0.0.1", 0) as servidor:
        puerto = servidor.sockets[0].getsockname()[1]
        c = await clusters(nodos, arrancar=False, via={"nodo1": {"nodo2": f"127.0.0.1:{puerto}"}})
        await c.arrancar("nodo1")
        yield c["nodo1"]


@pytest.mark.parametrize(
    ("par", "codigo"),
    [
        pytest.param(lambda: ParFalso(con_campo_desconocido), "CAMBIO_INVALIDO", id="unknown-field"),
        pytest.param(lambda: ParFalso(con_reloj_adelantado), "DERIVA_RELOJ", id="clock-60s-ahead"),
        pytest.param(lambda: ParFalso(bien_formado, secreto="otro-secreto"), "SECRETO", id="welcome-without-proof"),
        pytest.param(lambda: ParFalso(con_un_surrogate_suelto), "CAMBIO_INVALIDO", id="lone-surrogate"),
        pytest.param(lambda: ParFalso(con_origenes_inventados), "ORIGEN_DESCONOCIDO", id="origins-not-in-settings"),
        pytest.param(lambda: ParFalso(con_un_cambio_de_nodo1), "ORIGEN_PROPIO", id="the-receivers-own-origin"),
    ],
)
async def test_a_peer_that_sends_what_it_should_not_is_refused_and_none_of_its_batch_is_applied(
    clusters: FabricaClusters, par: Callable[[], ParFalso], codigo: str
) -> None:
    falso = par()
    async with nodo1_marca_a(clusters, falso) as uno:
        await esperar(lambda: falso.respuestas, PLAZO, que="nodo1 answers the rogue peer")
        assert (falso.respuestas[0]["tipo"], falso.respuestas[0].get("codigo")) == ("error", codigo)
        await en_registro(uno, "nodo1: refused what nodo2 sent", codigo)
        vector, cuenta, clientes = await foto(uno)
        assert "nodo2" not in vector and cuenta == 0 and clientes == []
        await sigue_sano(uno)


@pytest.mark.parametrize(
    ("lote", "codigo"),
    [
        pytest.param(con_origenes_inventados, "ORIGEN_DESCONOCIDO", id="origins-not-in-settings"),
        pytest.param(con_un_cambio_de_nodo1, "ORIGEN_PROPIO", id="the-receivers-own-origin"),
    ],
)
async def test_after_a_batch_refused_for_its_origins_the_link_recovers_and_stores_none_of_them(
    clusters: FabricaClusters, lote: Callable[[int], list[Mensaje]], codigo: str
) -> None:
    """The refused batch leaves no trace in the vector, which honest hellos carry to every node."""
    falso = ParFalso(lote, luego=bien_formado)
    async with nodo1_marca_a(clusters, falso) as uno:
        await esperar(lambda: len(falso.respuestas) >= 2, PLAZO, que="nodo1 dials the peer again")
        assert (falso.respuestas[0]["tipo"], falso.respuestas[0].get("codigo")) == ("error", codigo)
        assert falso.respuestas[1] == {"tipo": "ack", "vector": {"nodo2": 3}}
        await en_registro(uno, "nodo1: refused what nodo2 sent", codigo)
        vector, cuenta, clientes = await foto(uno)
        assert vector == {"nodo2": 3} and cuenta == 3
        assert [(x["nombre"], x["email"]) for x in clientes] == [("Eva", "eva@example.com")]


async def test_a_well_formed_batch_from_a_peer_that_proves_the_secret_is_applied(clusters: FabricaClusters) -> None:
    falso = ParFalso(bien_formado)
    async with nodo1_marca_a(clusters, falso) as uno:
        await esperar(lambda: falso.respuestas, PLAZO, que="nodo1 answers the peer")
        assert falso.respuestas[0] == {"tipo": "ack", "vector": {"nodo2": 3}}
        vector, cuenta, clientes = await foto(uno)
        assert vector == {"nodo2": 3} and cuenta == 3
        assert [(x["nombre"], x["email"]) for x in clientes] == [("Eva", "eva@example.com")]


class ParConVariosLotes:
    """A websockets server that welcomes nodo1 and sends it several batches at once on each link.

    It keeps everything nodo1 answers, one list per link.
    """

    def __init__(self, lotes: Callable[[int], list[list[Mensaje]]]) -> None:
        self.lotes = lotes
        self.enlaces: list[list[Mensaje]] = []

    async def atender(self, ws: ServerConnection) -> None:
        recibidos: list[Mensaje] = []
        self.enlaces.append(recibidos)
        with contextlib.suppress(ConnectionClosed):
            sesion = p.SesionServidor(NOMBRE, SECRETO, "nodo2", frozenset({"nodo1"}))
            await ws.send(p.codificar(sesion.desafio()))
            await ws.send(p.codificar(sesion.hola(p.decodificar(await ws.recv()), {})))
            for lote in self.lotes(reloj_de_pared()):
                await ws.send(p.codificar({"tipo": "cambios", "cambios": lote}))
            async for llegado in ws:
                recibidos.append(p.decodificar(llegado))


def con_el_segundo_lote_adelantado(ahora_ms: int) -> list[list[Mensaje]]:
    """nodo2's cliente; a change of nodo2 stamped a minute ahead; nodo3's change to that cliente."""
    cliente = cliente_de_nodo2(ahora_ms)
    futuro = Cambio("nodo2", 4, sello(ahora_ms + 60_000), "cliente", cliente[0].clave, "nombre", "Eva del futuro")
    despues = Cambio("nodo3", 1, sello(ahora_ms + 1), "cliente", cliente[0].clave, "telefono", "600000000")
    return [[c.a_json() for c in lote] for lote in (cliente, [futuro], [despues])]


async def test_no_batch_that_follows_a_refused_one_on_a_link_is_applied(clusters: FabricaClusters) -> None:
    """nodo3's change came after nodo2's refused one: the vector (gap-free per origin) would not
    hold it back, the order of the link must. nodo1 dials again and the same happens."""
    falso = ParConVariosLotes(con_el_segundo_lote_adelantado)

    def refusal(n: int) -> bool:
        return len(falso.enlaces) > n and any(m["tipo"] == "error" for m in falso.enlaces[n])

    async with nodo1_marca_a(clusters, falso, nodos=3) as uno:  # nodo3 a member, which never runs
        # The second link's batches queue behind the first's: once it is refused, the first is settled.
        await esperar(lambda: refusal(0) and refusal(1), PLAZO, que="nodo1 refuses the peer on two links")
        assert {"tipo": "ack", "vector": {"nodo2": 3}} in falso.enlaces[0]
        assert [m.get("codigo") for m in falso.enlaces[0] if m["tipo"] == "error"] == ["DERIVA_RELOJ"]
        vector, cuenta, clientes = await foto(uno)
        assert vector == {"nodo2": 3} and cuenta == 3
        assert [x["telefono"] for x in clientes] == [None]
