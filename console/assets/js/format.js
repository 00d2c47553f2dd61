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
