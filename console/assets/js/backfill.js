import { h, replace, setText, uid } from './dom.js';
import { alertBox, errorText, field } from './fields.js';
import { modal } from './dialogs.js';
import { absolute, count, coverageOf, fromUTCInput, toUTCInput, utcLabel } from './format.js';

// What a backfill's range means, said the same way wherever one is chosen.
export const rangeMeaning = 'Datadog takes logs up to 18 h back and metrics up to 1 h back. Of the range, '
  + 'the last hour becomes logs and metrics, from 1 h to 18 h back logs only, and anything older is not sent (it is counted).';

const states = {
  pending: { text: 'Waiting for a replica', tone: 'neutral' },
  running: { text: 'Running', tone: 'info' },
  done: { text: 'Done', tone: 'success' },
  cancelled: { text: 'Cancelled', tone: 'warning' },
  failed: { text: 'Failed', tone: 'danger' },
};

const active = (bf) => bf?.state === 'pending' || bf?.state === 'running';

// iso drops the milliseconds of toISOString: RFC 3339 as the API shows it.
const iso = (d) => d.toISOString().replace(/\.\d{3}Z$/, 'Z');

// renderCoverage is what Datadog will take of a range: the API's coverage
// of a started backfill, or the page's own estimate before it starts.
export function renderCoverage(cov, title) {
  const part = (key, label, span, desc) => (span
    ? h('li', { class: `coverage__item coverage__item--${key}` },
      h('span', { class: 'coverage__mark', 'aria-hidden': 'true' }),
      h('span', null, h('strong', null, `${label}: `), `${utcLabel(span.from)} to ${utcLabel(span.to)}`,
        desc ? h('span', { class: 'coverage__desc' }, desc) : null))
    : null);
  const items = [
    part('full', 'Logs and metrics', cov?.logs_and_metrics, null),
    part('logs', 'Logs only', cov?.logs_only, 'Its metrics are older than 1 h: counted, not sent.'),
    part('none', 'Not sent', cov?.not_sent, 'Older than 18 h: Datadog refuses it; counted.'),
  ].filter(Boolean);
  return h('div', { class: 'coverage', dataset: { test: 'coverage' } },
    h('p', { class: 'coverage__title' }, title),
    items.length ? h('ul', { class: 'coverage__list' }, items) : h('p', { class: 'small' }, 'Nothing: the range is empty.'));
}

// backfillCard shows the integration's current or last backfill: its
// state, a progress bar, its counts, and Cancel while it is pending or
// running. It stays hidden until the integration has had one.
export function backfillCard({ api, id, writer, announce, onChanged }) {
  const titleId = uid('bf');
  const chipText = h('span');
  const chip = h('span', { class: 'badge', dataset: { test: 'backfill-state' } },
    h('span', { class: 'badge__icon', 'aria-hidden': 'true' }), chipText);
  const range = h('p', { class: 'small', dataset: { test: 'backfill-range' } });
  const labelId = uid('bfl');
  const barLabel = h('span', { class: 'progress__label', id: labelId });
  const fill = h('span', { class: 'progress__fill' });
  const bar = h('div', {
    class: 'progress', role: 'progressbar', 'aria-valuemin': '0', 'aria-valuemax': '100', 'aria-labelledby': labelId,
    dataset: { test: 'backfill-progress' },
  }, fill);
  const stat = (label, key) => {
    const dd = h('dd', { dataset: { test: key } });
    return { dd, el: h('div', null, h('dt', null, label), dd) };
  };
  const scanned = stat('Records scanned', 'backfill-scanned');
  const matched = stat('This org\u2019s records', 'backfill-matched');
  const logs = stat('Logs sent', 'backfill-logs');
  const logsOld = stat('Logs too old, not sent', 'backfill-logs-too-old');
  const winOld = stat('Metric windows too old', 'backfill-windows-too-old');
  const times = h('p', { class: 'small muted' });
  const errLine = h('div');
  const coverageSlot = h('div');
  const result = h('div', { class: 'form-status' });
  const cancel = writer
    ? h('button', { type: 'button', class: 'btn btn--danger-ghost btn--sm', dataset: { test: 'cancel-backfill' } }, 'Cancel backfill')
    : null;
  const el = h('section', { class: 'card backfill', hidden: true, 'aria-labelledby': titleId, dataset: { test: 'backfill' } },
    h('div', { class: 'card__head' }, h('h2', { id: titleId }, 'Backfill'), chip),
    range,
    h('div', { class: 'progress-row' }, bar, barLabel),
    h('dl', { class: 'mini-stats' }, scanned.el, matched.el, logs.el, logsOld.el, winOld.el),
    times, errLine, coverageSlot, result,
    cancel ? h('div', { class: 'actions actions--start' }, cancel) : null);

  let current = null; // the backfill as last shown
  let coverage = null; // {jobId, coverage} of a backfill started from this page

  cancel?.addEventListener('click', () => {
    const keep = h('button', { type: 'button', class: 'btn btn--ghost' }, 'Keep it running');
    const yes = h('button', { type: 'submit', class: 'btn btn--danger', dataset: { test: 'confirm-cancel-backfill' } }, 'Cancel backfill');
    const status = h('div', { class: 'form-status' });
    const form = h('form', { class: 'stack', novalidate: true },
      h('p', null, 'The replica running it stops within a few seconds. What it already sent stays in Datadog; the rest of the range is not sent. New traffic is not affected.'),
      status, h('div', { class: 'actions' }, keep, yes));
    const dlg = modal('Cancel the backfill?', form);
    keep.addEventListener('click', () => dlg.close());
    keep.focus();
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      yes.disabled = true;
      yes.textContent = 'Cancelling…';
      try {
        await api.cancelBackfill(id);
        dlg.close();
        announce('Cancelled the backfill.');
        onChanged();
      } catch (err) {
        if (err.status === 401) {
          dlg.close();
          return;
        }
        yes.disabled = false;
        yes.textContent = 'Cancel backfill';
        if (err.status === 404) {
          dlg.close();
          replace(result, alertBox('info', null, 'There is no backfill pending or running any more: it ended meanwhile.'));
          onChanged();
          return;
        }
        replace(status, alertBox('error', 'Could not cancel', errorText(err)));
      }
    });
  });

  return {
    el,
    // started shows the coverage the API answered for a backfill this page
    // started, for as long as that backfill is the current one.
    started(job) {
      coverage = job?.coverage ? { jobId: job.id, coverage: job.coverage } : null;
      replace(result);
      this.update({ backfill: job });
    },
    update(it) {
      const bf = it?.backfill ?? null;
      current = bf;
      el.hidden = !bf;
      if (!bf) return;
      const s = states[bf.state] ?? { text: String(bf.state), tone: 'neutral' };
      chip.className = `badge badge--${s.tone} badge--bf-${bf.state}`;
      chip.dataset.state = bf.state;
      setText(chipText, s.text);
      setText(range, `Event times from ${utcLabel(bf.from)} to ${utcLabel(bf.to)} (the end excluded).`);
      const p = Number.isFinite(Number(bf.percent)) ? Math.max(0, Math.min(100, Number(bf.percent))) : 0;
      const pct = Math.floor(p);
      bar.setAttribute('aria-valuenow', String(pct));
      const known = bf.records_to_scan > 0;
      const words = bf.state === 'pending'
        ? 'Waiting for a replica of the exporter to take it'
        : known || bf.state === 'done' ? `${pct}% of the records scanned` : 'Finding the records to scan';
      bar.setAttribute('aria-valuetext', words);
      setText(barLabel, bf.state === 'pending' || (!known && bf.state === 'running') ? words : `${pct}%`);
      // CSSOM, not a style attribute: the CSP allows it.
      fill.style.width = `${p}%`;
      bar.classList.toggle('progress--active', active(bf));
      setText(scanned.dd, known ? `${count(bf.records_scanned)} of ${count(bf.records_to_scan)}` : count(bf.records_scanned));
      setText(matched.dd, count(bf.records_matched));
      setText(logs.dd, count(bf.logs_sent));
      setText(logsOld.dd, count(bf.logs_too_old));
      setText(winOld.dd, count(bf.metric_windows_too_old));
      const t = [`Asked for ${absolute(bf.requested_at)}`];
      if (bf.started_at) t.push(`started ${absolute(bf.started_at)}`);
      if (bf.finished_at) t.push(`ended ${absolute(bf.finished_at)}`);
      setText(times, `${t.join(', ')}.`);
      replace(errLine, bf.state === 'failed' ? alertBox('error', 'The backfill failed', bf.error || 'The exporter gave no reason; its log says more.') : null);
      replace(coverageSlot, coverage && coverage.jobId === bf.id
        ? renderCoverage(coverage.coverage, 'What Datadog takes of this range, as of when it was asked for')
        : null);
      if (cancel) cancel.hidden = !active(bf);
    },
    current: () => current,
  };
}

// openBackfill asks for a range in UTC and starts a backfill of it.
export function openBackfill({ api, it, onStarted }) {
  const now = new Date();
  now.setUTCSeconds(0, 0);
  const from = field({
    label: 'From (UTC)',
    required: true,
    control: (id) => h('input', { id, class: 'input', type: 'datetime-local', name: 'from', step: '60' }),
  });
  const to = field({
    label: 'To (UTC)',
    required: true,
    hint: 'Not in the future; the end itself is excluded.',
    control: (id) => h('input', { id, class: 'input', type: 'datetime-local', name: 'to', step: '60' }),
  });
  from.input.value = toUTCInput(new Date(now.getTime() - 3600e3));
  to.input.value = toUTCInput(now);
  to.input.max = toUTCInput(now);
  from.input.max = toUTCInput(now);

  const preset = (label, hours) => h('button', {
    type: 'button', class: 'btn btn--ghost btn--sm',
    onclick: () => {
      const end = new Date();
      end.setUTCSeconds(0, 0);
      from.input.value = toUTCInput(new Date(end.getTime() - hours * 3600e3));
      to.input.value = toUTCInput(end);
      preview();
    },
  }, label);
  const presets = h('div', { class: 'presets', role: 'group', 'aria-label': 'Quick ranges' },
    h('span', { class: 'small muted' }, 'Quick ranges:'), preset('Last hour', 1), preset('Last 6 hours', 6), preset('Last 18 hours', 18));

  const estimate = h('div', { 'aria-live': 'polite' });
  function preview() {
    const f = fromUTCInput(from.input.value);
    const t = fromUTCInput(to.input.value);
    replace(estimate, f && t && f < t ? renderCoverage(coverageOf(f, t, new Date()), 'If it started now, Datadog would take') : null);
  }
  from.input.addEventListener('input', preview);
  to.input.addEventListener('input', preview);
  preview();

  let blocked = null;
  if (it.paused) blocked = alertBox('warning', 'The integration is paused', 'Resume it first: a backfill delivers to the same Datadog account, and the exporter refuses one while it is paused.');
  else if (active(it.backfill)) blocked = alertBox('info', 'A backfill is already pending or running', 'Wait for it to end, or cancel it, before starting another.');

  const status = h('div', { class: 'form-status' });
  const cancel = h('button', { type: 'button', class: 'btn btn--ghost' }, 'Cancel');
  const submit = h('button', { type: 'submit', class: 'btn btn--primary', disabled: Boolean(blocked), dataset: { test: 'submit-backfill' } }, 'Start backfill');
  const form = h('form', { class: 'stack', novalidate: true },
    blocked,
    h('p', null, `Reads ${it.org_id}\u2019s records of a time range again from Kafka and sends them to Datadog, beside the live export, which is not held up. Only records Kafka still holds can be sent.`),
    h('fieldset', { class: 'fieldset' },
      h('legend', null, 'Range, in UTC'),
      h('p', { class: 'field__hint' }, rangeMeaning),
      presets,
      h('div', { class: 'range' }, from.root, to.root)),
    estimate,
    h('p', { class: 'small muted' }, 'A range that overlaps what was already exported is sent again: those logs arrive twice in Datadog.'),
    status,
    h('div', { class: 'actions' }, cancel, submit));
  const dlg = modal(`Start a backfill for ${it.org_id}`, form);
  dlg.classList.add('dialog--wide');
  cancel.addEventListener('click', () => dlg.close());
  (blocked ? cancel : from.input).focus();

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    if (blocked) return;
    replace(status);
    from.error('');
    to.error('');
    const f = fromUTCInput(from.input.value);
    const t = fromUTCInput(to.input.value);
    if (!f) from.error('Enter when the range starts, in UTC.');
    if (!t) to.error('Enter when the range ends, in UTC.');
    if (!f || !t) {
      (f ? to : from).input.focus();
      return;
    }
    if (f >= t) {
      to.error('The end must be after the start.');
      to.input.focus();
      return;
    }
    if (t.getTime() > Date.now()) {
      to.error('The end must not be in the future: new traffic is exported as it comes.');
      to.input.focus();
      return;
    }
    submit.disabled = true;
    submit.textContent = 'Starting…';
    try {
      const job = await api.startBackfill(it.id, { from: iso(f), to: iso(t) });
      dlg.close();
      onStarted(job);
    } catch (err) {
      if (err.status === 401) {
        dlg.close();
        return;
      }
      if (err.field === 'from' || err.field === 'to') {
        (err.field === 'from' ? from : to).error(err.message);
        (err.field === 'from' ? from : to).input.focus();
      } else {
        const title = { backfill_running: 'A backfill is already pending or running', paused: 'The integration is paused', managed_by_file: 'This integration comes from the tenants file' }[err.code] ?? 'Could not start the backfill';
        replace(status, alertBox('error', title, errorText(err)));
        status.querySelector('.alert')?.focus();
      }
    } finally {
      submit.disabled = false;
      submit.textContent = 'Start backfill';
    }
  });
}
