import { h, setText, visuallyHidden } from './dom.js';

// statusOf maps an integration to the words and tone of its badge. The
// words carry the meaning; colour and icon only repeat it.
export function statusOf(it) {
  const s = it?.paused && it?.status !== 'error' ? 'paused' : it?.status;
  switch (s) {
    case 'active':
      return { key: 'active', text: 'Active', tone: 'success' };
    case 'syncing':
      return { key: 'syncing', text: 'Syncing', tone: 'info' };
    case 'backfilling': {
      // backfill.percent is 0 to 100, 0 until the records to scan are known.
      const p = it.backfill ? Number(it.backfill.percent) : NaN;
      const pct = Number.isFinite(p) ? Math.floor(p) : null;
      return { key: 'backfilling', text: pct === null ? 'Backfilling' : `Backfilling ${pct}%`, tone: 'info' };
    }
    case 'paused':
      return { key: 'paused', text: 'Paused', tone: 'warning' };
    case 'error':
      return { key: 'error', text: 'Error', tone: 'danger' };
    default:
      return { key: 'unknown', text: s ? String(s) : 'Unknown', tone: 'neutral' };
  }
}

// badge is a status badge; update(it) changes it in place.
export function badge(it) {
  const icon = h('span', { class: 'badge__icon', 'aria-hidden': 'true' });
  const text = h('span', { class: 'badge__text' });
  const el = h('span', { class: 'badge', dataset: { test: 'status' } }, visuallyHidden('Status: '), icon, text);
  const update = (next) => {
    const s = statusOf(next);
    el.className = `badge badge--${s.tone} badge--${s.key}`;
    el.dataset.status = s.key;
    setText(text, s.text);
  };
  update(it);
  return { el, update };
}
