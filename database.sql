-- pedidos: the MySQL/MariaDB schema of one node's database.
--
-- Each node keeps its own database; this file creates its tables. It is kept
-- identical to the SQLAlchemy models in servidor/almacen/modelos.py, and
-- tests/integration/test_database_sql.py proves it: change one, change both.
--
-- Load it into an empty (or existing) database with the mysql client:
--
--     mysql -u USER -p DBNAME < database.sql
--
-- Every statement is CREATE TABLE IF NOT EXISTS, with the indexes declared
-- inside the table, so loading the file again changes nothing. A node also
-- creates any missing table itself when it starts, so loading this file is
-- optional; it is for operators who create schemas by hand.
--
-- Every table is InnoDB, utf8mb4 with the binary collation utf8mb4_bin: ids,
-- origins and field names compare byte for byte, as they do in SQLite and in
-- Python, so every node orders and matches them the same way.
--
-- The change log (cambios) is the truth. The other tables are materialized
-- from it by the store's single write path (apply) and could be rebuilt by
-- replaying the log; only estado_nodo, the node's own counters, is not.


-- The change log: one row per change, (origen, seq) gap-free per origin node.
-- valor is the JSON-encoded new value; base, on an order's estado writes only,
-- is what the writer had seen of the order's earlier estado writes.
CREATE TABLE IF NOT EXISTS cambios (
    origen   VARCHAR(64)  NOT NULL,
    seq      BIGINT       NOT NULL,
    hlc      BIGINT       NOT NULL,
    entidad  VARCHAR(16)  NOT NULL,
    clave    VARCHAR(64)  NOT NULL,
    campo    VARCHAR(32)  NOT NULL,
    valor    TEXT         NOT NULL,
    base     VARCHAR(2000),
    PRIMARY KEY (origen, seq)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;


-- Customers as the API reads them (materialized).
CREATE TABLE IF NOT EXISTS clientes (
    id         VARCHAR(64)   NOT NULL,
    nombre     VARCHAR(2000),
    email      VARCHAR(2000),
    telefono   VARCHAR(2000),
    direccion  VARCHAR(2000),
    creado_en  VARCHAR(40),
    eliminado  BOOLEAN       NOT NULL DEFAULT FALSE,
    huella     VARCHAR(64),
    PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;


-- Products as the API reads them (materialized). stock, por_devolver and
-- por_confirmar are derived from contadores_stock and movimientos, never
-- written on their own. huella: fingerprint of a keyed creation's request.
CREATE TABLE IF NOT EXISTS productos (
    id           VARCHAR(64)    NOT NULL,
    nombre       VARCHAR(2000),
    descripcion  VARCHAR(2000),
    precio       DECIMAL(12,2),
    stock          BIGINT         NOT NULL DEFAULT 0,
    por_devolver   BIGINT         NOT NULL DEFAULT 0,
    por_confirmar  BIGINT         NOT NULL DEFAULT 0,
    creado_en    VARCHAR(40),
    huella       VARCHAR(64),
    PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;


-- Orders as the API reads them (materialized). eliminado is derived: a delete
-- (eliminado_en, the estado it saw) hides the order unless it went further.
CREATE TABLE IF NOT EXISTS pedidos (
    id           VARCHAR(64)    NOT NULL,
    cliente_id   VARCHAR(64),
    estado       VARCHAR(16),
    total        DECIMAL(12,2),
    creado_en    VARCHAR(40),
    nodo_origen  VARCHAR(64),
    eliminado_en VARCHAR(16),
    devuelto     BOOLEAN        NOT NULL DEFAULT FALSE,
    huella       VARCHAR(64),
    eliminado    BOOLEAN        NOT NULL DEFAULT FALSE,
    PRIMARY KEY (id),
    INDEX ix_pedidos_estado (estado, devuelto),
    INDEX ix_pedidos_cliente_id (cliente_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;


-- The lines of each order (materialized from the order's items change).
CREATE TABLE IF NOT EXISTS pedido_items (
    pedido_id        VARCHAR(64)    NOT NULL,
    linea            INT            NOT NULL,
    producto_id      VARCHAR(64)    NOT NULL,
    cantidad         BIGINT         NOT NULL,
    precio_unitario  DECIMAL(12,2)  NOT NULL,
    subtotal         DECIMAL(12,2)  NOT NULL,
    PRIMARY KEY (pedido_id, linea),
    INDEX ix_pedido_items_producto_id (producto_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;


-- Stock adjustments made with an idempotency key (materialized). firme, once
-- settled: the node whose creation of the adjustment counts.
CREATE TABLE IF NOT EXISTS ajustes (
    id           VARCHAR(64)  NOT NULL,
    producto_id  VARCHAR(64),
    cantidad     BIGINT,
    creado_en    VARCHAR(40),
    firme        VARCHAR(64),
    huella       VARCHAR(64),
    PRIMARY KEY (id),
    INDEX ix_ajustes_producto_id (producto_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;


-- Units each node moved for an entity: an order's items as each creation of
-- it sold them (negative), a keyed adjustment's units. What the entity's state
-- credits back is summed into contadores_stock.devueltas.
CREATE TABLE IF NOT EXISTS movimientos (
    entidad      VARCHAR(16)  NOT NULL,
    clave        VARCHAR(64)  NOT NULL,
    nodo         VARCHAR(64)  NOT NULL,
    producto_id  VARCHAR(64)  NOT NULL,
    unidades     BIGINT       NOT NULL,
    PRIMARY KEY (entidad, clave, nodo, producto_id),
    INDEX ix_movimientos_producto_id (producto_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;


-- Every write of an order's estado (with what its writer had seen, base) and
-- of an entity's huella (a keyed creation), so that concurrent pairs are found.
CREATE TABLE IF NOT EXISTS escrituras (
    entidad    VARCHAR(16)    NOT NULL,
    clave      VARCHAR(64)    NOT NULL,
    campo      VARCHAR(32)    NOT NULL,
    origen     VARCHAR(64)    NOT NULL,
    seq        BIGINT         NOT NULL,
    hlc        BIGINT         NOT NULL,
    valor      VARCHAR(64)    NOT NULL,
    base       VARCHAR(2000)  NOT NULL,
    PRIMARY KEY (entidad, clave, campo, origen, seq)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;


-- The winning stamp (hlc, origen) of every last-writer-wins field, so a
-- change is applied only if it beats the stamp already here.
CREATE TABLE IF NOT EXISTS sellos (
    entidad  VARCHAR(16)  NOT NULL,
    clave    VARCHAR(64)  NOT NULL,
    campo    VARCHAR(32)  NOT NULL,
    hlc      BIGINT       NOT NULL,
    origen   VARCHAR(64)  NOT NULL,
    PRIMARY KEY (entidad, clave, campo)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;


-- The stock counter: each origin node's grow-only entries per product
-- (units it added, units it sold); merging takes the max of each entry.
-- devueltas (derived) are the units the state of entities credits to the node.
CREATE TABLE IF NOT EXISTS contadores_stock (
    producto_id  VARCHAR(64)  NOT NULL,
    nodo         VARCHAR(64)  NOT NULL,
    entradas     BIGINT       NOT NULL DEFAULT 0,
    salidas      BIGINT       NOT NULL DEFAULT 0,
    devueltas    BIGINT       NOT NULL DEFAULT 0,
    PRIMARY KEY (producto_id, nodo)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Rights to units of a product that origen transferred to destino so far
-- (grow-only, merged by max). A node's rights are its entradas − salidas +
-- devueltas plus what it received minus what it gave; they sum to the stock.
CREATE TABLE IF NOT EXISTS cesiones_stock (
    producto_id  VARCHAR(64)  NOT NULL,
    origen       VARCHAR(64)  NOT NULL,
    destino      VARCHAR(64)  NOT NULL,
    unidades     BIGINT       NOT NULL,
    PRIMARY KEY (producto_id, origen, destino)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;


-- Concurrent writes of an order's estado, and creations of one id from two
-- requests (campo huella), derived from the log so that every node lists the
-- same clashes; ganador and perdedor are the two stamps.
CREATE TABLE IF NOT EXISTS conflictos (
    entidad         VARCHAR(16)   NOT NULL,
    pedido_id       VARCHAR(64)   NOT NULL,
    campo           VARCHAR(32)   NOT NULL,
    ganador         VARCHAR(100)  NOT NULL,
    perdedor        VARCHAR(100)  NOT NULL,
    valor_ganador   TEXT          NOT NULL,
    valor_perdedor  TEXT          NOT NULL,
    base            VARCHAR(2000) NOT NULL,
    PRIMARY KEY (entidad, pedido_id, campo, ganador, perdedor)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;


-- This node's own bookkeeping, not replicated: the highest HLC stamp it has
-- issued (so a restart never goes backwards) and its next local seq.
CREATE TABLE IF NOT EXISTS estado_nodo (
    nodo_id        VARCHAR(64)  NOT NULL,
    hlc            BIGINT       NOT NULL,
    siguiente_seq  BIGINT       NOT NULL,
    PRIMARY KEY (nodo_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
