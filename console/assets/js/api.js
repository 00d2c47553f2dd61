// The integrations API (docs/api.md) as the console uses it. Every call
// carries the tab's token; a 401 anywhere hands control back to the app,
// which forgets the token and shows the sign-in screen.

export class ApiError extends Error {
  constructor(status, body, retryAfter) {
    const e = body?.error ?? {};
    super(e.message || describeStatus(status));
    this.status = status;
    this.code = e.code || (status === 0 ? 'network' : `http_${status}`);
    this.field = e.field;
    // keys_rejected carries the verdicts "as validate returns them"; accept
    // them inside error or beside it.
    this.verdicts = e.verdicts ?? body?.verdicts ?? null;
    this.retryAfter = retryAfter ? Number(retryAfter) : null;
  }
}

function describeStatus(status) {
  switch (status) {
    case 0:
      return 'The exporter did not answer. Check that it is running and reachable, then try again.';
    case 401:
      return 'The exporter does not know this token.';
    case 403:
      return 'Your token is not allowed to do this.';
    case 404:
      return 'Not found.';
    case 409:
      return 'The exporter refused: the integration is not in a state that allows this.';
    case 422:
      return 'The exporter could not do this with the integration as it is.';
    case 501:
      return 'This exporter cannot do that yet.';
    case 503:
      return 'The exporter is not ready. Try again in a few seconds.';
    default:
      return `The exporter answered ${status}.`;
  }
}

// createApi returns the API's calls. token() gives the current token;
// onUnauthorized is called on every 401 before the error is thrown.
export function createApi({ token, onUnauthorized }) {
  async function call(method, path, body) {
    const headers = { Accept: 'application/json', Authorization: `Bearer ${token()}` };
    const init = { method, headers, cache: 'no-store', credentials: 'omit', referrerPolicy: 'no-referrer' };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let res;
    try {
      res = await fetch(`/api/v1${path}`, init);
    } catch {
      throw new ApiError(0, null, null);
    }
    const text = await res.text();
    let data = null;
    if (text) {
      try {
        data = JSON.parse(text);
      } catch {
        data = null;
      }
    }
    if (res.ok) return data;
    const err = new ApiError(res.status, data, res.headers.get('Retry-After'));
    if (res.status === 401) onUnauthorized(err);
    throw err;
  }

  const one = (id) => `/integrations/${encodeURIComponent(id)}`;
  return {
    whoami: () => call('GET', '/whoami'),
    sites: () => call('GET', '/sites'),
    validate: (body) => call('POST', '/integrations/validate', body),
    create: (body) => call('POST', '/integrations', body),
    list: (pageToken) => {
      const q = new URLSearchParams({ page_size: '200' });
      if (pageToken) q.set('page_token', pageToken);
      return call('GET', `/integrations?${q}`);
    },
    get: (id) => call('GET', one(id)),
    patch: (id, body) => call('PATCH', one(id), body),
    pause: (id) => call('POST', `${one(id)}/pause`),
    resume: (id) => call('POST', `${one(id)}/resume`),
    retry: (id) => call('POST', `${one(id)}/retry`),
    remove: (id) => call('DELETE', one(id)),
    // The sync history, newest window first: {syncs, next_cursor}.
    syncs: (id, { outcome, limit, cursor } = {}) => {
      const q = new URLSearchParams();
      if (outcome) q.set('outcome', outcome);
      if (limit) q.set('limit', String(limit));
      if (cursor) q.set('cursor', cursor);
      const qs = q.toString();
      return call('GET', `${one(id)}/syncs${qs ? `?${qs}` : ''}`);
    },
    startBackfill: (id, body) => call('POST', `${one(id)}/backfill`, body),
    cancelBackfill: (id) => call('DELETE', `${one(id)}/backfill`),
    // body is optional: {monitors: {error_rate?, p95_latency_ms?, cost_per_hour?}}.
    dashboard: (id, body) => call('POST', `${one(id)}/dashboard`, body),
  };
}

// listAll reads every page of integrations, up to a bound that keeps a
// console open on a huge exporter from fetching forever.
export async function listAll(api, maxPages = 20) {
  const out = [];
  let token = '';
  for (let i = 0; i < maxPages; i++) {
    const page = await api.list(token);
    out.push(...(page?.integrations ?? []));
    token = page?.next_page_token ?? '';
    if (!token) return { integrations: out, truncated: false };
  }
  return { integrations: out, truncated: true };
}
