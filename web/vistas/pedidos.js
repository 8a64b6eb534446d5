// Pedidos: the list (filtered by estado and cliente), new orders, estado changes, deletes.

import {
  ESTADOS, avisos, botonEliminar, corto, dinero, ejecutar, el, fecha, nombreEstado, rellenarSelect, sincronizarFilas,
} from "./comun.js";

// Only the legal transitions are offered (the server checks them again).
const SIGUIENTES = {
  PENDIENTE: ["CONFIRMADO", "CANCELADO"],
  CONFIRMADO: ["ENVIADO", "CANCELADO"],
  ENVIADO: ["ENTREGADO"],
  ENTREGADO: [],
  CANCELADO: [],
};
const VERBOS = { CONFIRMADO: "Confirmar", ENVIADO: "Enviar", ENTREGADO: "Entregar", CANCELADO: "Cancelar" };

const LISTA = `query Pedidos($estado: EstadoPedido, $clienteId: ID) {
  clientes { id nombre }
  productos { id nombre precio stock }
  pedidos(estado: $estado, clienteId: $clienteId) {
    id clienteId estado total creadoEn nodoOrigen
    cliente { nombre }
    items { productoId cantidad producto { nombre } }
  }
}`;
const CREAR = `mutation Crear($datos: PedidoEntrada!, $clave: String) {
  crearPedido(datos: $datos, claveIdempotencia: $clave) { id total } }`;
const CAMBIAR = `mutation Cambiar($id: ID!, $estado: EstadoPedido!) { cambiarEstadoPedido(id: $id, estado: $estado) { id estado } }`;
const ELIMINAR = `mutation Eliminar($id: ID!) { eliminarPedido(id: $id) }`;

export function crearVista(conexion) {
  const aviso = avisos();
  let productos = [];

  // --- filters
  const filtroEstado = el("select", { name: "estado", onchange: () => recargarConAviso() });
  rellenarSelect(filtroEstado, ESTADOS.map((e) => [e, nombreEstado(e)]), "Todos");
  const filtroCliente = el("select", { name: "cliente", onchange: () => recargarConAviso() });
  const filtros = el(
    "form",
    { class: "filtros", "aria-label": "Filtros", onsubmit: (e) => e.preventDefault() },
    el("label", {}, "Estado", filtroEstado),
    el("label", {}, "Cliente", filtroCliente),
  );

  // --- the new-order form: a client and one line per product
  const cliente = el("select", { name: "cliente", required: true });
  const lineas = el("div", { class: "lineas" });
  const crear = el("button", { type: "submit" }, "Crear pedido");
  const formulario = el(
    "form",
    { class: "formulario", "aria-label": "Nuevo pedido" },
    el("h3", {}, "Nuevo pedido"),
    el("label", {}, "Cliente", cliente),
    lineas,
    el("div", { class: "acciones" }, el("button", { type: "button", onclick: () => anadirLinea() }, "Añadir producto"), crear),
  );

  function anadirLinea() {
    const producto = el("select", { name: "producto", required: true, "aria-label": "Producto" });
    rellenarSelect(producto, opcionesProducto(), "Elija un producto");
    const linea = el(
      "div",
      { class: "linea" },
      el("label", {}, "Producto", producto),
      el("label", {}, "Cantidad", el("input", { name: "cantidad", type: "number", min: 1, step: 1, value: 1, required: true })),
      el("button", { type: "button", class: "quitar", onclick: () => lineas.children.length > 1 && linea.remove() }, "Quitar"),
    );
    lineas.append(linea);
  }
  const opcionesProducto = () => productos.map((p) => [p.id, `${p.nombre} — ${dinero(p.precio)} (${p.stock} en stock)`]);

  formulario.addEventListener("submit", (evento) => {
    evento.preventDefault();
    const items = [...lineas.children].map((linea) => ({
      productoId: linea.querySelector("select").value,
      cantidad: Number(linea.querySelector("input").value),
    }));
    ejecutar(crear, aviso, async () => {
      const r = await conexion.consultar(CREAR, { datos: { clienteId: cliente.value, items }, clave: crypto.randomUUID() });
      formulario.reset();
      lineas.replaceChildren();
      anadirLinea();
      await recargar();
      return `Pedido ${corto(r.crearPedido.id)} creado: total ${dinero(r.crearPedido.total)}.`;
    });
  });

  // --- the list
  const tbody = el("tbody");
  const cabeceras = ["Pedido", "Cliente", "Productos", "Total", "Estado", "Creado", "Nodo", "Acciones"];
  const tabla = el(
    "table",
    { "aria-label": "Pedidos" },
    el("thead", {}, el("tr", {}, ...cabeceras.map((t) => el("th", {}, t)))),
    tbody,
  );

  function crearFila() {
    return el("tr", {}, ...cabeceras.map(() => el("td")));
  }

  function actualizarFila(tr, p) {
    const c = tr.cells;
    c[0].textContent = corto(p.id);
    c[0].title = p.id;
    c[1].textContent = p.cliente?.nombre ?? `(cliente ${corto(p.clienteId)} eliminado)`;
    c[2].textContent = p.items.map((i) => `${i.cantidad} × ${i.producto?.nombre ?? corto(i.productoId)}`).join(", ");
    c[3].textContent = dinero(p.total);
    c[3].className = "numero";
    c[4].textContent = nombreEstado(p.estado);
    c[4].className = `estado ${p.estado.toLowerCase()}`;
    c[5].textContent = fecha(p.creadoEn);
    c[5].className = "fecha";
    c[6].textContent = p.nodoOrigen;
    if (tr.dataset.estado !== p.estado) {
      tr.dataset.estado = p.estado;
      c[7].replaceChildren(...acciones(p));
      c[7].className = "acciones";
    }
  }

  function acciones(p) {
    const botones = SIGUIENTES[p.estado].map((destino) => {
      const b = el("button", { type: "button", class: destino === "CANCELADO" ? "peligro" : "" }, VERBOS[destino]);
      b.addEventListener("click", () =>
        ejecutar(b, aviso, async () => {
          const r = await conexion.consultar(CAMBIAR, { id: p.id, estado: destino });
          await recargar();
          return `Pedido ${corto(p.id)}: ${nombreEstado(r.cambiarEstadoPedido.estado)}.`;
        }),
      );
      return b;
    });
    const eliminar = botonEliminar("Eliminar", () =>
      ejecutar(eliminar, aviso, async () => {
        await conexion.consultar(ELIMINAR, { id: p.id });
        await recargar();
        return `Pedido ${corto(p.id)} eliminado.`;
      }),
    );
    return [...botones, eliminar];
  }

  const elemento = el(
    "section",
    { id: "vista-pedidos" },
    el("h2", {}, "Pedidos"),
    formulario,
    aviso.nodo,
    filtros,
    tabla,
  );

  async function recargar() {
    const variables = { estado: filtroEstado.value || null, clienteId: filtroCliente.value || null };
    const datos = await conexion.consultar(LISTA, variables);
    productos = datos.productos;
    const clientes = datos.clientes.map((c) => [c.id, c.nombre]);
    rellenarSelect(cliente, clientes, "Elija un cliente");
    rellenarSelect(filtroCliente, clientes, "Todos");
    if (!lineas.children.length) anadirLinea();
    for (const select of lineas.querySelectorAll("select")) rellenarSelect(select, opcionesProducto(), "Elija un producto");
    sincronizarFilas(tbody, [...datos.pedidos].reverse(), crearFila, actualizarFila, "No hay pedidos.");
  }

  async function recargarConAviso() {
    try {
      await recargar();
    } catch (e) {
      aviso.error(e);
    }
  }

  return { titulo: "Pedidos", elemento, recargar, aviso };
}
