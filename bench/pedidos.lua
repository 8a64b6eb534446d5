-- wrk script for bench/tasa.py: POSTs that each create an order of one unit,
-- rotating over the clients and products listed in the environment.
--   BENCH_MODO      rest | graphql | eco (the bare endpoint: the REST body, echoed)
--   BENCH_CLIENTES  comma-separated client ids
--   BENCH_PRODUCTOS comma-separated product ids
--   BENCH_TOKEN     the bearer token to send
-- A reply that is not 2xx, or a GraphQL reply with "errors", counts as bad;
-- done() prints "BENCH malas=N" for the caller to read.

local function lista(nombre)
  local t = {}
  for id in string.gmatch(os.getenv(nombre) or "x", "[^,]+") do
    table.insert(t, id)
  end
  return t
end

local modo = os.getenv("BENCH_MODO") or "rest"
local clientes, productos = lista("BENCH_CLIENTES"), lista("BENCH_PRODUCTOS")
local hilos = {}

function setup(hilo)
  table.insert(hilos, hilo)
end

function init(args)
  malas = 0
  i = 0
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer " .. (os.getenv("BENCH_TOKEN") or "")
end

function request()
  i = i + 1
  local c, p = clientes[i % #clientes + 1], productos[i % #productos + 1]
  local cuerpo
  if modo == "graphql" then
    cuerpo = string.format(
      '{"query":"mutation($d: PedidoEntrada!) { crearPedido(datos: $d) { id } }",'
        .. '"variables":{"d":{"clienteId":"%s","items":[{"productoId":"%s","cantidad":1}]}}}',
      c, p)
  else
    cuerpo = string.format('{"cliente_id":"%s","items":[{"producto_id":"%s","cantidad":1}]}', c, p)
  end
  return wrk.format(nil, nil, nil, cuerpo)
end

function response(estado, cabeceras, cuerpo)
  if estado >= 300 or string.find(cuerpo, '"errors"', 1, true) then
    malas = malas + 1
  end
end

function done(resumen, latencia, peticiones)
  local total = 0
  for _, hilo in ipairs(hilos) do
    total = total + hilo:get("malas")
  end
  io.write(string.format("BENCH malas=%d\n", total))
end
