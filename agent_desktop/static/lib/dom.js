// Small DOM helpers shared by the pages (no framework: the screens are simple enough).

/** The element with `data-testid` = id (the pages use test ids as their stable hooks too). */
export function byTestId(id, root = document) {
  return root.querySelector(`[data-testid="${CSS.escape(id)}"]`);
}

/**
 * Create an element: el("td", {testid: "x", class: "num", dataset: {state}}, "text", child).
 * Attributes named on* are not supported on purpose: listeners are added with addEventListener.
 */
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "testid") node.dataset.testid = value;
    else if (name === "class") node.className = value;
    else if (name === "dataset") Object.assign(node.dataset, value);
    else if (name === "text") node.textContent = value;
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** Set the text of the element with test id `id` (when the element exists). */
export function setText(id, text, root = document) {
  const node = byTestId(id, root);
  if (node) node.textContent = text ?? "";
  return node;
}

/** Show or hide an element by test id. */
export function show(id, visible, root = document) {
  const node = byTestId(id, root);
  if (node) node.hidden = !visible;
  return node;
}

/** Seconds since an RFC 3339 time (null when unknown). */
export function secondsSince(time, now = Date.now()) {
  if (!time) return null;
  const at = Date.parse(time);
  return Number.isNaN(at) ? null : Math.max(0, (now - at) / 1000);
}

/** Seconds until an RFC 3339 time (null when unknown). */
export function secondsUntil(time, now = Date.now()) {
  if (!time) return null;
  const at = Date.parse(time);
  return Number.isNaN(at) ? null : Math.max(0, (at - now) / 1000);
}

/**
 * Make `parent`'s children exactly `nodes`, in order, moving only what is out of place: a
 * node that stays where it is keeps the keyboard focus (replaceChildren would drop it).
 */
export function syncChildren(parent, nodes) {
  nodes.forEach((node, index) => {
    const here = parent.children[index];
    if (here !== node) parent.insertBefore(node, here || null);
  });
  while (parent.children.length > nodes.length) parent.lastElementChild.remove();
}
