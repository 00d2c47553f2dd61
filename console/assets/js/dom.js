// Small DOM helpers. Every text the console shows goes in through text
// nodes, never as HTML: what the API returns (org ids, Datadog's messages)
// cannot become markup.

// h builds an element. attrs: "class", "dataset" (an object), "on<event>"
// (a listener), any other attribute (true sets it empty; false, null and
// undefined leave it out). children: nodes, strings, arrays, or nothing.
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') {
      el.addEventListener(k.slice(2), v);
    } else if (k === 'class') {
      el.className = v;
    } else if (k === 'dataset') {
      Object.assign(el.dataset, v);
    } else {
      el.setAttribute(k, v === true ? '' : String(v));
    }
  }
  append(el, children);
  return el;
}

// append adds children to el, skipping empty ones.
export function append(el, children) {
  for (const c of [children].flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

// replace empties el and fills it with children.
export function replace(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

// setText changes a node's text only when it differs, so that a live region
// announces changes and not every refresh.
export function setText(el, text) {
  if (el.textContent !== text) el.textContent = text;
}

// uid makes an element id for label and aria links. Random rather than
// counted, so that no module keeps state.
export function uid(prefix) {
  const n = crypto.getRandomValues(new Uint32Array(1))[0];
  return `${prefix}-${n.toString(36)}`;
}

// visuallyHidden is text for screen readers only.
export function visuallyHidden(text) {
  return h('span', { class: 'visually-hidden' }, text);
}
