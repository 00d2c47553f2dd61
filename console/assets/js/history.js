import { h, replace, setText, uid, visuallyHidden } from './dom.js';
import { alertBox, errorText } from './fields.js';
import { absolute, count, duration, intervalLabel, shortTime, windowLabel, zoneName } from './format.js';

// The outcomes of a window's delivery (docs/api.md, Sync history), each
// with a word, a shape and a tone: the word carries the meaning.
export const outcomes = {
  success: { text: 'Success', tone: 'success', desc: 'Datadog accepted every log and point of the window.' },
  partial: { text: 'Partial', tone: 'warning', desc: 'Some of it was accepted; the rest was refused (logs not sent, and the error).' },
  failed: { text: 'Failed', tone: 'danger', desc: 'Datadog accepted nothing of the window (a rejected key, say); the error says what it answered.' },
  rate_limited: { text: 'Rate limited', tone: 'info', desc: 'Everything was accepted, after Datadog answered 429: its rate limits delayed the window.' },
  too_old: { text: 'Too old', tone: 'neutral', desc: 'Older than Datadog takes metric points (1 h), so it has none; its logs went if younger than 18 h. Backfilled windows end so.' },
};

export const pageSizes = [10, 25, 50, 100];
const defaultPageSize = 25;

// outcomeBadge is one window's outcome.
export function outcomeBadge(outcome) {
  const o = outcomes[outcome] ?? { text: String(outcome ?? 'Unknown'), tone: 'neutral' };
  return h('span', { class: `outcome outcome--${outcome} badge badge--${o.tone}`, dataset: { outcome: String(outcome) } },
    h('span', { class: 'outcome__icon', 'aria-hidden': 'true' }), h('span', null, o.text));
}

// renderHistory is the detail page's sync history: a table of delivered
// windows, newest first, filtered by outcome and paged with the API's
// cursors. tick() is called with every refresh of the page: only the first
// page reloads by itself, so that a reader on an older page or with a
// filter keeps what they are reading.
export function renderHistory({ api, id }) {
  const titleId = uid('hist');
  const outcomeSel = h('select', { class: 'input input--sm', name: 'outcome', dataset: { test: 'history-outcome' } },
    h('option', { value: '' }, 'All outcomes'),
    Object.entries(outcomes).map(([k, o]) => h('option', { value: k }, o.text)));
  const sizeSel = h('select', { class: 'input input--sm', name: 'page_size', dataset: { test: 'history-page-size' } },
    pageSizes.map((n) => h('option', { value: String(n), selected: n === defaultPageSize }, String(n))));
  const outcomeId = uid('ho');
  const sizeId = uid('hs');
  outcomeSel.id = outcomeId;
  sizeSel.id = sizeId;
  const filters = h('div', { class: 'filters', role: 'group', 'aria-label': 'Sync history view' },
    h('div', { class: 'filters__item' }, h('label', { for: outcomeId }, 'Outcome'), outcomeSel),
    h('div', { class: 'filters__item' }, h('label', { for: sizeId }, 'Rows per page'), sizeSel));

  const zone = h('span');
  const live = h('p', { class: 'history__status small muted', role: 'status', 'aria-live': 'polite', dataset: { test: 'history-status' } });
  const tbody = h('tbody');
  const table = h('table', { class: 'table', dataset: { test: 'history-table' } },
    h('caption', { class: 'visually-hidden' }, 'Sync history, newest window first'),
    h('thead', null, h('tr', null,
      h('th', { scope: 'col' }, 'Time'),
      h('th', { scope: 'col' }, 'Window'),
      h('th', { scope: 'col', class: 'num' }, 'Records'),
      h('th', { scope: 'col', class: 'num' }, 'Logs'),
      h('th', { scope: 'col', class: 'num' }, 'Metric points'),
      h('th', { scope: 'col', class: 'num' }, 'Duration'),
      h('th', { scope: 'col' }, 'Outcome'),
      h('th', { scope: 'col' }, 'Error'))),
    tbody);
  // A wide table scrolls on its own on a narrow screen; a keyboard can
  // scroll it too.
  const wrap = h('div', { class: 'table-wrap', role: 'region', tabindex: '0', 'aria-label': 'Sync history table' }, table);
  const empty = h('div', { class: 'empty empty--compact', hidden: true, dataset: { test: 'history-empty' } });
  const problem = h('div', { class: 'form-status' });
  const newer = h('button', { type: 'button', class: 'btn btn--sm', dataset: { test: 'history-newer' } },
    h('span', { 'aria-hidden': 'true' }, '\u2190 '), 'Newer');
  const older = h('button', { type: 'button', class: 'btn btn--sm', dataset: { test: 'history-older' } },
    'Older', h('span', { 'aria-hidden': 'true' }, ' \u2192'));
  const pageNo = h('span', { class: 'pager__page', dataset: { test: 'history-page' } });
  const pager = h('nav', { class: 'pager', 'aria-label': 'Sync history pages' }, newer, pageNo, older);
  const paused = h('p', { class: 'small muted', hidden: true, dataset: { test: 'history-frozen' } },
    'This page does not refresh by itself; the newest page does.');
  const legend = h('details', { class: 'trouble legend' },
    h('summary', null, 'What the outcomes mean'),
    h('dl', { class: 'legend__list' }, Object.keys(outcomes).map((k) => h('div', null,
      h('dt', null, outcomeBadge(k)), h('dd', null, outcomes[k].desc)))));
  const el = h('section', { class: 'card history', 'aria-labelledby': titleId, dataset: { test: 'history' } },
    h('div', { class: 'card__head' },
      h('div', null,
        h('h2', { id: titleId }, 'Sync history'),
        h('p', { class: 'small muted' }, 'Each row is one sync window delivered to Datadog, newest first. Times are in ', zone, '.')),
      filters),
    problem, live, wrap, empty, pager, paused, legend);

  // cursors[i] is the cursor of page i ('' for the first): Newer goes back
  // along it, Older adds the answer's next_cursor.
  let cursors = [''];
  let index = 0;
  let next = '';
  let seq = 0;
  let loading = false;
  let off = false; // the exporter keeps no history: stop asking
  let shown = ''; // the rows as last drawn, to redraw only on change
  let interval = '';
  let stopped = false;

  const query = () => ({ outcome: outcomeSel.value, limit: Number(sizeSel.value), cursor: cursors[index] });

  async function load({ quiet } = {}) {
    if (off || stopped) return;
    const mine = ++seq;
    loading = true;
    if (!quiet) {
      el.setAttribute('aria-busy', 'true');
      newer.disabled = true;
      older.disabled = true;
    }
    try {
      const res = await api.syncs(id, query());
      if (mine !== seq || stopped) return;
      replace(problem);
      draw(res?.syncs ?? [], res?.next_cursor ?? '');
    } catch (err) {
      if (mine !== seq || stopped || err.status === 401) return;
      if (err.code === 'history_unavailable') {
        off = true;
        replace(problem, alertBox('info', 'No sync history here', 'This exporter keeps no sync history. Delivery totals are above; each window\u2019s outcome is not kept.'));
      } else if (err.code === 'not_ready') {
        replace(problem, alertBox('info', 'The sync history is loading',
          'This replica of the exporter is still reading the history topic. The table fills in a few seconds.'));
      } else if (err.field === 'cursor') {
        // A cursor the API no longer takes: start again from the newest.
        cursors = [''];
        index = 0;
        replace(problem, alertBox('info', null, 'That page is gone: showing the newest windows again.'));
        loading = false;
        load();
        return;
      } else {
        replace(problem, alertBox('error', 'Could not load the sync history', errorText(err)));
      }
      setPager();
    } finally {
      if (mine === seq) {
        loading = false;
        el.removeAttribute('aria-busy');
      }
    }
  }

  function draw(rows, nextCursor) {
    next = nextCursor;
    const key = JSON.stringify(rows);
    if (key !== shown) {
      shown = key;
      const now = new Date();
      replace(tbody, rows.map((r) => row(r, now)));
    }
    const filtered = outcomeSel.value ? outcomes[outcomeSel.value]?.text.toLowerCase() : '';
    wrap.hidden = rows.length === 0;
    empty.hidden = rows.length > 0;
    if (rows.length === 0) {
      replace(empty, index > 0
        ? h('p', null, 'No older windows.')
        : filtered
          ? h('p', null, `No windows with the outcome \u201c${filtered}\u201d. Choose All outcomes to see every window.`)
          : [h('p', { class: 'empty__title' }, 'No windows delivered yet'),
            h('p', null, `A row appears when a sync window with traffic closes and is delivered (${interval ? intervalLabel(interval).toLowerCase() : 'once per sync interval'}). A paused integration delivers nothing.`)]);
    }
    const first = index * Number(sizeSel.value);
    setText(live, rows.length === 0
      ? ''
      : `Page ${index + 1}: windows ${count(first + 1)} to ${count(first + rows.length)}${filtered ? `, outcome ${filtered}` : ''}.`);
    setPager();
  }

  function setPager() {
    newer.disabled = index === 0;
    older.disabled = !next;
    pager.hidden = index === 0 && !next;
    setText(pageNo, `Page ${index + 1}`);
    paused.hidden = index === 0;
  }

  function restart() {
    cursors = [''];
    index = 0;
    next = '';
    shown = '';
    load();
  }

  outcomeSel.addEventListener('change', restart);
  sizeSel.addEventListener('change', restart);
  older.addEventListener('click', () => {
    if (!next) return;
    cursors = cursors.slice(0, index + 1);
    cursors.push(next);
    index += 1;
    load();
  });
  newer.addEventListener('click', () => {
    if (index === 0) return;
    index -= 1;
    load();
  });

  setText(zone, `your time zone (${zoneName()})`);
  setPager();
  return {
    el,
    // tick reloads the first page quietly; other pages stay as they are.
    tick(it) {
      interval = it?.sync_interval ?? interval;
      if (index === 0 && !loading) load({ quiet: shown !== '' });
    },
    stop() {
      stopped = true;
    },
  };
}

// row is one window of the history table.
function row(r, now) {
  const cell = (cls, ...c) => h('td', cls ? { class: cls } : null, ...c);
  const logs = [count(r.logs_sent)];
  if (r.logs_dropped > 0) logs.push(h('span', { class: 'cell-note' }, `${count(r.logs_dropped)} not sent`));
  const err = r.error || r.status_code
    ? h('span', { class: 'cell-error' }, r.status_code ? h('span', { class: 'mono' }, `HTTP ${r.status_code}`) : null,
      r.status_code && r.error ? ': ' : '', r.error ?? '')
    : [h('span', { 'aria-hidden': 'true', class: 'muted' }, '\u2014'), visuallyHidden('none')];
  return h('tr', { dataset: { outcome: String(r.outcome), source: String(r.source ?? ''), start: String(r.window_start ?? '') } },
    cell('nowrap', h('time', { datetime: r.delivered_at, title: absolute(r.delivered_at) }, shortTime(r.delivered_at, now))),
    cell('nowrap', h('span', { title: `${absolute(r.window_start)} to ${absolute(r.window_end)}` }, windowLabel(r.window_start, r.window_end, now)),
      r.source === 'backfill' ? [' ', h('span', { class: 'tag tag--source' }, 'Backfill')] : null),
    cell('num', count(r.records)),
    cell('num', ...logs),
    cell('num', count(r.metric_points_sent)),
    cell('num nowrap', duration(r.duration_ms)),
    cell(null, outcomeBadge(r.outcome)),
    cell('error-cell', err));
}
