import { h, replace, uid, visuallyHidden } from './dom.js';
import { alertBox, errorText, field } from './fields.js';
import { modal } from './dialogs.js';
import { absolute } from './format.js';

// The monitors' default thresholds (docs/api.md, Dashboard and monitors).
export const defaultThresholds = { error_rate: 0.05, p95_latency_ms: 5000, cost_per_hour: 50 };

const percent = (share) => `${Number((share * 100).toFixed(2))}%`;

// monitorLabel says what a recommended monitor alerts on.
function monitorLabel(kind, threshold) {
  switch (kind) {
    case 'error_rate':
      return `Error rate above ${percent(threshold)}`;
    case 'p95_latency':
      return `p95 latency above ${threshold} ms, per model`;
    case 'cost_burn':
      return `Cost above $${threshold} an hour`;
    default:
      return kind;
  }
}

const monitorOrder = ['error_rate', 'p95_latency', 'cost_burn'];

// newTab is a link to Datadog, opened in a new tab without giving it this
// page (noopener) or its address (noreferrer).
function newTab(href, attrs, ...children) {
  return h('a', { href, target: '_blank', rel: 'noopener noreferrer', ...attrs }, ...children,
    visuallyHidden(' (opens in a new tab)'));
}

// dashboardLinks is the dashboard's link and its monitors' links.
export function dashboardLinks(d) {
  const kinds = Object.keys(d.monitors ?? {}).sort((a, b) => monitorOrder.indexOf(a) - monitorOrder.indexOf(b));
  return h('div', { class: 'dash-links' },
    newTab(d.url, { class: 'btn btn--primary', dataset: { test: 'dashboard-link' } }, 'Open dashboard',
      h('span', { class: 'ext', 'aria-hidden': 'true' }, ' \u2197')),
    kinds.length
      ? h('ul', { class: 'monitor-list', 'aria-label': 'Recommended monitors' }, kinds.map((k) => h('li', null,
        newTab(d.monitors[k].url, { dataset: { test: 'monitor-link', kind: k } }, monitorLabel(k, d.monitors[k].threshold)))))
      : null);
}

// changesText says what a dashboard call did, from its created, recreated
// and updated lists ("dashboard", "monitor:error_rate", ...).
function changesText(res) {
  const name = (x) => (x === 'dashboard' ? 'the dashboard' : `the ${x.replace(/^monitor:/, '').replace(/_/g, ' ')} monitor`);
  const list = (xs) => xs.map(name).join(', ');
  const created = res?.created ?? [];
  const recreated = res?.recreated ?? [];
  const updated = res?.updated ?? [];
  if (!created.length && !recreated.length && !updated.length) {
    return 'Nothing needed changing: the dashboard and its monitors are in place in Datadog.';
  }
  const parts = [];
  if (created.length) parts.push(`Created ${list(created)}.`);
  if (recreated.length) parts.push(`Made again, as they were deleted in Datadog: ${list(recreated)}.`);
  if (updated.length) parts.push(`Updated: ${list(updated)}.`);
  return parts.join(' ');
}

// dashboardCard is the integration's Datadog dashboard and monitors: links
// when they exist, what is needed when they cannot be made, and (for a
// token that may write) the button that makes or updates them.
export function dashboardCard({ api, id, writer, announce, onChanged, editAppKey }) {
  const titleId = uid('dash');
  const body = h('div', { class: 'stack-sm' });
  const result = h('div', { class: 'form-status', dataset: { test: 'dashboard-result' } });
  const make = writer ? h('button', { type: 'button', class: 'btn', dataset: { test: 'dashboard-make' } }) : null;
  const el = h('section', { class: 'card dashboard', 'aria-labelledby': titleId, dataset: { test: 'dashboard' } },
    h('h2', { id: titleId }, 'Dashboard and monitors'), body, result,
    make ? h('div', { class: 'actions actions--start' }, make) : null);

  let current = null;
  let made = null; // the last answer's dashboard, until the view has it

  make?.addEventListener('click', () => openDashboard({
    api, it: current, dashboard: current.dashboard ?? made,
    onDone: (res) => {
      made = res.dashboard ?? made;
      const text = changesText(res);
      replace(result, alertBox('info', null, text));
      announce(text);
      card.update(current);
      onChanged();
    },
  }));

  const card = {
    el,
    update(it) {
      current = it;
      if (it.dashboard) made = null;
      const d = it.dashboard ?? made;
      const hasApp = Boolean(it.app_key_hint);
      if (d) {
        replace(body,
          h('p', { class: 'small muted' }, 'In this integration\u2019s Datadog account: requests, errors, latency, tokens and cost by model and provider, and the failed requests\u2019 logs; with three recommended monitors.'),
          dashboardLinks(d),
          d.updated_at ? h('p', { class: 'small muted' }, `Last made or checked ${absolute(d.updated_at)}.`) : null);
      } else if (!hasApp) {
        replace(body,
          h('p', { dataset: { test: 'dashboard-needs-app-key' } }, 'The exporter makes the dashboard and monitors in your Datadog account with an application key, and this integration has none. Logs and metrics need only the API key.'),
          h('p', { class: 'small muted' }, it.managed_by === 'file'
            ? 'Add an app_key to this organisation\u2019s entry in the tenants file; its user needs the dashboards_write and monitors_write permissions.'
            : writer
              ? 'Add one with Edit; its user needs the dashboards_write and monitors_write permissions.'
              : 'An owner or admin of this organisation can add one.'),
          writer && it.managed_by !== 'file'
            ? h('button', { type: 'button', class: 'btn btn--sm', dataset: { test: 'dashboard-add-app-key' }, onclick: editAppKey }, 'Add an application key')
            : null);
      } else {
        replace(body,
          h('p', null, 'No dashboard yet. The exporter can make one in your Datadog account: requests, errors, latency, tokens and cost by model and provider, with three recommended monitors (error rate, p95 latency, cost per hour).'),
          writer ? null : h('p', { class: 'small muted' }, 'An owner or admin of this organisation can create it.'));
      }
      if (make) {
        make.hidden = !hasApp;
        make.textContent = d ? 'Update dashboard and monitors' : 'Create dashboard and monitors';
        make.className = d ? 'btn' : 'btn btn--primary';
      }
    },
  };
  return card;
}

// openDashboard asks for the monitors' thresholds and makes or updates the
// dashboard and monitors. Only thresholds that changed are sent, so that
// asking again with the same values changes nothing.
function openDashboard({ api, it, dashboard, onDone }) {
  const th = { ...defaultThresholds, ...(dashboard?.thresholds ?? {}) };
  const num = (label, name, value, hint, attrs) => {
    const f = field({
      label, hint,
      control: (id) => h('input', { id, class: 'input', type: 'number', name, inputmode: 'decimal', min: '0', step: 'any', ...attrs }),
    });
    f.input.value = String(value);
    return f;
  };
  const rate = num('Error rate above (%)', 'error_rate', Number((th.error_rate * 100).toFixed(4)),
    'Failed requests over two sync intervals (at least 10 minutes).', { max: '100' });
  const p95 = num('p95 latency above (ms)', 'p95_latency_ms', th.p95_latency_ms, 'One alert per model.');
  const cost = num('Cost above (US dollars an hour)', 'cost_per_hour', th.cost_per_hour, 'Over the last hour.');
  const status = h('div', { class: 'form-status' });
  const cancel = h('button', { type: 'button', class: 'btn btn--ghost' }, 'Cancel');
  const label = dashboard ? 'Update dashboard and monitors' : 'Create dashboard and monitors';
  const submit = h('button', { type: 'submit', class: 'btn btn--primary', dataset: { test: 'submit-dashboard' } }, label);
  const form = h('form', { class: 'stack', novalidate: true },
    h('p', null, dashboard
      ? 'Asking again is safe: what exists is kept. A dashboard or monitor deleted in Datadog is made again, one made by an older version of the exporter is updated in place, and changed thresholds apply to the monitors.'
      : `Made in ${it.org_id}\u2019s Datadog account with its application key, whose user needs the dashboards_write and monitors_write permissions. The monitors do not alert on missing data.`),
    h('fieldset', { class: 'fieldset' }, h('legend', null, 'Monitor thresholds'), rate.root, p95.root, cost.root),
    status,
    h('div', { class: 'actions' }, cancel, submit));
  const dlg = modal(dashboard ? `Update the dashboard of ${it.org_id}` : `Create a dashboard for ${it.org_id}`, form);
  cancel.addEventListener('click', () => dlg.close());
  submit.focus();

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    replace(status);
    const monitors = {};
    let bad = null;
    for (const [f, key, scale, max] of [[rate, 'error_rate', 0.01, 1], [p95, 'p95_latency_ms', 1, Infinity], [cost, 'cost_per_hour', 1, Infinity]]) {
      f.error('');
      const v = Number(f.input.value) * scale;
      if (f.input.value.trim() === '' || !Number.isFinite(v) || v <= 0 || v > max) {
        f.error(key === 'error_rate' ? 'Enter a percentage above 0, at most 100.' : 'Enter a number above 0.');
        bad ??= f.input;
        continue;
      }
      if (Math.abs(v - th[key]) > 1e-9 * Math.max(1, Math.abs(th[key]))) monitors[key] = v;
    }
    if (bad) {
      bad.focus();
      return;
    }
    submit.disabled = true;
    submit.textContent = dashboard ? 'Updating…' : 'Creating…';
    try {
      const res = await api.dashboard(it.id, Object.keys(monitors).length ? { monitors } : undefined);
      dlg.close();
      onDone(res);
    } catch (err) {
      if (err.status === 401) {
        dlg.close();
        return;
      }
      const title = {
        app_key_required: 'An application key is needed',
        app_key_forbidden: 'Datadog refused the application key',
        datadog_unreachable: 'Datadog did not answer',
        dashboard_busy: 'Another replica is making it',
      }[err.code] ?? 'Could not make the dashboard';
      if (err.field?.startsWith('monitors.')) {
        ({ error_rate: rate, p95_latency_ms: p95, cost_per_hour: cost }[err.field.slice(9)] ?? rate).error(err.message);
      }
      const retry = err.retryAfter && err.code !== 'rate_limited' ? ` Try again in ${err.retryAfter} s.` : '';
      replace(status, alertBox('error', title, `${errorText(err)}${retry}`));
      status.querySelector('.alert')?.focus();
    } finally {
      submit.disabled = false;
      submit.textContent = label;
    }
  });
}

// dashboardOutcome is the connect flow's word on the dashboard it asked
// for: its links, or why it was not made (the integration is connected
// either way).
export function dashboardOutcome(it) {
  if (it.dashboard) {
    return h('section', { class: 'verify', 'aria-labelledby': 'done-dash-title', dataset: { test: 'done-dashboard' } },
      h('h3', { id: 'done-dash-title' }, 'Your dashboard and monitors'),
      dashboardLinks(it.dashboard));
  }
  if (it.dashboard_error) {
    return alertBox('warning', 'The dashboard was not made',
      h('p', null, it.dashboard_error.message ?? 'Datadog did not take it.'),
      h('p', null, 'The integration is connected all the same. Try again from its page, under Dashboard and monitors.'));
  }
  return null;
}
