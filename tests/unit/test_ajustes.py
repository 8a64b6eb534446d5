"""Settings: every way a file can be wrong is one clear ``ErrorAjustes``."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest

from servidor.ajustes import ErrorAjustes, cargar, cargar_cluster, ruta_config

CLUSTER = """
[cluster]
name = "pedidos"
secret = "s3creto"
"""


def nodo(id: str, port: int, host: str = "127.0.0.1", database: str | None = None) -> str:
    database = database or f"sqlite+aiosqlite:///data/{id}.db"
    return f'\n[[nodes]]\nid = "{id}"\nhost = "{host}"\nport = {port}\ndatabase = "{database}"\n'


Escribir = Callable[..., Path]


@pytest.fixture
def escribir(tmp_path: Path) -> Escribir:
    def escribir(texto: str, nombre: str = "settings.toml") -> Path:
        ruta = tmp_path / nombre
        ruta.write_text(texto, encoding="utf-8")
        return ruta

    return escribir


def mensaje(ruta: Path, entorno: dict[str, str] | None = None, nodo_id: str | None = "nodo1") -> str:
    with pytest.raises(ErrorAjustes) as e:
        cargar(str(ruta), nodo_id, entorno or {})
    texto = str(e.value)
    assert "\n" not in texto, "a settings error is one line"
    return texto


def test_a_valid_file_gives_the_node_and_its_peers(escribir: Escribir) -> None:
    ruta = escribir(CLUSTER + nodo("nodo1", 5000) + nodo("nodo2", 5001) + nodo("nodo3", 5002))
    ajustes = cargar(str(ruta), "nodo2", {})
    assert ajustes.cluster.name == "pedidos"
    assert ajustes.cluster.secret == "s3creto"
    assert ajustes.cluster.max_clock_drift_ms == 500
    assert ajustes.cluster.rights_wait_ms == 300
    assert ajustes.nodo.id == "nodo2"
    assert ajustes.nodo.url == "http://127.0.0.1:5001"
    assert [p.id for p in ajustes.pares] == ["nodo1", "nodo3"]


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    ruta = tmp_path / "no-such.toml"
    assert mensaje(ruta) == f"{ruta}: settings file not found"


def test_a_directory_instead_of_a_file_cannot_be_read(tmp_path: Path) -> None:
    assert "cannot read settings file" in mensaje(tmp_path)


def test_malformed_toml_says_where(escribir: Escribir) -> None:
    ruta = escribir(CLUSTER + "[[nodes]\nid = ")
    texto = mensaje(ruta)
    assert texto.startswith(f"{ruta}: malformed TOML (")
    assert "line" in texto


def test_a_file_without_a_cluster_table_is_refused(escribir: Escribir) -> None:
    assert mensaje(escribir(nodo("nodo1", 5000))).endswith("missing [cluster] table")


@pytest.mark.parametrize("clave", ["name", "secret"])
def test_the_cluster_needs_a_name_and_a_secret(escribir: Escribir, clave: str) -> None:
    texto = CLUSTER.replace(f"{clave} = ", f"x_{clave} = ")
    assert mensaje(escribir(texto + nodo("nodo1", 5000))).endswith(f"[cluster] needs a non-empty string '{clave}'")


@pytest.mark.parametrize("valor", ["0", "-5", '"500"', "true", "1.5"])
def test_clock_drift_must_be_a_positive_integer(escribir: Escribir, valor: str) -> None:
    ruta = escribir(CLUSTER + f"max_clock_drift_ms = {valor}\n" + nodo("nodo1", 5000))
    assert "max_clock_drift_ms must be a positive integer" in mensaje(ruta)


def test_a_file_without_nodes_is_refused(escribir: Escribir) -> None:
    assert mensaje(escribir(CLUSTER)).endswith("no [[nodes]] declared")


def test_nodes_that_are_not_tables_are_refused(escribir: Escribir) -> None:
    assert mensaje(escribir('nodes = ["nodo1"]\n' + CLUSTER)).endswith("[[nodes]] #1 is not a table")


@pytest.mark.parametrize("clave", ["id", "host", "database"])
def test_every_node_needs_an_id_a_host_and_a_database(escribir: Escribir, clave: str) -> None:
    roto = nodo("nodo2", 5001).replace(f"\n{clave} = ", f"\nx_{clave} = ")
    texto = mensaje(escribir(CLUSTER + nodo("nodo1", 5000) + roto))
    assert texto.endswith(f"[[nodes]] #2 needs a non-empty string '{clave}'")


@pytest.mark.parametrize("port", ["0", "65536", "-1", '"5000"', "true", "50.5"])
def test_a_port_must_be_an_integer_between_1_and_65535(escribir: Escribir, port: str) -> None:
    texto = nodo("nodo1", 5000).replace("port = 5000", f"port = {port}")
    assert mensaje(escribir(CLUSTER + texto)).endswith("[[nodes]] #1 (nodo1) port must be an integer 1-65535")


def test_a_duplicate_node_id_is_named(escribir: Escribir) -> None:
    ruta = escribir(CLUSTER + nodo("nodo1", 5000) + nodo("nodo1", 5001))
    assert mensaje(ruta) == f"{ruta}: duplicate node id nodo1"


def test_two_nodes_on_one_host_and_port_are_refused(escribir: Escribir) -> None:
    ruta = escribir(CLUSTER + nodo("nodo1", 5000) + nodo("nodo2", 5000))
    assert mensaje(ruta) == f"{ruta}: duplicate host and port 127.0.0.1:5000"


def test_the_same_port_on_different_hosts_is_allowed(escribir: Escribir) -> None:
    ruta = escribir(CLUSTER + nodo("nodo1", 5000, "10.0.0.1") + nodo("nodo2", 5000, "10.0.0.2"))
    assert len(cargar_cluster(ruta, {}).nodes) == 2


def test_an_unknown_node_lists_the_known_ones(escribir: Escribir) -> None:
    ruta = escribir(CLUSTER + nodo("nodo1", 5000) + nodo("nodo2", 5001))
    assert mensaje(ruta, nodo_id="nodo9") == f"{ruta}: unknown node 'nodo9' (known: nodo1, nodo2)"


def test_no_node_chosen_says_how_to_choose_one(escribir: Escribir) -> None:
    ruta = escribir(CLUSTER + nodo("nodo1", 5000))
    assert "--node" in mensaje(ruta, nodo_id=None)


def test_the_node_can_come_from_pedidos_node(escribir: Escribir) -> None:
    ruta = escribir(CLUSTER + nodo("nodo1", 5000) + nodo("nodo2", 5001))
    assert cargar(str(ruta), None, {"PEDIDOS_NODE": "nodo2"}).nodo.id == "nodo2"


def test_the_command_line_node_wins_over_pedidos_node(escribir: Escribir) -> None:
    ruta = escribir(CLUSTER + nodo("nodo1", 5000) + nodo("nodo2", 5001))
    assert cargar(str(ruta), "nodo1", {"PEDIDOS_NODE": "nodo2"}).nodo.id == "nodo1"


def test_the_file_can_come_from_pedidos_config(escribir: Escribir) -> None:
    ruta = escribir(CLUSTER + nodo("nodo1", 5000), "otro.toml")
    assert cargar(None, "nodo1", {"PEDIDOS_CONFIG": str(ruta)}).cluster.ruta == ruta


def test_the_command_line_file_wins_over_pedidos_config(tmp_path: Path) -> None:
    assert ruta_config("a.toml", {"PEDIDOS_CONFIG": "b.toml"}) == Path("a.toml")
    assert ruta_config(None, {"PEDIDOS_CONFIG": "b.toml"}) == Path("b.toml")
    assert ruta_config(None, {}) == Path("settings.toml")


def test_pedidos_secret_overrides_the_file(escribir: Escribir) -> None:
    ruta = escribir(CLUSTER + nodo("nodo1", 5000))
    assert cargar(str(ruta), "nodo1", {"PEDIDOS_SECRET": "otro"}).cluster.secret == "otro"


def test_pedidos_secret_stands_in_for_a_missing_one(escribir: Escribir) -> None:
    ruta = escribir(CLUSTER.replace('secret = "s3creto"', "") + nodo("nodo1", 5000))
    assert cargar(str(ruta), "nodo1", {"PEDIDOS_SECRET": "del-entorno"}).cluster.secret == "del-entorno"


def test_pedidos_database_url_overrides_only_the_running_node(escribir: Escribir) -> None:
    ruta = escribir(CLUSTER + nodo("nodo1", 5000) + nodo("nodo2", 5001))
    url = "mysql+asyncmy://u@127.0.0.1:3306/pedidos_nodo1"
    ajustes = cargar(str(ruta), "nodo1", {"PEDIDOS_DATABASE_URL": url})
    assert ajustes.nodo.database == url
    assert ajustes.cluster.nodo("nodo1").database.endswith("/data/nodo1.db")


def test_relative_sqlite_paths_are_relative_to_the_settings_file(escribir: Escribir, tmp_path: Path) -> None:
    ruta = escribir(CLUSTER + nodo("nodo1", 5000))
    esperado = f"sqlite+aiosqlite:///{(tmp_path / 'data' / 'nodo1.db').resolve()}"
    assert cargar(str(ruta), "nodo1", {}).nodo.database == esperado


def test_a_relative_sqlite_path_in_pedidos_database_url_is_relative_to_the_file(
    escribir: Escribir, tmp_path: Path
) -> None:
    ruta = escribir(CLUSTER + nodo("nodo1", 5000))
    ajustes = cargar(str(ruta), "nodo1", {"PEDIDOS_DATABASE_URL": "sqlite+aiosqlite:///otra/n1.db"})
    assert ajustes.nodo.database == f"sqlite+aiosqlite:///{(tmp_path / 'otra' / 'n1.db').resolve()}"


@pytest.mark.parametrize(
    "url",
    [
        "sqlite+aiosqlite:////var/lib/pedidos/nodo1.db",
        "sqlite+aiosqlite:///:memory:",
        "mysql+asyncmy://root@127.0.0.1:3306/pedidos",
    ],
)
def test_absolute_memory_and_server_urls_are_kept_as_written(escribir: Escribir, url: str) -> None:
    ruta = escribir(CLUSTER + nodo("nodo1", 5000, database=url))
    assert cargar(str(ruta), "nodo1", {}).nodo.database == url


def test_loading_settings_writes_nothing(escribir: Escribir, tmp_path: Path) -> None:
    ruta = escribir(CLUSTER + nodo("nodo1", 5000))
    cargar(str(ruta), "nodo1", {})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["settings.toml"]


@pytest.mark.parametrize("valor", ["-1", "60001", '"300"', "true"])
def test_a_bad_wait_for_stock_rights_is_refused(escribir: Escribir, valor: str) -> None:
    ruta = escribir(CLUSTER + f"rights_wait_ms = {valor}\n" + nodo("nodo1", 5000))
    assert "rights_wait_ms must be an integer 0-60000" in mensaje(ruta)


def test_the_wait_for_stock_rights_can_be_set(escribir: Escribir) -> None:
    ruta = escribir(CLUSTER + "rights_wait_ms = 50\n" + nodo("nodo1", 5000))
    assert cargar(str(ruta), "nodo1", {}).cluster.rights_wait_ms == 50


def test_the_access_log_is_off_unless_asked_for(escribir: Escribir) -> None:
    assert cargar(str(escribir(CLUSTER + nodo("nodo1", 5000))), "nodo1", {}).cluster.access_log is False
    ruta = escribir(CLUSTER + "access_log = true\n" + nodo("nodo1", 5000))
    assert cargar(str(ruta), "nodo1", {}).cluster.access_log is True
    ruta = escribir(CLUSTER + 'access_log = "yes"\n' + nodo("nodo1", 5000))
    assert "access_log must be true or false" in mensaje(ruta)


def test_connection_bounds_have_defaults_and_can_be_set(escribir: Escribir) -> None:
    cluster = cargar(str(escribir(CLUSTER + nodo("nodo1", 5000))), "nodo1", {}).cluster
    assert (cluster.max_connections, cluster.max_header_bytes, cluster.header_timeout_ms) == (1000, 32768, 5000)
    texto = "max_connections = 50\nmax_header_bytes = 8192\nheader_timeout_ms = 750\n"
    cluster = cargar(str(escribir(CLUSTER + texto + nodo("nodo1", 5000))), "nodo1", {}).cluster
    assert (cluster.max_connections, cluster.max_header_bytes, cluster.header_timeout_ms) == (50, 8192, 750)


@pytest.mark.parametrize(
    ("clave", "valor", "dice"),
    [
        ("max_connections", "0", "1-100000"),
        ("max_connections", '"1000"', "1-100000"),
        ("max_header_bytes", "512", "1024-1048576"),
        ("max_header_bytes", "true", "1024-1048576"),
        ("header_timeout_ms", "60001", "100-60000"),
        ("header_timeout_ms", "1.5", "100-60000"),
    ],
)
def test_a_bad_connection_bound_is_refused(escribir: Escribir, clave: str, valor: str, dice: str) -> None:
    ruta = escribir(CLUSTER + f"{clave} = {valor}\n" + nodo("nodo1", 5000))
    assert f"[cluster] {clave} must be an integer {dice}" in mensaje(ruta)


def test_pedidos_clock_offset_ms_shifts_this_nodes_clock_for_tests(escribir: Escribir) -> None:
    ruta = escribir(CLUSTER + nodo("nodo1", 5000))
    assert cargar(str(ruta), "nodo1", {}).desfase_reloj_ms == 0
    assert cargar(str(ruta), "nodo1", {"PEDIDOS_CLOCK_OFFSET_MS": "2500"}).desfase_reloj_ms == 2500
    assert cargar(str(ruta), "nodo1", {"PEDIDOS_CLOCK_OFFSET_MS": "-40"}).desfase_reloj_ms == -40


def test_a_clock_offset_that_is_not_an_integer_is_one_clear_error(escribir: Escribir) -> None:
    ruta = escribir(CLUSTER + nodo("nodo1", 5000))
    assert "PEDIDOS_CLOCK_OFFSET_MS" in mensaje(ruta, {"PEDIDOS_CLOCK_OFFSET_MS": "2s"})


# --- client tokens and the development secret ------------------------------------------

TOKEN = '\n[[tokens]]\nnombre = "tienda"\nrol = "operador"\n'


def test_tokens_are_read_in_plain_or_as_a_sha256_and_kept_as_hashes(escribir: Escribir) -> None:
    hash_ = hashlib.sha256(b"otro-token-de-prueba").hexdigest()
    ruta = escribir(
        CLUSTER
        + nodo("nodo1", 5000)
        + TOKEN
        + 'token = "token-de-la-tienda-0001"\n'
        + f'\n[[tokens]]\nnombre = "panel"\nrol = "lectura"\nsha256 = "{hash_}"\n'
    )
    tokens = cargar(str(ruta), "nodo1", {}).cluster.tokens
    assert [(t.nombre, t.rol.nombre) for t in tokens] == [("tienda", "operador"), ("panel", "lectura")]
    assert tokens[0].sha256 == hashlib.sha256(b"token-de-la-tienda-0001").digest()
    assert tokens[1].sha256 == bytes.fromhex(hash_)


@pytest.mark.parametrize(
    ("resto", "dice"),
    [
        ('token = "corto"\n', "token must be 16+ characters"),
        ('sha256 = "abc"\n', "sha256 must be 64 hex digits"),
        ("", "exactly one of 'token' and 'sha256'"),
        ('token = "token-de-la-tienda-0001"\nsha256 = "' + "0" * 64 + '"\n', "exactly one of"),
    ],
)
def test_a_bad_token_entry_is_named(escribir: Escribir, resto: str, dice: str) -> None:
    assert dice in mensaje(escribir(CLUSTER + nodo("nodo1", 5000) + TOKEN + resto))


def test_an_unknown_role_is_named(escribir: Escribir) -> None:
    texto = (
        CLUSTER + nodo("nodo1", 5000) + '\n[[tokens]]\nnombre = "x"\nrol = "root"\ntoken = "token-de-la-tienda-0001"\n'
    )
    assert "unknown role 'root'" in mensaje(escribir(texto))


def test_the_same_token_twice_is_refused(escribir: Escribir) -> None:
    uno = '\n[[tokens]]\nnombre = "a"\nrol = "admin"\ntoken = "token-de-la-tienda-0001"\n'
    assert "same token" in mensaje(escribir(CLUSTER + nodo("nodo1", 5000) + uno + uno.replace('"a"', '"b"')))


DESARROLLO = '[cluster]\nname = "pedidos"\nsecret = "dev-secret-change-me"\n'
TOKEN_DESARROLLO = '\n[[tokens]]\nnombre = "desarrollo"\nrol = "admin"\ntoken = "dev-token-change-me"\n'


@pytest.mark.parametrize("host", ["0.0.0.0", "10.0.0.7", "pedidos.example.com"])
def test_a_node_off_loopback_refuses_the_development_secret(escribir: Escribir, host: str) -> None:
    texto = mensaje(escribir(DESARROLLO + nodo("nodo1", 5000, host=host)))
    assert f"listens on {host}, not loopback" in texto and "development one: set PEDIDOS_SECRET" in texto


def test_a_node_off_loopback_refuses_the_development_token(escribir: Escribir) -> None:
    texto = mensaje(escribir(CLUSTER + nodo("nodo1", 5000, host="0.0.0.0") + TOKEN_DESARROLLO))
    assert "token 'desarrollo' is the development one" in texto


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_a_node_on_loopback_may_use_the_development_secret_and_token(escribir: Escribir, host: str) -> None:
    ajustes = cargar(str(escribir(DESARROLLO + nodo("nodo1", 5000, host=host) + TOKEN_DESARROLLO)), "nodo1", {})
    assert ajustes.cluster.secret == "dev-secret-change-me"


def test_a_real_secret_from_the_environment_lets_a_node_off_loopback_start(escribir: Escribir) -> None:
    ruta = escribir(DESARROLLO + nodo("nodo1", 5000, host="0.0.0.0"))
    assert cargar(str(ruta), "nodo1", {"PEDIDOS_SECRET": "un-secreto-de-verdad"}).nodo.host == "0.0.0.0"


def test_the_shipped_settings_hold_the_development_token_for_loopback_nodes() -> None:
    cluster = cargar_cluster(Path(__file__).resolve().parents[2] / "settings.toml", {})
    assert [t.rol.nombre for t in cluster.tokens] == ["admin"]
    assert cluster.tokens[0].sha256 == hashlib.sha256(b"dev-token-change-me").digest()
    assert all(n.host == "127.0.0.1" for n in cluster.nodes)
