// Formatting of what the API returns, in one place so every view words
// times, counts and settings the same way.

const numberFormat = new Intl.NumberFormat('en');

export function count(n) {
  return typeof n === 'number' && Number.isFinite(n) ? numberFormat.format(n) : '0';
}

// The sync intervals the API accepts, in its own spelling.
export const intervals = ['1m', '2m', '5m', '10m', '15m', '30m'];
export const defaultInterval = '5m';

export function minutesOf(interval) {
  const m = /^(\d+)m$/.exec(interval ?? '');
  return m ? Number(m[1]) : null;
}

export function intervalLabel(interval) {
  const m = minutesOf(interval);
  if (m === null) return interval ? `Every ${interval}` : 'Not set';
  return m === 1 ? 'Every minute' : `Every ${m} minutes`;
}

export function shortInterval(interval) {
  const m = minutesOf(interval);
  return m === null ? String(interval) : `${m} min`;
}

export function siteLabel(code, host) {
  return host ? `${code} (${host})` : String(code ?? '');
}

// absolute is a date in the reader's locale and time zone, with the zone
// named so that a screenshot shared elsewhere still says when.
export function absolute(iso) {
  const d = parseTime(iso);
  if (!d) return 'Never';
  return d.toLocaleString('en-GB', {
    year: 'numeric', month: 'short', day: 'numeric',
    hour: '2-digit', minute: '2-digit', second: '2-digit', timeZoneName: 'short',
  });
}

// relative is "3 min ago" style; absent times read "Never".
export function relative(iso, now = Date.now()) {
  const d = parseTime(iso);
  if (!d) return 'Never';
  const s = Math.round((now - d.getTime()) / 1000);
  if (s < 0) return 'just now';
  if (s < 10) return 'just now';
  if (s < 60) return `${s} s ago`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ago`;
  const hrs = Math.floor(m / 60);
  if (hrs < 48) return `${hrs} h ago`;
  return `${Math.floor(hrs / 24)} days ago`;
}

function parseTime(iso) {
  if (!iso) return null;
  const d = new Date(iso);
  // The zero time of Go's encoding means "never" too.
  if (Number.isNaN(d.getTime()) || d.getUTCFullYear() < 2000) return null;
  return d;
}

export function historicalLabel(h) {
  switch (h?.mode) {
    case undefined:
    case 'new_only':
      return 'New traffic only';
    case 'all':
      return 'Everything Datadog still accepts';
    case 'range':
      return `From ${absolute(h.from)} to ${absolute(h.to)}`;
    default:
      return String(h.mode);
  }
}

export const roleWords = {
  admin: 'Admin',
  owner: 'Owner',
  viewer: 'Viewer',
};

// canWrite says whether a role may change integrations; the server decides
// all the same (a viewer's write answers 403).
export function canWrite(me) {
  return me?.role === 'admin' || me?.role === 'owner';
}

// roleSummary is what the token may do, in a sentence.
export function roleSummary(me) {
  switch (me?.role) {
    case 'admin':
      return "can see and change every organisation's integrations";
    case 'owner':
      return `can see and change the integration of ${me.org_id}`;
    case 'viewer':
      return `can see the integration of ${me.org_id}, but not change it`;
    default:
      return 'has a role this console does not know; the exporter decides what it may do';
  }
}

// duration is a delivery's time: "840 ms", "3.2 s", "2 min 5 s".
export function duration(ms) {
  if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0) return '—';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.round(ms / 1000);
  return `${Math.floor(s / 60)} min ${s % 60} s`;
}

const clockFormat = new Intl.DateTimeFormat('en-GB', { hour: '2-digit', minute: '2-digit', second: '2-digit' });
const clockMinutes = new Intl.DateTimeFormat('en-GB', { hour: '2-digit', minute: '2-digit' });
const dayFormat = new Intl.DateTimeFormat('en-GB', { day: 'numeric', month: 'short' });

function sameDay(a, b) {
  return a.getFullYear() === b.getFullYear() && a.getMonth() === b.getMonth() && a.getDate() === b.getDate();
}

// shortTime is a time in the reader's zone, with the day when it is not
// today: "07:31:02", "30 Nov 19:04:11". The zone is named once, beside the
// table that uses it (zoneName).
export function shortTime(iso, now = new Date()) {
  const d = parseTime(iso);
  if (!d) return '—';
  return sameDay(d, now) ? clockFormat.format(d) : `${dayFormat.format(d)} ${clockFormat.format(d)}`;
}

// windowLabel is a sync window in the reader's zone: "07:30–07:31",
// "30 Nov 12:05–12:10".
export function windowLabel(startIso, endIso, now = new Date()) {
  const a = parseTime(startIso);
  const b = parseTime(endIso);
  if (!a || !b) return '—';
  const day = sameDay(a, now) ? '' : `${dayFormat.format(a)} `;
  const endDay = sameDay(a, b) || b.getTime() - a.getTime() <= 0 ? '' : `${dayFormat.format(b)} `;
  return `${day}${clockMinutes.format(a)}\u2013${endDay}${clockMinutes.format(b)}`;
}

// zoneName names the reader's time zone, as the tables' times are in it.
export function zoneName(now = new Date()) {
  const part = new Intl.DateTimeFormat('en-GB', { timeZoneName: 'short' }).formatToParts(now)
    .find((p) => p.type === 'timeZoneName');
  return part ? part.value : 'local time';
}

// utcLabel is a time in UTC, for what the user gave in UTC (a backfill's
// range): "1 Dec 2026, 06:10 UTC".
export function utcLabel(iso) {
  const d = parseTime(iso);
  if (!d) return '—';
  const date = d.toLocaleDateString('en-GB', { timeZone: 'UTC', day: 'numeric', month: 'short', year: 'numeric' });
  const time = d.toLocaleTimeString('en-GB', { timeZone: 'UTC', hour: '2-digit', minute: '2-digit' });
  return `${date}, ${time} UTC`;
}

// toUTCInput is the value of a datetime-local input that holds UTC:
// "2026-12-01T06:10".
export function toUTCInput(d) {
  return d.toISOString().slice(0, 16);
}

// fromUTCInput reads a datetime-local input that holds UTC; null when empty
// or not a time.
export function fromUTCInput(value) {
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?$/.test(value ?? '')) return null;
  const d = new Date(`${value}Z`);
  return Number.isNaN(d.getTime()) ? null : d;
}

// Datadog's limits on the age of what it takes (docs/api.md, Backfill).
export const logsMaxAgeMs = 18 * 3600 * 1000;
export const metricsMaxAgeMs = 3600 * 1000;

// coverageOf splits [from, to) as the API's coverage does, judged at now:
// logs and metrics for the last hour, logs only up to 18 h back, nothing
// before. Each part is null when empty.
export function coverageOf(from, to, now = new Date()) {
  const logsFrom = now.getTime() - logsMaxAgeMs;
  const metricsFrom = now.getTime() - metricsMaxAgeMs;
  const part = (a, b) => {
    const s = Math.max(a, from.getTime());
    const e = Math.min(b, to.getTime());
    return s < e ? { from: new Date(s).toISOString(), to: new Date(e).toISOString() } : null;
  };
  return {
    logs_and_metrics: part(metricsFrom, to.getTime()),
    logs_only: part(logsFrom, metricsFrom),
    not_sent: part(from.getTime(), logsFrom),
  };
}
