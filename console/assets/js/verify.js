import { h } from './dom.js';
import { intervalLabel } from './format.js';

// renderVerify says how to find the exported data in Datadog.
export function renderVerify(it) {
  return h('section', { class: 'verify', 'aria-labelledby': 'verify-title' },
    h('h3', { id: 'verify-title' }, 'How to verify in Datadog'),
    h('ol', { class: 'verify__steps' },
      h('li', null, 'In Logs \u2192 Search, search for ', h('code', null, 'source:futureagi'),
        '. Each gateway request is one log, tagged with its model, provider and status code.'),
      h('li', null, 'In Metrics \u2192 Explorer, graph ', h('code', null, 'prism.gateway.requests'),
        ' (and the other prism.gateway.* metrics: errors, tokens, cost, latency).'),
      h('li', null, `Data arrives after each sync interval closes (${intervalLabel(it.sync_interval).toLowerCase()}). `,
        'The integration\u2019s page here shows the last sync and the logs and points sent.')));
}
