"""Cluster settings: `settings.toml` plus environment overrides.

The file names the cluster and its nodes; a running node is one of them.
Everything is validated here, once, so that a bad file stops the program
with one line naming the problem before anything is opened or written.

Environment overrides: ``PEDIDOS_CONFIG`` (path of the file),
``PEDIDOS_NODE`` (which node this process is), ``PEDIDOS_SECRET`` (the
cluster secret) and ``PEDIDOS_DATABASE_URL`` (this node's database).

``PEDIDOS_CLOCK_OFFSET_MS`` is for fault-injection tests only: it shifts
this node's wall clock by that many milliseconds (positive: ahead), as if
its machine's clock were wrong, so that tests can show that a node slightly
ahead still converges and one far ahead is refused (``max_clock_drift_ms``).
It has no settings-file counterpart on purpose.

Client tokens are ``[[tokens]]`` tables (see ``servidor.acceso``)::

    [[tokens]]
    nombre = "tienda"                  # for the logs
    rol = "operador"                   # lectura | operador | admin
    sha256 = "9f86d0…"                 # hex SHA-256 of the token (or: token = "…", in plain)

A node whose host is not a loopback address refuses to start while the
cluster secret or a token is the development one shipped in
``settings.toml``: those are public.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from servidor.acceso import Rol, Token, resumen

RUTA_POR_DEFECTO = "settings.toml"
# The development secret and token of the shipped settings.toml: public, so loopback only.
SECRETO_DESARROLLO = "dev-secret-change-me"
TOKEN_DESARROLLO = "dev-token-change-me"
MIN_TOKEN = 16
_HEX_SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")


class ErrorAjustes(Exception):
    """A settings problem, with a one-line message fit for the terminal."""


@dataclass(frozen=True)
class Nodo:
    id: str
    host: str
    port: int
    database: str
    # Where this node dials each peer, when not at the peer's own host:port
    # (a proxy in front of it, for fault-injection tests).
    via: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


@dataclass(frozen=True)
class Cluster:
    name: str
    secret: str
    max_clock_drift_ms: int
    nodes: tuple[Nodo, ...]
    ruta: Path
    # How long an order may wait for peers to transfer rights to stock before it is refused.
    rights_wait_ms: int = 300
    # Client tokens; none means no client can call the API (only ping and the page).
    tokens: tuple[Token, ...] = ()
    # One log line per HTTP request (uvicorn's access log); errors are logged either way.
    access_log: bool = False
    # Connection bounds of every node (``servidor.conexiones``): open connections past which
    # a request is answered 503, the largest request head (431 past it), and how long a
    # connection may take to send a complete head before it is closed.
    max_connections: int = 1000
    max_header_bytes: int = 32 * 1024
    header_timeout_ms: int = 5000

    def nodo(self, nodo_id: str) -> Nodo:
        for nodo in self.nodes:
            if nodo.id == nodo_id:
                return nodo
        conocidos = ", ".join(n.id for n in self.nodes)
        raise ErrorAjustes(f"{self.ruta}: unknown node {nodo_id!r} (known: {conocidos})")


@dataclass(frozen=True)
class Ajustes:
    """What one node needs to run: the cluster it belongs to and who it is."""

    cluster: Cluster
    nodo: Nodo
    desfase_reloj_ms: int = 0  # PEDIDOS_CLOCK_OFFSET_MS: tests only, see the module docstring

    @property
    def pares(self) -> tuple[Nodo, ...]:
        return tuple(n for n in self.cluster.nodes if n.id != self.nodo.id)


def ruta_config(ruta: str | None, entorno: Mapping[str, str] = os.environ) -> Path:
    return Path(ruta or entorno.get("PEDIDOS_CONFIG") or RUTA_POR_DEFECTO)


def cargar_cluster(ruta: Path, entorno: Mapping[str, str] = os.environ) -> Cluster:
    try:
        texto = ruta.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ErrorAjustes(f"{ruta}: settings file not found") from None
    except OSError as e:
        raise ErrorAjustes(f"{ruta}: cannot read settings file ({e.strerror})") from None
    try:
        datos = tomllib.loads(texto)
    except tomllib.TOMLDecodeError as e:
        raise ErrorAjustes(f"{ruta}: malformed TOML ({e})") from None
    return _cluster_desde(datos, ruta, entorno)


def cargar(
    ruta: str | None = None,
    nodo_id: str | None = None,
    entorno: Mapping[str, str] = os.environ,
) -> Ajustes:
    """Load the settings of one node (``nodo_id`` or ``PEDIDOS_NODE``)."""
    cluster = cargar_cluster(ruta_config(ruta, entorno), entorno)
    elegido = nodo_id or entorno.get("PEDIDOS_NODE")
    if not elegido:
        raise ErrorAjustes("no node chosen: pass --node ID or set PEDIDOS_NODE")
    nodo = cluster.nodo(elegido)
    comprobar_exposicion(cluster, nodo)
    url = entorno.get("PEDIDOS_DATABASE_URL")
    if url:
        nodo = replace(nodo, database=_resolver_url(url, cluster.ruta.parent))
    return Ajustes(cluster=cluster, nodo=nodo, desfase_reloj_ms=_desfase(entorno))


def _desfase(entorno: Mapping[str, str]) -> int:
    texto = entorno.get("PEDIDOS_CLOCK_OFFSET_MS", "").strip()
    if not texto:
        return 0
    try:
        return int(texto)
    except ValueError:
        raise ErrorAjustes(f"PEDIDOS_CLOCK_OFFSET_MS must be an integer of milliseconds, not {texto!r}") from None


def es_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name other than localhost may resolve to anything


def comprobar_exposicion(cluster: Cluster, nodo: Nodo) -> None:
    """Refuse a node on a non-loopback address that still uses the development secret or token."""
    if es_loopback(nodo.host):
        return
    donde = f"{cluster.ruta}: node {nodo.id} listens on {nodo.host}, not loopback"
    if cluster.secret == SECRETO_DESARROLLO:
        raise ErrorAjustes(f"{donde}, and the cluster secret is the development one: set PEDIDOS_SECRET")
    desarrollo = resumen(TOKEN_DESARROLLO)
    for token in cluster.tokens:
        if token.sha256 == desarrollo:
            raise ErrorAjustes(f"{donde}, and token {token.nombre!r} is the development one: replace it")


def _cluster_desde(datos: dict[str, Any], ruta: Path, entorno: Mapping[str, str]) -> Cluster:
    seccion = datos.get("cluster")
    if not isinstance(seccion, dict):
        raise ErrorAjustes(f"{ruta}: missing [cluster] table")
    nombre = _texto(seccion, "name", ruta, "[cluster]")
    secreto = entorno.get("PEDIDOS_SECRET") or _texto(seccion, "secret", ruta, "[cluster]")
    deriva = seccion.get("max_clock_drift_ms", 500)
    if not isinstance(deriva, int) or isinstance(deriva, bool) or deriva <= 0:
        raise ErrorAjustes(f"{ruta}: [cluster] max_clock_drift_ms must be a positive integer")
    espera = seccion.get("rights_wait_ms", 300)
    if not isinstance(espera, int) or isinstance(espera, bool) or not 0 <= espera <= 60_000:
        raise ErrorAjustes(f"{ruta}: [cluster] rights_wait_ms must be an integer 0-60000")
    accesos = seccion.get("access_log", False)
    if not isinstance(accesos, bool):
        raise ErrorAjustes(f"{ruta}: [cluster] access_log must be true or false")
    conexiones = _entero(seccion, "max_connections", 1000, 1, 100_000, ruta)
    cabecera = _entero(seccion, "max_header_bytes", 32 * 1024, 1024, 1024 * 1024, ruta)
    plazo_cabecera = _entero(seccion, "header_timeout_ms", 5000, 100, 60_000, ruta)

    lista = datos.get("nodes")
    if not isinstance(lista, list) or not lista:
        raise ErrorAjustes(f"{ruta}: no [[nodes]] declared")
    nodos: list[Nodo] = []
    for i, entrada in enumerate(lista, start=1):
        donde = f"[[nodes]] #{i}"
        if not isinstance(entrada, dict):
            raise ErrorAjustes(f"{ruta}: {donde} is not a table")
        nodo_id = _texto(entrada, "id", ruta, donde)
        port = entrada.get("port")
        if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
            raise ErrorAjustes(f"{ruta}: {donde} ({nodo_id}) port must be an integer 1-65535")
        via = entrada.get("via", {})
        if not isinstance(via, dict) or not all(isinstance(v, str) and ":" in v for v in via.values()):
            raise ErrorAjustes(f'{ruta}: {donde} ({nodo_id}) via must map node ids to "host:port"')
        nodos.append(
            Nodo(
                id=nodo_id,
                host=_texto(entrada, "host", ruta, donde),
                port=port,
                database=_resolver_url(_texto(entrada, "database", ruta, donde), ruta.parent),
                via=dict(via),
            )
        )
    _sin_repetidos([n.id for n in nodos], "node id", ruta)
    _sin_repetidos([(n.host, n.port) for n in nodos], "host and port", ruta)
    tokens = _tokens(datos.get("tokens", []), ruta)
    return Cluster(
        name=nombre,
        secret=secreto,
        max_clock_drift_ms=deriva,
        nodes=tuple(nodos),
        ruta=ruta,
        rights_wait_ms=espera,
        tokens=tokens,
        access_log=accesos,
        max_connections=conexiones,
        max_header_bytes=cabecera,
        header_timeout_ms=plazo_cabecera,
    )


def _entero(seccion: dict[str, Any], clave: str, defecto: int, minimo: int, maximo: int, ruta: Path) -> int:
    valor = seccion.get(clave, defecto)
    if not isinstance(valor, int) or isinstance(valor, bool) or not minimo <= valor <= maximo:
        raise ErrorAjustes(f"{ruta}: [cluster] {clave} must be an integer {minimo}-{maximo}")
    return valor


def _tokens(lista: Any, ruta: Path) -> tuple[Token, ...]:
    if not isinstance(lista, list):
        raise ErrorAjustes(f"{ruta}: tokens must be [[tokens]] tables")
    tokens: list[Token] = []
    for i, entrada in enumerate(lista, start=1):
        donde = f"[[tokens]] #{i}"
        if not isinstance(entrada, dict):
            raise ErrorAjustes(f"{ruta}: {donde} is not a table")
        nombre = _texto(entrada, "nombre", ruta, donde)
        try:
            rol = Rol.desde(_texto(entrada, "rol", ruta, donde))
        except ValueError as e:
            raise ErrorAjustes(f"{ruta}: {donde} ({nombre}) {e}") from None
        plano, hash_ = entrada.get("token"), entrada.get("sha256")
        if (plano is None) == (hash_ is None):
            raise ErrorAjustes(f"{ruta}: {donde} ({nombre}) needs exactly one of 'token' and 'sha256'")
        if plano is not None:
            if not isinstance(plano, str) or len(plano) < MIN_TOKEN or plano != plano.strip() or " " in plano:
                raise ErrorAjustes(f"{ruta}: {donde} ({nombre}) token must be {MIN_TOKEN}+ characters, no spaces")
            tokens.append(Token.desde_texto(nombre, plano, rol))
        else:
            if not isinstance(hash_, str) or not _HEX_SHA256.match(hash_):
                raise ErrorAjustes(f"{ruta}: {donde} ({nombre}) sha256 must be 64 hex digits")
            tokens.append(Token(nombre, bytes.fromhex(hash_), rol))
    _sin_repetidos([t.nombre for t in tokens], "token nombre", ruta)
    if len({t.sha256 for t in tokens}) < len(tokens):
        raise ErrorAjustes(f"{ruta}: two [[tokens]] have the same token")
    return tuple(tokens)


def _texto(tabla: dict[str, Any], clave: str, ruta: Path, donde: str) -> str:
    valor = tabla.get(clave)
    if not isinstance(valor, str) or not valor.strip():
        raise ErrorAjustes(f"{ruta}: {donde} needs a non-empty string {clave!r}")
    return valor


def _sin_repetidos(valores: list[Any], que: str, ruta: Path) -> None:
    vistos: set[Any] = set()
    for valor in valores:
        if valor in vistos:
            mostrado = ":".join(map(str, valor)) if isinstance(valor, tuple) else valor
            raise ErrorAjustes(f"{ruta}: duplicate {que} {mostrado}")
        vistos.add(valor)


def _resolver_url(url: str, base: Path) -> str:
    """Relative SQLite paths are relative to the settings file, not the cwd."""
    prefijo = "sqlite+aiosqlite:///"
    if url.startswith(prefijo):
        camino = url[len(prefijo) :]
        if camino and camino != ":memory:" and not Path(camino).is_absolute():
            return prefijo + str((base / camino).resolve())
    return url
