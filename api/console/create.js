// The new-tenant page (#/new): slug, name, plan, domains, billing e-mail
// and deletion policy, POSTed as they are; the API's field errors appear at
// their fields, and a created tenant opens its page.

import { announce, h, show } from './dom.js';
import { clearErrors, domainList, field, planSelect, showError } from './forms.js';
import { api, session } from './session.js';
import { remember } from './tenant.js';

export function renderCreate() {
  const slug = h('input', { autocomplete: 'off', spellcheck: 'false', required: true });
  const name = h('input', { autocomplete: 'organization', required: true });
  const plan = planSelect(session.config.defaultPlan);
  const domains = h('textarea', { rows: 3, spellcheck: 'false' });
  const email = h('input', { type: 'email', autocomplete: 'email' });
  const policy = h('select', {}, h('option', { value: 'delete' }, 'delete'), h('option', { value: 'orphan' }, 'orphan'));
  const form = h('form', { class: 'card', novalidate: true, 'aria-labelledby': 'create-title' },
    field('slug', 'Slug', slug, 'Lowercase letters, digits and dashes; 3 to 63 characters; cannot change later.'),
    field('name', 'Name', name),
    field('plan', 'Plan', plan),
    field('domains', 'Mail domains', domains, 'One per line (or separated by commas).'),
    field('billingInfoEmail', 'Billing e-mail', email),
    field('deletionPolicy', 'On deletion', policy, 'delete removes the upstream objects; orphan leaves them.'),
    h('p', { class: 'form-error', role: 'alert' }),
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Create tenant'), h('a', { href: '#/tenants' }, 'Cancel')));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearErrors(form);
    const body = { slug: slug.value.trim(), name: name.value, plan: plan.value, domains: domainList(domains.value), deletionPolicy: policy.value };
    if (email.value.trim()) body.billingInfo = { email: email.value.trim() };
    const reply = await api('POST', '/tenants', body);
    if (reply.status === 201) {
      remember(reply.body);
      announce(`Tenant ${reply.body.slug} created`);
      location.hash = `#/tenants/${encodeURIComponent(reply.body.slug)}`;
    } else {
      showError(form, reply);
    }
  });
  show(h('h1', { id: 'create-title' }, 'New tenant'), form);
}
