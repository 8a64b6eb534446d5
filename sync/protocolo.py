"""The peer protocol, as pure functions and two small state machines.

A node *pulls*: it dials every peer and asks for what it lacks.

0. Server → dialer ``reto``: the protocol version and ``nonce``, a fresh
   random challenge, sent as soon as the link opens and good for one hello.
1. Dialer → server ``hola``: cluster name, its node id, protocol version,
   its version vector, the server's challenge (``reto``), a fresh nonce of
   its own, and ``prueba = HMAC(secret,
   "hola|version|cluster|dialer|server|reto|nonce")``. The proof signs a
   challenge that no earlier link was ever given, so a recorded hello is
   never accepted again: not on the same link, not on another, not after
   the server restarts (nothing is remembered, and no clock is trusted).
2. Server → dialer ``bienvenida``: its node id, its vector, and
   ``HMAC(secret, "bienvenida|version|cluster|server|dialer|reto|nonce")``:
   signing the dialer's own fresh nonce, it proves to the dialer that it is
   talking to the cluster now, before it applies anything.
3. Server → dialer ``cambios``: a batch of changes the dialer lacks, of any
   origin (so changes relay through a third node), each origin's part a
   gap-free continuation of what the dialer has; then more batches, then
   ``al_dia`` when nothing is left, then new batches as changes commit
   (live), and ``latido`` when idle, so a dead link shows within seconds.
4. Dialer → server ``ack``: its version vector after each batch (and as an
   answer to ``latido``). Acks move the server's cursor and are what
   "pending changes" for a peer are measured against.
5. Dialer → server ``pedir_derechos`` (``id``, ``producto``, ``necesita``,
   ``extra``): the dialer wants rights to units of a product (see
   ``servidor.dominio.derechos``). The server grants what its policy allows
   as an ordinary change of its log and answers ``derechos`` (``id``,
   ``unidades``, ``seq``) only after the batch carrying that change
   (``seq``) went out on this link, so a dialer that reads the answer has
   already applied the grant.
6. Either side may send ``error`` (``codigo``, ``mensaje``) and close.
   Nothing of a refused batch is applied; besides what the vocabulary
   refuses, the store refuses a batch holding a change of a node that is
   not a member, or of the receiving node itself (``Almacen.fusionar``).

Version vectors (``hola``, ``ack``) are checked entry by entry, and entries
of nodes that are not members are ignored (see :func:`vector_valido`).

The sessions below take a decoded message and answer the messages to send
(or the changes to apply); sockets and the store are the caller's business.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sync.cambios import MAX_UNIDADES, Cambio, desde_json, es_id
from sync.errores import ErrorSync

VERSION = 2
MAX_MENSAJE = 4 * 1024 * 1024
MAX_LOTE = 500
MAX_LOTE_BYTES = 1024 * 1024
VENTANA_LOTES = 2


class Rechazo(ErrorSync):
    """A peer message refused; ``codigo`` says why, for the log and the peer."""

    def __init__(self, codigo: str, mensaje: str) -> None:
        super().__init__(mensaje)
        self.codigo = codigo


def _firma(secreto: str, *partes: object) -> str:
    texto = "|".join(str(p) for p in partes).encode()
    return hmac.new(secreto.encode(), texto, hashlib.sha256).hexdigest()


def _igual(a: Any, b: str) -> bool:
    return isinstance(a, str) and a.isascii() and hmac.compare_digest(a.encode(), b.encode())


def _nonce() -> str:
    return os.urandom(16).hex()


def _es_nonce(v: Any) -> bool:
    return isinstance(v, str) and 32 <= len(v) <= 64 and v.isascii() and v.isalnum()


def decodificar(texto: str | bytes) -> dict[str, Any]:
    if len(texto) > MAX_MENSAJE:
        raise Rechazo("MENSAJE_GRANDE", f"message of {len(texto)} bytes exceeds {MAX_MENSAJE}")
    try:
        msg = json.loads(texto)
    except (ValueError, UnicodeDecodeError):
        raise Rechazo("MALFORMADO", "message is not JSON") from None
    if not isinstance(msg, dict) or not isinstance(msg.get("tipo"), str):
        raise Rechazo("MALFORMADO", "message is not an object with a 'tipo'")
    return msg


_CODIFICADOR = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)  # built once


def codificar(msg: Mapping[str, Any]) -> str:
    return _CODIFICADOR.encode(msg)


def vector_valido(v: Any, miembros: frozenset[str] | None = None) -> dict[str, int]:
    """A peer's version vector, checked entry by entry; with ``miembros``, only their entries.

    Entries of nodes that are not members are ignored, not refused: this node
    never holds nor sends a change of theirs, so such an entry says nothing it
    can use, while refusing it would cut this node off from a peer whose log
    still holds changes of invented origins from before they were refused.
    The count of entries is bounded by the message's size alone, for the same
    reason: a cap on it is how 1,006 invented origins once stopped every link.
    """
    if not isinstance(v, dict):
        raise Rechazo("MALFORMADO", "bad version vector")
    for origen, seq in v.items():
        if not es_id(origen) or not isinstance(seq, int) or isinstance(seq, bool) or not 0 <= seq < 2**63:
            raise Rechazo("MALFORMADO", "bad version vector")
    if miembros is None:
        return dict(v)
    return {o: s for o, s in v.items() if o in miembros}


def _natural(v: Any, tope: int = MAX_UNIDADES) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= tope


@dataclass(frozen=True)
class Peticion:
    """A dialer's ``pedir_derechos``."""

    id: int
    producto: str
    necesita: int
    extra: int

    def respuesta(self, unidades: int, seq: int | None) -> dict[str, Any]:
        return {"tipo": "derechos", "id": self.id, "unidades": unidades, "seq": seq}


def error(codigo: str, mensaje: str) -> dict[str, Any]:
    return {"tipo": "error", "codigo": codigo, "mensaje": mensaje}


@dataclass(frozen=True)
class Lote:
    """Changes to send: each one's ``(origen, seq)`` and its JSON text, encoded once."""

    claves: list[tuple[str, int]]
    textos: list[str]

    def __bool__(self) -> bool:
        return bool(self.claves)


def cortar(claves: list[tuple[str, int]], textos: list[str]) -> Lote:
    """Cut a batch so that its message stays under ``MAX_LOTE`` changes and ``MAX_LOTE_BYTES``."""
    tamano = 0
    n = 0
    for texto in textos[:MAX_LOTE]:
        tamano += len(texto.encode())
        if n and tamano > MAX_LOTE_BYTES:
            break
        n += 1
    return Lote(claves[:n], textos[:n])


def lote(cambios: list[Cambio]) -> Lote:
    """A batch of changes held in memory."""
    cambios = cambios[:MAX_LOTE]
    return cortar([(c.origen, c.seq) for c in cambios], [codificar(c.a_json()) for c in cambios])


@dataclass
class SesionCliente:
    """The dialer's side of one link."""

    cluster: str
    secreto: str
    nodo: str
    destino: str
    nonce: str = field(default_factory=_nonce)
    reto: str | None = None  # the server's challenge, once it came
    autenticado: bool = False

    def hola(self, reto: dict[str, Any], vector: Mapping[str, int]) -> dict[str, Any]:
        """The hello that answers the server's ``reto``."""
        tipo = reto["tipo"]
        if tipo == "error":
            raise Rechazo(str(reto.get("codigo", "ERROR")), f"peer refused us: {reto.get('mensaje')}")
        if tipo != "reto" or self.reto is not None:
            raise Rechazo("PROTOCOLO", f"expected one reto, got {tipo!r}")
        if reto.get("version") != VERSION:
            raise Rechazo("VERSION", f"{self.destino} speaks protocol version {reto.get('version')!r}, we {VERSION}")
        if not _es_nonce(reto.get("nonce")):
            raise Rechazo("MALFORMADO", "challenge without a proper nonce")
        self.reto = reto["nonce"]
        return {
            "tipo": "hola",
            "cluster": self.cluster,
            "nodo": self.nodo,
            "version": VERSION,
            "vector": dict(vector),
            "reto": self.reto,
            "nonce": self.nonce,
            "prueba": _firma(
                self.secreto, "hola", VERSION, self.cluster, self.nodo, self.destino, self.reto, self.nonce
            ),
        }

    def recibir(self, msg: dict[str, Any]) -> list[Cambio] | None:
        """Changes to apply (then :meth:`ack`), or None for a control message."""
        tipo = msg["tipo"]
        if tipo == "error":
            raise Rechazo(str(msg.get("codigo", "ERROR")), f"peer refused us: {msg.get('mensaje')}")
        if not self.autenticado:
            if tipo != "bienvenida" or self.reto is None:
                raise Rechazo("PROTOCOLO", f"expected bienvenida, got {tipo!r}")
            esperada = _firma(
                self.secreto, "bienvenida", VERSION, self.cluster, self.destino, self.nodo, self.reto, self.nonce
            )
            if msg.get("nodo") != self.destino or not _igual(msg.get("prueba"), esperada):
                raise Rechazo("SECRETO", f"{self.destino} could not prove the cluster secret")
            vector_valido(msg.get("vector"))
            self.autenticado = True
            return None
        if tipo == "cambios":
            datos = msg.get("cambios")
            if not isinstance(datos, list) or len(datos) > MAX_LOTE:
                raise Rechazo("MALFORMADO", "bad batch of changes")
            return [desde_json(d) for d in datos]
        if tipo in ("al_dia", "latido"):
            return None
        if tipo == "derechos":
            seq = msg.get("seq")
            if not _natural(msg.get("id"), 2**63) or not _natural(msg.get("unidades")):
                raise Rechazo("MALFORMADO", "bad answer to a request for rights")
            if not (seq is None or (_natural(seq, 2**63) and seq > 0)) or (seq is None) != (msg["unidades"] == 0):
                raise Rechazo("MALFORMADO", "bad answer to a request for rights")
            return None
        raise Rechazo("PROTOCOLO", f"unexpected message {tipo!r}")

    def ack(self, vector: Mapping[str, int]) -> dict[str, Any]:
        return {"tipo": "ack", "vector": dict(vector)}

    def pedir(self, id: int, producto: str, necesita: int, extra: int) -> dict[str, Any]:
        return {"tipo": "pedir_derechos", "id": id, "producto": producto, "necesita": necesita, "extra": extra}


@dataclass
class SesionServidor:
    """The serving side of one link: challenges the dialer, checks its hello, tracks the cursor."""

    cluster: str
    secreto: str
    nodo: str
    pares: frozenset[str]
    reto: str = field(default_factory=_nonce)  # this link's challenge; spent by the first hello
    par: str | None = None
    cursor: dict[str, int] = field(default_factory=dict)
    acuse: dict[str, int] = field(default_factory=dict)
    en_vuelo: int = 0

    def desafio(self) -> dict[str, Any]:
        """The first message of the link, before the dialer says anything."""
        return {"tipo": "reto", "version": VERSION, "nonce": self.reto}

    def hola(self, msg: dict[str, Any], vector_local: Mapping[str, int]) -> dict[str, Any]:
        reto, self.reto = self.reto, ""  # one hello per challenge, whatever becomes of it
        if msg["tipo"] != "hola":
            raise Rechazo("PROTOCOLO", f"expected hola, got {msg['tipo']!r}")
        if msg.get("version") != VERSION:
            raise Rechazo("VERSION", f"protocol version {msg.get('version')!r}, this node speaks {VERSION}")
        if msg.get("cluster") != self.cluster:
            raise Rechazo("CLUSTER", f"cluster {msg.get('cluster')!r} is not {self.cluster!r}")
        par, nonce = msg.get("nodo"), msg.get("nonce")
        if par not in self.pares:
            raise Rechazo("NODO_DESCONOCIDO", f"{par!r} is not a peer in this cluster's settings")
        if not _es_nonce(nonce) or not _es_nonce(msg.get("reto")):
            raise Rechazo("MALFORMADO", "hello without a proper challenge and nonce")
        if not reto or msg["reto"] != reto:
            raise Rechazo("HOLA_REPETIDO", f"hello from {par} answers a challenge this link never sent: a replay")
        esperada = _firma(self.secreto, "hola", VERSION, self.cluster, par, self.nodo, reto, nonce)
        if not _igual(msg.get("prueba"), esperada):
            raise Rechazo("SECRETO", f"{par} could not prove the cluster secret")
        self.par = par
        self.acuse = vector_valido(msg.get("vector"), self.miembros)
        # Changes of origins that are not members, which a log written before they were
        # refused may hold, are never sent: count them as sent already.
        self.cursor = {o: s for o, s in vector_local.items() if o not in self.miembros} | self.acuse
        return {
            "tipo": "bienvenida",
            "nodo": self.nodo,
            "vector": dict(vector_local),
            "prueba": _firma(self.secreto, "bienvenida", VERSION, self.cluster, self.nodo, par, reto, nonce),
        }

    @property
    def miembros(self) -> frozenset[str]:
        return self.pares | {self.nodo}

    def puede_enviar(self) -> bool:
        return self.en_vuelo < VENTANA_LOTES

    def enviar(self, lote: Lote) -> str:
        """The message of a batch, encoded; moves the cursor past it."""
        for origen, seq in lote.claves:
            self.cursor[origen] = max(self.cursor.get(origen, 0), seq)
        self.en_vuelo += 1
        # The same text codificar({"tipo": "cambios", "cambios": [...]}) would give.
        return '{"tipo":"cambios","cambios":[' + ",".join(lote.textos) + "]}"

    def recibir(self, msg: dict[str, Any]) -> Peticion | None:
        """Take an ``ack`` (answers None) or a request for rights (answers it, checked)."""
        if msg["tipo"] == "error":
            raise Rechazo(str(msg.get("codigo", "ERROR")), f"{self.par} refused our batch: {msg.get('mensaje')}")
        if msg["tipo"] == "pedir_derechos":
            campos: list[Any] = [msg.get(k) for k in ("id", "producto", "necesita", "extra")]
            id, producto, necesita, extra = campos
            if _natural(id, 2**63) and es_id(producto) and _natural(necesita) and _natural(extra):
                return Peticion(id, producto, necesita, extra)
            raise Rechazo("MALFORMADO", "bad request for rights")
        if msg["tipo"] != "ack":
            raise Rechazo("PROTOCOLO", f"unexpected message {msg['tipo']!r}")
        vector = vector_valido(msg.get("vector"), self.miembros)
        self.acuse = vector
        # The peer may have learnt more from others meanwhile: never resend that.
        for origen, seq in vector.items():
            self.cursor[origen] = max(self.cursor.get(origen, 0), seq)
        self.en_vuelo = max(0, self.en_vuelo - 1)
        return None

    def enviado(self, seq: int | None) -> bool:
        """Whether this server's own change ``seq`` already went out on this link."""
        return seq is None or self.cursor.get(self.nodo, 0) >= seq
