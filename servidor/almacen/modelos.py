"""Tables of a node's database (SQLAlchemy Core).

``cambios`` is the truth: the change log, one row per change, gap-free per
origin. Every other table is materialized from it by ``apply``:

- ``clientes``, ``productos``, ``pedidos``, ``pedido_items``, ``ajustes``: the
  rows the API reads; ``productos.stock``, ``por_devolver`` and
  ``por_confirmar`` are derived from the counters and the movements, and
  ``pedidos.eliminado`` from ``estado`` and ``eliminado_en`` (see
  ``sync.reglas``).
- ``movimientos``: units each node moved for each entity (an order's items
  as each creation of it sold them, a keyed adjustment's units); what the
  entity's state credits back lands in ``contadores_stock.devueltas``.
- ``escrituras``: every write of an order's ``estado`` (with what its writer
  had seen) and of an entity's ``huella`` (a keyed creation), to find the
  concurrent pairs that ``conflictos`` lists.
- ``sellos``: the winning stamp of every last-writer-wins field.
- ``contadores_stock``: each origin's grow-only entries per product, and
  ``devueltas``, the units the state of entities credits to it (derived).
- ``cesiones_stock``: rights to units each origin transferred to each other
  node, per product (grow-only; see ``sync.reglas``).
- ``conflictos``: concurrent ``estado`` writes, derived from the log, so every
  node lists the same clashes.
- ``estado_nodo``: this node's HLC high-water mark and next local ``seq``.

``database.sql`` creates the same schema for MySQL/MariaDB; a test compares
the two.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    false,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

metadata = MetaData()

# Binary collation: ids and origins compare byte for byte, as in SQLite and Python.
# Every table is clustered on its primary key, as InnoDB always is: on SQLite (WITHOUT
# ROWID) a row is one B-tree entry instead of a rowid row plus a primary key index entry,
# which halves the work of the inserts a merge is made of.
OPCIONES: dict[str, Any] = {
    "mysql_engine": "InnoDB",
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_bin",
    "sqlite_with_rowid": False,
}

ID = String(64)
# The table of each entity of the change vocabulary that has rows of its own.
TABLAS = {"cliente": "clientes", "producto": "productos", "pedido": "pedidos", "ajuste": "ajustes"}


class Dinero(TypeDecorator[Decimal]):
    """Exact money: DECIMAL(12,2) on MySQL; text on SQLite, whose NUMERIC is a float."""

    impl = Numeric(12, 2)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(32))
        return dialect.type_descriptor(Numeric(12, 2))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        d = Decimal(value).quantize(Decimal("0.01"))
        return str(d) if dialect.name == "sqlite" else d

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        return None if value is None else Decimal(value).quantize(Decimal("0.01"))


DINERO = Dinero()

clientes = Table(
    "clientes",
    metadata,
    Column("id", ID, primary_key=True),
    Column("nombre", String(2000)),
    Column("email", String(2000)),
    Column("telefono", String(2000)),
    Column("direccion", String(2000)),
    Column("creado_en", String(40)),
    Column("eliminado", Boolean, nullable=False, server_default=false()),
    Column("huella", String(64)),
    **OPCIONES,
)

productos = Table(
    "productos",
    metadata,
    Column("id", ID, primary_key=True),
    Column("nombre", String(2000)),
    Column("descripcion", String(2000)),
    Column("precio", DINERO),
    Column("stock", BigInteger, nullable=False, server_default=text("0")),
    Column("por_devolver", BigInteger, nullable=False, server_default=text("0")),
    Column("por_confirmar", BigInteger, nullable=False, server_default=text("0")),
    Column("creado_en", String(40)),
    Column("huella", String(64)),
    **OPCIONES,
)

pedidos = Table(
    "pedidos",
    metadata,
    Column("id", ID, primary_key=True),
    Column("cliente_id", ID),
    Column("estado", String(16)),
    Column("total", DINERO),
    Column("creado_en", String(40)),
    Column("nodo_origen", ID),
    Column("eliminado_en", String(16)),
    Column("devuelto", Boolean, nullable=False, server_default=false()),
    Column("huella", String(64)),
    # Derived: hidden by a delete (see sync.reglas.oculto), what every reader filters on.
    Column("eliminado", Boolean, nullable=False, server_default=false()),
    Index("ix_pedidos_estado", "estado", "devuelto"),
    Index("ix_pedidos_cliente_id", "cliente_id"),
    **OPCIONES,
)

pedido_items = Table(
    "pedido_items",
    metadata,
    Column("pedido_id", ID, primary_key=True),
    Column("linea", Integer, primary_key=True, autoincrement=False),
    Column("producto_id", ID, nullable=False),
    Column("cantidad", BigInteger, nullable=False),
    Column("precio_unitario", DINERO, nullable=False),
    Column("subtotal", DINERO, nullable=False),
    Index("ix_pedido_items_producto_id", "producto_id"),
    **OPCIONES,
)

cambios = Table(
    "cambios",
    metadata,
    Column("origen", ID, primary_key=True),
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("hlc", BigInteger, nullable=False),
    Column("entidad", String(16), nullable=False),
    Column("clave", ID, nullable=False),
    Column("campo", String(32), nullable=False),
    Column("valor", Text, nullable=False),
    Column("base", String(2000)),
    **OPCIONES,
)

ajustes = Table(
    "ajustes",
    metadata,
    Column("id", ID, primary_key=True),
    Column("producto_id", ID),
    Column("cantidad", BigInteger),
    Column("creado_en", String(40)),
    Column("firme", ID),  # the node whose creation counts, once settled
    Column("huella", String(64)),
    Index("ix_ajustes_producto_id", "producto_id"),
    **OPCIONES,
)

movimientos = Table(
    "movimientos",
    metadata,
    Column("entidad", String(16), primary_key=True),
    Column("clave", ID, primary_key=True),
    Column("nodo", ID, primary_key=True),
    Column("producto_id", ID, primary_key=True),
    Column("unidades", BigInteger, nullable=False),
    Index("ix_movimientos_producto_id", "producto_id"),
    **OPCIONES,
)

escrituras = Table(
    "escrituras",
    metadata,
    Column("entidad", String(16), primary_key=True),
    Column("clave", ID, primary_key=True),
    Column("campo", String(32), primary_key=True),
    Column("origen", ID, primary_key=True),
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("hlc", BigInteger, nullable=False),
    Column("valor", String(64), nullable=False),
    Column("base", String(2000), nullable=False),
    **OPCIONES,
)

sellos = Table(
    "sellos",
    metadata,
    Column("entidad", String(16), primary_key=True),
    Column("clave", ID, primary_key=True),
    Column("campo", String(32), primary_key=True),
    Column("hlc", BigInteger, nullable=False),
    Column("origen", ID, nullable=False),
    **OPCIONES,
)

contadores_stock = Table(
    "contadores_stock",
    metadata,
    Column("producto_id", ID, primary_key=True),
    Column("nodo", ID, primary_key=True),
    Column("entradas", BigInteger, nullable=False, server_default=text("0")),
    Column("salidas", BigInteger, nullable=False, server_default=text("0")),
    Column("devueltas", BigInteger, nullable=False, server_default=text("0")),
    **OPCIONES,
)

cesiones_stock = Table(
    "cesiones_stock",
    metadata,
    Column("producto_id", ID, primary_key=True),
    Column("origen", ID, primary_key=True),
    Column("destino", ID, primary_key=True),
    Column("unidades", BigInteger, nullable=False),
    **OPCIONES,
)

conflictos = Table(
    "conflictos",
    metadata,
    Column("entidad", String(16), primary_key=True),
    Column("pedido_id", ID, primary_key=True),  # the entity's id
    Column("campo", String(32), primary_key=True),
    Column("ganador", String(100), primary_key=True),
    Column("perdedor", String(100), primary_key=True),
    Column("valor_ganador", Text, nullable=False),
    Column("valor_perdedor", Text, nullable=False),
    Column("base", String(2000), nullable=False),
    **OPCIONES,
)

estado_nodo = Table(
    "estado_nodo",
    metadata,
    Column("nodo_id", ID, primary_key=True),
    Column("hlc", BigInteger, nullable=False),
    Column("siguiente_seq", BigInteger, nullable=False),
    **OPCIONES,
)
