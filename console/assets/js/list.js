import { listAll } from './api.js';
import { h, replace, setText } from './dom.js';
import { alertBox } from './fields.js';
import { canWrite, count, relative, absolute, roleSummary, roleWords, siteLabel } from './format.js';
import { badge } from './status.js';

const refreshEvery = 5000;

// renderList shows the connected integrations, the platforms that can be
// connected, and what to do when there is nothing yet. It refreshes itself.
export function renderList(root, ctx) {
  const { api, me } = ctx;
  const cards = new Map(); // id -> card, updated in place so focus survives a refresh
  const grid = h('ul', { class: 'cards', 'aria-label': 'Connected integrations' });
  const region = h('div', { class: 'region', 'aria-busy': 'true' }, h('p', { class: 'muted' }, 'Loading integrations…'));
  const platforms = h('div', { class: 'platforms' });
  let timer = 0;
  let stopped = false;

  replace(root,
    h('div', { class: 'page-head' },
      h('div', null,
        h('h1', null, 'Integrations'),
        h('p', { class: 'lead' }, 'Where this exporter sends each organisation\u2019s gateway traffic.')),
      h('p', { class: 'role-note' }, h('span', { class: 'role-chip' }, roleWords[me.role] ?? me.role),
        ` Your token ${roleSummary(me)}.`)),
    h('section', { class: 'section', 'aria-labelledby': 'connected-title' },
      h('h2', { id: 'connected-title' }, 'Connected'), region),
    h('section', { class: 'section', 'aria-labelledby': 'platforms-title' },
      h('h2', { id: 'platforms-title' }, 'Available platforms'), platforms));

  async function load() {
    try {
      const { integrations, truncated } = await listAll(api);
      if (stopped) return;
      show(integrations, truncated);
    } catch (err) {
      if (stopped || err.status === 401) return;
      region.removeAttribute('aria-busy');
      replace(region, alertBox('error', 'Could not load the integrations', err.message));
    }
    if (!stopped) timer = setTimeout(load, refreshEvery);
  }

  function show(list, truncated) {
    region.removeAttribute('aria-busy');
    renderPlatforms(platforms, me, list);
    if (list.length === 0) {
      cards.clear();
      replace(region, emptyState(me));
      return;
    }
    if (!region.contains(grid)) replace(region, grid);
    const seen = new Set();
    for (const it of list) {
      seen.add(it.id);
      const c = cards.get(it.id);
      if (c) c.update(it);
      else cards.set(it.id, card(it));
    }
    for (const [id, c] of cards) {
      if (!seen.has(id)) {
        c.el.remove();
        cards.delete(id);
      }
    }
    // Keep the API's order.
    list.forEach((it, i) => {
      const el = cards.get(it.id).el;
      if (grid.children[i] !== el) grid.insertBefore(el, grid.children[i] ?? null);
    });
    const note = region.querySelector('.truncated');
    if (truncated && !note) region.append(h('p', { class: 'muted truncated' }, 'Showing the first integrations only.'));
  }

  load();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

// card is one integration; update(it) refreshes it in place.
function card(it) {
  const b = badge(it);
  const link = h('a', { class: 'icard__link', href: `#/integrations/${encodeURIComponent(it.id)}` });
  const sub = h('p', { class: 'icard__sub' });
  const lastSync = h('dd', null);
  const logs = h('dd', null);
  const points = h('dd', null);
  const msg = h('p', { class: 'icard__msg' });
  const el = h('li', { class: 'icard', dataset: { id: it.id } },
    h('div', { class: 'icard__head' },
      h('span', { class: 'platform-mark', 'aria-hidden': 'true' }, 'DD'),
      h('div', { class: 'icard__names' }, h('h3', { class: 'icard__title' }, link), sub),
      b.el),
    h('dl', { class: 'icard__stats' },
      h('div', null, h('dt', null, 'Last sync'), lastSync),
      h('div', null, h('dt', null, 'Logs sent'), logs),
      h('div', null, h('dt', null, 'Points sent'), points)),
    msg);
  const update = (next) => {
    b.update(next);
    setText(link, next.org_id);
    setText(sub, `Datadog \u00b7 ${siteLabel(next.site, next.site_host)}`);
    setText(lastSync, relative(next.last_synced_at));
    lastSync.title = absolute(next.last_synced_at);
    setText(logs, count(next.logs_sent));
    setText(points, count(next.points_sent));
    setText(msg, next.status === 'error' ? next.status_message || 'Datadog refused the keys.' : '');
    msg.hidden = next.status !== 'error';
  };
  update(it);
  return { el, update };
}

function emptyState(me) {
  const org = me.org_id ? me.org_id : 'an organisation';
  return h('div', { class: 'empty' },
    h('div', { class: 'empty__art', 'aria-hidden': 'true' }),
    h('h3', null, 'No integrations yet'),
    canWrite(me)
      ? [h('p', null, `Connect Datadog to send ${org}\u2019s gateway requests to your Datadog account, as one log per request and metrics per sync interval. You need a Datadog API key of that account.`),
        h('a', { class: 'btn btn--primary', href: '#/connect' }, 'Connect Datadog')]
      : h('p', null, `Your token can only view. Ask an admin, or the owner of ${org}, to connect Datadog.`));
}

function renderPlatforms(box, me, list) {
  const mine = me.role !== 'admin' && list.find((it) => it.org_id === me.org_id);
  let action;
  if (!canWrite(me)) {
    action = h('p', { class: 'muted small' }, 'Viewers cannot connect integrations.');
  } else if (mine) {
    action = h('p', { class: 'small' }, `Connected for ${me.org_id}. `,
      h('a', { href: `#/integrations/${encodeURIComponent(mine.id)}` }, 'View the integration'));
  } else {
    action = h('a', { class: 'btn btn--primary', href: '#/connect', dataset: { test: 'connect-datadog' } }, 'Connect Datadog');
  }
  replace(box,
    h('article', { class: 'pcard', 'aria-labelledby': 'pcard-dd' },
      h('span', { class: 'platform-mark platform-mark--lg', 'aria-hidden': 'true' }, 'DD'),
      h('div', { class: 'pcard__body' },
        h('h3', { id: 'pcard-dd' }, 'Datadog'),
        h('p', { class: 'muted' }, 'Every gateway request as a log (source:futureagi), and request, token, cost and latency metrics (prism.gateway.*) per sync interval. Sites US1 to US2-FED.')),
      h('div', { class: 'pcard__action' }, action)));
}
