// Productos: live stock and each node's rights to it, create, restock (ajustarStock),
// price edits (actualizarProducto).

import { avisos, dinero, ejecutar, el, refrescarCampo, sincronizarFilas } from "./comun.js";

const CAMPOS = "id nombre descripcion precio stock porDevolver porConfirmar derechos { nodo unidades }";
const LISTA = `{ productos { ${CAMPOS} } }`;
const CREAR = `mutation Crear($datos: ProductoEntrada!, $clave: String) {
  crearProducto(datos: $datos, claveIdempotencia: $clave) { ${CAMPOS} } }`;
const PRECIO = `mutation Precio($id: ID!, $precio: Decimal!) {
  actualizarProducto(id: $id, datos: {precio: $precio}) { ${CAMPOS} } }`;
// Restocks go without a key: a keyed addition counts only once every node has it, and the
// person restocking wants to see the units at once. A create carries one (see graphql.js).
const STOCK = `mutation Stock($productoId: ID!, $cantidad: Int!) {
  ajustarStock(productoId: $productoId, cantidad: $cantidad) { ${CAMPOS} } }`;

export function crearVista(conexion) {
  const aviso = avisos();
  const crear = el("button", { type: "submit" }, "Crear producto");
  const formulario = el(
    "form",
    { class: "formulario", "aria-label": "Producto" },
    el("h3", {}, "Nuevo producto"),
    el("label", {}, "Nombre", el("input", { name: "nombre", required: true })),
    el("label", {}, "Descripción", el("input", { name: "descripcion" })),
    el("label", {}, "Precio (€)", el("input", { name: "precio", inputmode: "decimal", required: true, placeholder: "4.50" })),
    el("label", {}, "Stock inicial", el("input", { name: "stock", type: "number", min: 0, step: 1, value: 0 })),
    el("div", { class: "acciones" }, crear),
  );
  const tbody = el("tbody");
  const cabeceras = ["Nombre", "Descripción", "Precio", "Stock", "Derechos por nodo", "Reponer"];
  const tabla = el(
    "table",
    { "aria-label": "Productos" },
    el("thead", {}, el("tr", {}, ...cabeceras.map((t) => el("th", {}, t)))),
    tbody,
  );
  const elemento = el("section", { id: "vista-productos" }, el("h2", {}, "Productos"), formulario, aviso.nodo, tabla);

  formulario.addEventListener("submit", (evento) => {
    evento.preventDefault();
    const f = formulario.elements;
    const datos = { nombre: f.nombre.value.trim(), precio: f.precio.value.trim().replace(",", ".") };
    if (f.descripcion.value.trim()) datos.descripcion = f.descripcion.value.trim();
    if (f.stock.value !== "") datos.stock = Number(f.stock.value);
    ejecutar(crear, aviso, async () => {
      const r = await conexion.consultar(CREAR, { datos, clave: crypto.randomUUID() });
      formulario.reset();
      await recargar();
      return `Producto ${r.crearProducto.nombre} creado.`;
    });
  });

  function crearFila() {
    const tr = el("tr");
    const precio = el("input", { class: "precio", inputmode: "decimal", "aria-label": "Precio", size: 7 });
    const guardar = el("button", { type: "button" }, "Guardar precio");
    guardar.addEventListener("click", () =>
      ejecutar(guardar, aviso, async () => {
        const r = await conexion.consultar(PRECIO, { id: tr.dataset.id, precio: precio.value.trim().replace(",", ".") });
        precio.dataset.original = precio.value = r.actualizarProducto.precio;
        await recargar();
        return `Precio de ${r.actualizarProducto.nombre}: ${dinero(r.actualizarProducto.precio)}.`;
      }),
    );
    const cantidad = el("input", { class: "cantidad", type: "number", step: 1, value: 10, "aria-label": "Unidades" });
    const reponer = el("button", { type: "button" }, "Reponer");
    reponer.addEventListener("click", () =>
      ejecutar(reponer, aviso, async () => {
        const r = await conexion.consultar(STOCK, { productoId: tr.dataset.id, cantidad: Number(cantidad.value) });
        await recargar();
        return `Stock de ${r.ajustarStock.nombre}: ${r.ajustarStock.stock} unidades.`;
      }),
    );
    tr.append(
      el("td"),
      el("td"),
      el("td", { class: "acciones" }, precio, guardar),
      el("td", { class: "numero stock" }),
      el("td", { class: "derechos" }),
      el("td", { class: "acciones" }, cantidad, reponer),
    );
    return tr;
  }

  function actualizarFila(tr, producto) {
    tr.cells[0].textContent = producto.nombre;
    tr.cells[1].textContent = producto.descripcion ?? "";
    refrescarCampo(tr.cells[2].querySelector("input"), producto.precio);
    // Units apart: of cancelled orders, and keyed restocks, until every node has them.
    const aparte = [
      producto.porDevolver ? `${producto.porDevolver} por devolver` : "",
      producto.porConfirmar ? `${producto.porConfirmar} por confirmar` : "",
    ].filter(Boolean);
    tr.cells[3].textContent = aparte.length ? `${producto.stock} (+${aparte.join(", ")})` : String(producto.stock);
    // Units each node may sell on its own (escrow); they add up to the stock.
    tr.cells[4].textContent = producto.derechos.map((d) => `${d.nodo}: ${d.unidades}`).join(" · ");
    tr.classList.toggle("agotado", producto.stock <= 0);
  }

  async function recargar() {
    const { productos } = await conexion.consultar(LISTA);
    sincronizarFilas(tbody, productos, crearFila, actualizarFila, "No hay productos.");
  }

  return { titulo: "Productos", elemento, recargar, aviso };
}
