import { h } from './dom.js';
import { intervalLabel } from './format.js';

// renderTroubleshooting is the four problems people meet, each with what to
// check and, where the console can do it, the button that fixes it. it()
// is the integration as last fetched; actions is null for a viewer.
export function renderTroubleshooting(it, actions) {
  const now = it();
  const item = (title, ...body) => h('details', { class: 'trouble' },
    h('summary', null, title), h('div', { class: 'trouble__body' }, ...body));
  const button = (text, fn) => (actions ? h('button', { type: 'button', class: 'btn btn--sm', onclick: fn }, text) : null);
  return h('section', { class: 'card', 'aria-labelledby': 'trouble-title' },
    h('h2', { id: 'trouble-title' }, 'Troubleshooting'),
    item('The keys are valid, but on another Datadog site',
      h('p', null, 'A Datadog key belongs to one site. If Datadog refuses keys you know are good, the account is probably on another site: your Datadog address tells which (app.datadoghq.eu is EU1, us5.datadoghq.com is US5).'),
      h('p', null, 'Edit the integration and choose the right site; the keys are checked on it before the change applies.'),
      button('Edit the site', () => actions.editSite())),
    item('The API key was revoked, or is wrong',
      h('p', null, 'When a key is revoked in Datadog (Organization Settings \u2192 API Keys) the status turns Error and nothing is sent. Create or copy a valid API key of the same account and edit the integration\u2019s API key: it goes back to Active as soon as the new key validates.'),
      button('Edit the API key', () => actions.editKey())),
    item('No data in Datadog',
      h('ul', null,
        h('li', null, 'Search the logs for ', h('code', null, 'source:futureagi'), ', over a time range that covers the last sync.'),
        h('li', null, `Data is sent when each sync interval closes (${intervalLabel(now.sync_interval).toLowerCase()}): wait one interval after traffic starts.`),
        h('li', null, 'Check that the integration is not Paused: records that arrive while paused are not exported, even after resuming.'),
        h('li', null, 'Check that the gateway\u2019s records carry ', h('code', null, `org_id: ${now.org_id}`),
          '. Records of other organisations, and records from before the integration was connected, are not sent here.'))),
    item('Rate limited, or Datadog unreachable',
      h('p', null, 'The exporter retries by itself, backing off, and loses nothing meanwhile: it moves on in Kafka only once Datadog has accepted the data. The status shows Syncing while it retries.'),
      h('p', null, 'If it lasts, read the last message from Datadog at the top of this page (status message), and check the exporter\u2019s network path to Datadog.')));
}
