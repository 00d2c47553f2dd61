import { h, replace, uid } from './dom.js';
import { alertBox, errorText, field, keyField, siteOptions } from './fields.js';
import { intervalLabel, intervals } from './format.js';

// modal opens a <dialog> as a modal: the browser keeps focus inside it,
// closes it on Escape and gives focus back to the opener. The dialog is
// removed from the page when it closes.
export function modal(titleText, ...content) {
  const titleId = uid('dlg');
  const dlg = h('dialog', { class: 'dialog', 'aria-labelledby': titleId },
    h('h2', { id: titleId, class: 'dialog__title' }, titleText), ...content);
  dlg.addEventListener('close', () => dlg.remove());
  document.body.append(dlg);
  dlg.showModal();
  return dlg;
}

// openEdit edits site, keys and interval. Blank key fields keep the
// current keys; only what changed is sent.
export function openEdit({ api, it, sites, focus, onSaved }) {
  const site = field({
    label: 'Datadog site',
    hint: 'Changing the site checks the keys on the new site before it applies.',
    control: (id) => h('select', { id, class: 'input', name: 'site' }),
  });
  const list = sites.length ? sites : [{ code: it.site, host: it.site_host }];
  siteOptions(site.input, list, it.site);
  const apiKey = keyField({
    label: 'API key',
    name: 'api_key',
    optional: true,
    hint: `Leave blank to keep the current key (${it.api_key_hint || 'not shown'}).`,
  });
  const appKey = keyField({
    label: 'Application key',
    name: 'app_key',
    optional: true,
    hint: it.app_key_hint
      ? `Leave blank to keep the current key (${it.app_key_hint}). For dashboards and monitors.`
      : 'None set. For dashboards and monitors; logs and metrics need only the API key.',
  });
  const removeId = uid('rm');
  const removeApp = it.app_key_hint
    ? h('div', { class: 'checkbox' }, h('input', { type: 'checkbox', id: removeId }),
      h('label', { for: removeId }, `Remove the application key (${it.app_key_hint})`))
    : null;
  const interval = field({
    label: 'Sync interval',
    hint: 'A new interval starts at a window boundary, so that no window is split or counted twice.',
    control: (id) => h('select', { id, class: 'input', name: 'sync_interval' },
      intervals.map((iv) => h('option', { value: iv, selected: iv === it.sync_interval }, intervalLabel(iv)))),
  });
  interval.input.value = it.sync_interval;
  const status = h('div', { class: 'form-status' });
  const cancel = h('button', { type: 'button', class: 'btn btn--ghost' }, 'Cancel');
  const save = h('button', { type: 'submit', class: 'btn btn--primary', dataset: { test: 'save' } }, 'Save changes');
  const form = h('form', { class: 'stack', novalidate: true },
    site.root, apiKey.root, appKey.root, removeApp, interval.root, status, h('div', { class: 'actions' }, cancel, save));
  const dlg = modal(`Edit the integration of ${it.org_id}`, form);
  dlg.classList.add('dialog--wide');
  // Keys typed here leave the page with the dialog.
  dlg.addEventListener('close', () => {
    apiKey.clear();
    appKey.clear();
  });
  cancel.addEventListener('click', () => dlg.close());
  ({ site: site.input, api_key: apiKey.input, app_key: appKey.input }[focus] ?? site.input).focus();

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    replace(status);
    apiKey.verdict(null);
    appKey.verdict(null);
    const patch = {};
    if (site.input.value !== it.site) patch.site = site.input.value;
    if (apiKey.value()) patch.api_key = apiKey.value();
    if (removeApp?.querySelector('input').checked) patch.app_key = null;
    else if (appKey.value()) patch.app_key = appKey.value();
    if (interval.input.value !== it.sync_interval) patch.sync_interval = interval.input.value;
    // Submitted keys are not kept in the form, whatever the answer.
    apiKey.clear();
    appKey.clear();
    if (Object.keys(patch).length === 0) {
      replace(status, alertBox('info', null, 'Nothing changed: blank key fields keep the current keys.'));
      return;
    }
    save.disabled = true;
    save.textContent = 'Saving…';
    try {
      const next = await api.patch(it.id, patch);
      dlg.close();
      onSaved(next);
    } catch (err) {
      if (err.status === 401) {
        dlg.close();
        return;
      }
      if (err.code === 'keys_rejected' && err.verdicts) {
        apiKey.verdict(err.verdicts.api_key);
        if (err.verdicts.app_key && err.verdicts.app_key.verdict !== 'unchecked') appKey.verdict(err.verdicts.app_key);
        replace(status, alertBox('error', 'Datadog refused the keys', 'Nothing was changed. Enter the keys again after fixing them.'));
      } else {
        replace(status, alertBox('error', 'Could not save', errorText(err)));
      }
    } finally {
      save.disabled = false;
      save.textContent = 'Save changes';
    }
  });
}

// openDelete asks the user to type the organisation id before deleting, so
// that a stray click or a wrong tab cannot delete an integration.
export function openDelete({ api, it, onDeleted }) {
  const confirm = field({
    label: `Type ${it.org_id} to confirm`,
    control: (id) => h('input', { id, class: 'input input--mono', type: 'text', autocomplete: 'off', spellcheck: 'false', name: 'confirm' }),
  });
  const status = h('div', { class: 'form-status' });
  const cancel = h('button', { type: 'button', class: 'btn btn--ghost' }, 'Cancel');
  const del = h('button', { type: 'submit', class: 'btn btn--danger', disabled: true, dataset: { test: 'confirm-delete' } }, 'Delete integration');
  const form = h('form', { class: 'stack', novalidate: true },
    h('p', null, `The exporter stops sending ${it.org_id}\u2019s traffic to Datadog at once and drops what it has not sent yet. What is already in Datadog stays there.`),
    confirm.root, status, h('div', { class: 'actions' }, cancel, del));
  const dlg = modal(`Delete the integration of ${it.org_id}?`, form);
  confirm.input.addEventListener('input', () => {
    del.disabled = confirm.input.value.trim() !== it.org_id;
  });
  cancel.addEventListener('click', () => dlg.close());
  confirm.input.focus();
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    if (confirm.input.value.trim() !== it.org_id) {
      confirm.error(`Type ${it.org_id} exactly.`);
      return;
    }
    del.disabled = true;
    del.textContent = 'Deleting…';
    try {
      await api.remove(it.id);
      dlg.close();
      onDeleted();
    } catch (err) {
      if (err.status === 401) {
        dlg.close();
        return;
      }
      del.disabled = false;
      del.textContent = 'Delete integration';
      replace(status, alertBox('error', 'Could not delete', errorText(err)));
    }
  });
}
