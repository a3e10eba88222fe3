// DOM helpers shared by every page of the console: building elements,
// replacing the page, the screen-reader announcer, badges and dates.

/** An element with attributes (on* as listeners) and children (strings are text). */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith('on')) el.addEventListener(key.slice(2), value);
    else if (key === 'text') el.textContent = value;
    else el.setAttribute(key, value === true ? '' : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export const main = () => document.getElementById('main');

/** Says `text` through the polite live region. */
export function announce(text) {
  const region = document.getElementById('announcer');
  region.textContent = '';
  setTimeout(() => { region.textContent = text; }, 30);
}

/** Replaces the page's content and moves focus to its heading. */
export function show(...children) {
  const el = main();
  el.replaceChildren(...children);
  const heading = el.querySelector('h1');
  if (heading) { heading.tabIndex = -1; heading.focus(); }
}

export function when(iso) {
  if (!iso) return 'never';
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleString();
}

export function badge(value, label) {
  const v = value || 'pending';
  return h('span', { class: `badge ${v}` }, label ? `${label}: ${v}` : v);
}

/** `12,345` in the page's locale. */
export const count = (n) => n.toLocaleString();
