import { h, replace, uid } from './dom.js';
import { alertBox, errorText, field, keyField, siteOptions, verdictLine } from './fields.js';
import { canWrite, defaultInterval, intervalLabel, intervals, shortInterval, siteLabel } from './format.js';
import { renderVerify } from './verify.js';
import { dashboardOutcome } from './dashboard.js';
import { renderCoverage } from './backfill.js';

const advice = 'Every 5 minutes works for most setups. Use 1-2 minutes if you need near real-time visibility.';

// renderConnect is the connect flow: credentials (validated by the server
// against Datadog), sync settings, then a done screen that says how to
// check the data arrived.
export function renderConnect(root, ctx) {
  const { api, me } = ctx;
  const stepper = h('ol', { class: 'stepper', 'aria-label': 'Steps' });
  const panel = h('div', { class: 'connect__panel' });
  replace(root,
    h('p', { class: 'crumbs' }, h('a', { href: '#/integrations' }, 'Integrations'), ' / Connect Datadog'),
    h('div', { class: 'page-head' }, h('div', null,
      h('h1', null, 'Connect Datadog'),
      h('p', { class: 'lead' }, 'Send your gateway\u2019s requests to your own Datadog account: one log per request, and metrics per sync interval.'))),
    stepper, panel);

  if (!canWrite(me)) {
    replace(panel, alertBox('info', 'Your token can only view',
      `A viewer token cannot connect integrations. Ask an admin, or the owner of ${me.org_id ?? 'the organisation'}, to connect Datadog.`));
    return null;
  }

  let stopped = false;
  const steps = ['Credentials', 'Sync settings', 'Done'];
  const setStep = (n) => {
    replace(stepper, steps.map((name, i) => h('li', {
      class: `stepper__item${i + 1 < n ? ' is-done' : ''}${i + 1 === n ? ' is-current' : ''}`,
      'aria-current': i + 1 === n ? 'step' : false,
    }, h('span', { class: 'stepper__num', 'aria-hidden': 'true' }, String(i + 1)), h('span', null, name),
      i + 1 < n ? h('span', { class: 'visually-hidden' }, ' (done)') : null)));
  };

  const creds = credentialsStep(api, me);
  const settings = settingsStep();
  const done = h('section', { class: 'card step', hidden: true, 'aria-labelledby': 'step3-title' });
  panel.append(creds.el, settings.el, done);
  setStep(1);

  const focusStep = (el) => el.querySelector('h2')?.focus();

  creds.onValid = (result) => {
    settings.prepare(result, creds.hasAppKey());
    creds.el.hidden = true;
    settings.el.hidden = false;
    setStep(2);
    focusStep(settings.el);
  };
  settings.onBack = () => {
    settings.el.hidden = true;
    creds.el.hidden = false;
    setStep(1);
    focusStep(creds.el);
  };
  settings.onSubmit = async (choices, status, button) => {
    const body = { ...creds.body(), sync_interval: choices.interval, historical: choices.historical };
    if (choices.dashboard && body.app_key) body.create_dashboard = true;
    button.disabled = true;
    button.textContent = body.create_dashboard ? 'Connecting, and making the dashboard…' : 'Connecting…';
    replace(status);
    try {
      const it = await api.create(body);
      if (stopped) return;
      creds.clearKeys();
      creds.el.hidden = true;
      settings.el.hidden = true;
      setStep(3);
      showDone(done, it);
      done.hidden = false;
      focusStep(done);
      ctx.announce(`Connected Datadog for ${it.org_id}`);
    } catch (err) {
      if (stopped || err.status === 401) return;
      button.disabled = false;
      button.textContent = 'Connect Integration';
      if (err.code === 'keys_rejected') {
        // Keys Datadog refused are of no more use: they are typed again.
        creds.clearKeys();
        settings.onBack();
        creds.showVerdicts(err.verdicts, 'Datadog refused the keys when connecting. Enter them again.');
        return;
      }
      if (err.status === 501) {
        replace(status, alertBox('error', 'Historical data cannot be imported yet',
          h('p', null, err.message),
          h('p', null, 'Choose \u201cNew traffic only\u201d to connect now; history can be imported once this exporter supports it.')));
      } else if (err.code === 'conflict') {
        replace(status, alertBox('error', 'This organisation is already connected', h('p', null, err.message),
          h('p', null, h('a', { href: '#/integrations' }, 'See the integrations'))));
      } else {
        replace(status, alertBox('error', 'Could not connect', h('p', null, errorText(err))));
      }
      status.querySelector('.alert')?.focus();
    }
  };
  return () => {
    stopped = true;
    creds.clearKeys();
  };
}

// credentialsStep is step 1: organisation, site and keys, checked with the
// server's validate call before moving on.
function credentialsStep(api, me) {
  const admin = me.role === 'admin';
  const org = admin ? field({
    label: 'Organisation ID',
    required: true,
    hint: 'The org_id of the gateway records to export, for example org_acme.',
    control: (id) => h('input', { id, class: 'input input--mono', type: 'text', autocomplete: 'off', spellcheck: 'false', name: 'org_id' }),
  }) : null;
  const site = field({
    label: 'Datadog site',
    hint: 'The site your Datadog account is on: app.datadoghq.eu is EU1, app.datadoghq.com is US1.',
    control: (id) => h('select', { id, class: 'input', name: 'site' }, h('option', { value: 'US1' }, 'US1 (datadoghq.com)')),
  });
  const apiKey = keyField({
    label: 'API key',
    name: 'api_key',
    required: true,
    hint: 'In Datadog: Organization Settings \u2192 API Keys.',
  });
  const appKey = keyField({
    label: 'Application key',
    name: 'app_key',
    optional: true,
    hint: 'For dashboards and monitors only; logs and metrics need just the API key.',
  });
  const status = h('div', { class: 'form-status' });
  const submit = h('button', { type: 'submit', class: 'btn btn--primary', dataset: { test: 'validate' } }, 'Validate & Continue');
  const form = h('form', { class: 'stack', novalidate: true },
    admin ? org.root : h('p', { class: 'fact-line' }, 'Organisation: ', h('strong', { class: 'mono' }, me.org_id)),
    site.root, apiKey.root, appKey.root, status,
    h('div', { class: 'actions' }, h('a', { class: 'btn btn--ghost', href: '#/integrations' }, 'Cancel'), submit));
  const el = h('section', { class: 'card step', 'aria-labelledby': 'step1-title' },
    h('h2', { id: 'step1-title', tabindex: '-1' }, 'Credentials'),
    h('p', { class: 'muted' }, 'The keys are checked with Datadog now, and stored by the exporter encrypted; they are never shown again.'),
    form);

  api.sites().then((res) => {
    const list = res?.sites ?? [];
    if (list.length) siteOptions(site.input, list, list.some((s) => s.code === 'US1') ? 'US1' : list[0].code);
    step.sites = list;
  }).catch((err) => {
    if (err.status !== 401) replace(status, alertBox('error', 'Could not load the Datadog sites', err.message));
  });

  const step = {
    el,
    sites: [],
    onValid: null,
    hasAppKey: () => appKey.value() !== '',
    body() {
      const b = { site: site.input.value, api_key: apiKey.value() };
      if (admin) b.org_id = org.input.value.trim();
      else if (me.org_id) b.org_id = me.org_id;
      if (appKey.value()) b.app_key = appKey.value();
      return b;
    },
    clearKeys() {
      apiKey.clear();
      appKey.clear();
    },
    showVerdicts(v, title) {
      apiKey.verdict(v?.api_key);
      appKey.verdict(appKey.value() || v?.app_key?.verdict !== 'unchecked' ? v?.app_key : null);
      if (title) replace(status, alertBox('error', title));
      (v?.api_key?.verdict === 'rejected' ? apiKey.input : appKey.input).focus();
    },
  };

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    replace(status);
    apiKey.verdict(null);
    appKey.verdict(null);
    let first = null;
    if (admin) {
      const v = org.input.value.trim();
      org.error(v ? '' : 'Enter the organisation ID.');
      if (!v) first = org.input;
    }
    if (!apiKey.value()) {
      apiKey.error('Enter the API key. Datadog needs it to accept logs and metrics.');
      first ??= apiKey.input;
    }
    if (first) {
      first.focus();
      return;
    }
    const body = step.body();
    delete body.org_id;
    submit.disabled = true;
    submit.textContent = 'Validating…';
    el.setAttribute('aria-busy', 'true');
    try {
      const res = await api.validate(body);
      apiKey.verdict(res.api_key);
      if (body.app_key) appKey.verdict(res.app_key);
      if (res.valid) {
        step.validated = res;
        step.onValid?.({ ...res, siteHost: step.sites.find((s) => s.code === body.site)?.host });
      } else {
        replace(status, alertBox('error', 'Datadog did not accept the keys', 'See the message under each key.'));
        (res.api_key?.verdict !== 'valid' ? apiKey.input : appKey.input).focus();
      }
    } catch (err) {
      if (err.status === 401) return;
      replace(status, alertBox('error', err.code === 'rate_limited' ? 'Too many checks' : 'Could not check the keys', errorText(err)));
      status.querySelector('.alert')?.focus();
    } finally {
      submit.disabled = false;
      submit.textContent = 'Validate & Continue';
      el.removeAttribute('aria-busy');
    }
  });
  return step;
}

// settingsStep is step 2: sync interval, historical data, and the
// dashboard option (when an application key was given).
function settingsStep() {
  const summary = h('div', { class: 'summary' });
  const intervalName = uid('interval');
  const intervalSet = h('fieldset', { class: 'fieldset' },
    h('legend', null, 'Sync interval'),
    h('p', { class: 'field__hint', id: `${intervalName}-hint` }, advice),
    h('div', { class: 'choice-row', role: 'presentation' }, intervals.map((iv) => {
      const id = uid('iv');
      return h('div', { class: 'choice-pill' },
        h('input', { type: 'radio', id, name: intervalName, value: iv, checked: iv === defaultInterval, 'aria-describedby': `${intervalName}-hint` }),
        h('label', { for: id }, shortInterval(iv), iv === defaultInterval ? h('span', { class: 'visually-hidden' }, ' (recommended)') : null));
    })));

  const histName = uid('hist');
  const from = field({ label: 'From', control: (id) => h('input', { id, class: 'input', type: 'datetime-local' }) });
  const to = field({ label: 'To', control: (id) => h('input', { id, class: 'input', type: 'datetime-local' }) });
  const range = h('div', { class: 'range', hidden: true }, from.root, to.root);
  const histOption = (value, title, desc) => {
    const id = uid('h');
    return h('div', { class: 'choice-card' },
      h('input', { type: 'radio', id, name: histName, value, checked: value === 'new_only', 'aria-describedby': `${id}-d` }),
      h('label', { for: id }, h('span', { class: 'choice-card__title' }, title),
        h('span', { class: 'choice-card__desc', id: `${id}-d` }, desc)));
  };
  const histSet = h('fieldset', { class: 'fieldset' },
    h('legend', null, 'Historical data'),
    h('p', { class: 'field__hint' }, 'Datadog accepts logs up to 18 h back and metrics up to 1 h back: older traffic cannot be sent.'),
    histOption('new_only', 'New traffic only', 'Requests from the moment you connect.'),
    histOption('all', 'Everything Datadog still accepts', 'Also the traffic still held in Kafka: logs up to 18 h back, metrics up to 1 h.'),
    histOption('range', 'A date range', 'Traffic between two times, within those same limits.'),
    range);
  histSet.addEventListener('change', () => {
    range.hidden = histSet.querySelector('input[type=radio]:checked')?.value !== 'range';
  });

  const dashId = uid('dash');
  const dashBox = h('input', { type: 'checkbox', id: dashId, name: 'create_dashboard', 'aria-describedby': `${dashId}-note`, dataset: { test: 'create-dashboard' } });
  const dashboard = h('div', { class: 'checkbox-field', hidden: true },
    h('div', { class: 'checkbox' }, dashBox, h('label', { for: dashId }, 'Create a dashboard and monitors')),
    h('p', { class: 'field__hint', id: `${dashId}-note` },
      'In your Datadog account, with the application key: requests, errors, latency, tokens and cost by model and provider, and monitors of the error rate (above 5%), p95 latency (above 5000 ms) and cost (above $50 an hour). Thresholds can be changed later on the integration’s page.'));

  const status = h('div', { class: 'form-status' });
  const back = h('button', { type: 'button', class: 'btn btn--ghost' }, 'Back');
  const submit = h('button', { type: 'submit', class: 'btn btn--primary', dataset: { test: 'connect' } }, 'Connect Integration');
  const form = h('form', { class: 'stack', novalidate: true },
    summary, intervalSet, histSet, dashboard, status, h('div', { class: 'actions' }, back, submit));
  const el = h('section', { class: 'card step', hidden: true, 'aria-labelledby': 'step2-title' },
    h('h2', { id: 'step2-title', tabindex: '-1' }, 'Sync settings'), form);

  const step = {
    el,
    onBack: null,
    onSubmit: null,
    prepare(result, hasAppKey) {
      replace(summary, h('p', { class: 'summary__title' }, `Keys checked on ${siteLabel(result.site, result.siteHost)}`),
        verdictLine(result.api_key),
        hasAppKey && result.app_key ? verdictLine(result.app_key) : null);
      dashboard.hidden = !hasAppKey;
      replace(status);
    },
  };
  back.addEventListener('click', () => step.onBack?.());
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    replace(status);
    from.error('');
    to.error('');
    const interval = form.querySelector(`input[name="${intervalName}"]:checked`)?.value ?? defaultInterval;
    const mode = form.querySelector(`input[name="${histName}"]:checked`)?.value ?? 'new_only';
    const historical = { mode };
    if (mode === 'range') {
      const f = from.input.value;
      const t = to.input.value;
      if (!f) from.error('Enter when the range starts.');
      if (!t) to.error('Enter when the range ends.');
      if (!f || !t) {
        (f ? to : from).input.focus();
        return;
      }
      if (new Date(f) >= new Date(t)) {
        to.error('The end must be after the start.');
        to.input.focus();
        return;
      }
      historical.from = new Date(f).toISOString();
      historical.to = new Date(t).toISOString();
    }
    step.onSubmit?.({ interval, historical, dashboard: !dashboard.hidden && dashBox.checked }, status, submit);
  });
  return step;
}

// showDone is step 3: what was connected, and how to see it in Datadog.
function showDone(box, it) {
  replace(box,
    h('div', { class: 'done__mark', 'aria-hidden': 'true' }),
    h('h2', { id: 'step3-title', tabindex: '-1' }, `Datadog is connected for ${it.org_id}`),
    h('p', { class: 'lead' }, `Requests are sent to ${siteLabel(it.site, it.site_host)}, ${intervalLabel(it.sync_interval).toLowerCase()}.`),
    dashboardOutcome(it),
    it.backfill?.coverage ? renderCoverage(it.backfill.coverage, 'History: what Datadog takes of it, as of now') : null,
    renderVerify(it),
    h('div', { class: 'actions' },
      h('a', { class: 'btn btn--ghost', href: '#/integrations' }, 'Back to integrations'),
      h('a', { class: 'btn btn--primary', href: `#/integrations/${encodeURIComponent(it.id)}`, dataset: { test: 'open-integration' } }, 'Open the integration')));
}
