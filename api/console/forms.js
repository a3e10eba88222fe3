// Form helpers shared by the new-tenant page and the tenant page's edit:
// labelled fields with a slot for the API's error, which is shown next to
// its field (validation is the API's, so the messages are the same).

import { h } from './dom.js';
import { session } from './session.js';

/** A labelled form field with a slot for the server's error. */
export function field(name, label, control, hint) {
  control.id = `f-${name}`;
  control.name = name;
  const error = h('p', { class: 'error', id: `f-${name}-error`, hidden: true });
  const described = [hint ? `f-${name}-hint` : null, `f-${name}-error`].filter(Boolean).join(' ');
  control.setAttribute('aria-describedby', described);
  return h('div', { class: 'field', 'data-field': name },
    h('label', { for: control.id }, label), control,
    hint ? h('p', { class: 'hint', id: `f-${name}-hint` }, hint) : null, error);
}

export function clearErrors(form) {
  form.querySelectorAll('.field').forEach((f) => {
    f.classList.remove('invalid');
    const e = f.querySelector('.error');
    e.hidden = true;
    e.textContent = '';
    f.querySelector('input, select, textarea').removeAttribute('aria-invalid');
  });
  form.querySelector('.form-error').textContent = '';
}

/** Shows the API's error next to its field (`domains[2]` → domains). */
export function showError(form, reply) {
  const error = (reply.body && reply.body.error) || { message: `HTTP ${reply.status}` };
  const name = (error.field || '').replace(/\[\d+\]$/, '').replace(/\.email$/, 'Email');
  const holder = name && form.querySelector(`.field[data-field="${name}"]`);
  if (!holder) {
    form.querySelector('.form-error').textContent = error.message;
    return;
  }
  holder.classList.add('invalid');
  const text = holder.querySelector('.error');
  text.textContent = error.message;
  text.hidden = false;
  const control = holder.querySelector('input, select, textarea');
  control.setAttribute('aria-invalid', 'true');
  control.focus();
}

export function planSelect(current) {
  return h('select', {}, session.config.plans.map((p) => h('option', { value: p, selected: p === current }, p)));
}

export function domainList(text) {
  return text.split(/[\s,]+/).map((d) => d.trim()).filter(Boolean);
}
