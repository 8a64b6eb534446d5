"""Tokens and roles: who a header names, and what a role may do."""

from __future__ import annotations

import pytest

from servidor.acceso import Identidad, Rol, Token, exigir, identificar
from servidor.errores import NoAutenticado, Prohibido

TOKENS = (
    Token.desde_texto("tienda", "token-de-la-tienda-0001", Rol.OPERADOR),
    Token.desde_texto("panel", "token-del-panel-000001", Rol.LECTURA),
)


def test_a_known_bearer_token_names_its_owner_and_role() -> None:
    assert identificar(TOKENS, "Bearer token-del-panel-000001") == Identidad("panel", Rol.LECTURA)
    assert identificar(TOKENS, "bearer   token-de-la-tienda-0001 ") == Identidad("tienda", Rol.OPERADOR)


@pytest.mark.parametrize(
    "cabecera",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Basic dG9rZW4=",
        "token-del-panel-000001",
        "Bearer token-ajeno",
        "Bearer " + "x" * 600,
    ],
)
def test_a_missing_malformed_or_unknown_token_is_not_authenticated(cabecera: str | None) -> None:
    with pytest.raises(NoAutenticado) as e:
        identificar(TOKENS, cabecera)
    assert e.value.estado_http == 401 and e.value.codigo == "NO_AUTENTICADO"
    assert ("WWW-Authenticate", 'Bearer realm="pedidos"') in e.value.cabeceras


def test_no_token_is_valid_when_the_settings_declare_none() -> None:
    with pytest.raises(NoAutenticado):
        identificar((), "Bearer token-del-panel-000001")


def test_a_token_is_kept_only_as_its_hash() -> None:
    assert all(b"token" not in t.sha256 and len(t.sha256) == 32 for t in TOKENS)


@pytest.mark.parametrize(
    ("rol", "necesita", "puede"),
    [
        (Rol.LECTURA, Rol.LECTURA, True),
        (Rol.LECTURA, Rol.OPERADOR, False),
        (Rol.OPERADOR, Rol.OPERADOR, True),
        (Rol.OPERADOR, Rol.ADMIN, False),
        (Rol.ADMIN, Rol.LECTURA, True),
        (Rol.ADMIN, Rol.ADMIN, True),
    ],
)
def test_each_role_may_do_what_the_roles_below_it_may(rol: Rol, necesita: Rol, puede: bool) -> None:
    if puede:
        exigir(Identidad("x", rol), necesita)
        return
    with pytest.raises(Prohibido) as e:
        exigir(Identidad("x", rol), necesita)
    assert e.value.estado_http == 403
    assert e.value.detalle == {"rol": rol.nombre, "necesita": necesita.nombre}


def test_roles_are_read_by_their_spanish_names() -> None:
    assert [Rol.desde(n) for n in ("lectura", "operador", "admin")] == [Rol.LECTURA, Rol.OPERADOR, Rol.ADMIN]
    with pytest.raises(ValueError, match="unknown role 'root'"):
        Rol.desde("root")
