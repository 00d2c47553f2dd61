import { h, replace, setText } from './dom.js';
import { alertBox, errorText, verdictLine } from './fields.js';
import { absolute, canWrite, count, historicalLabel, intervalLabel, relative, siteLabel } from './format.js';
import { badge } from './status.js';
import { openDelete, openEdit } from './dialogs.js';
import { renderTroubleshooting } from './troubleshoot.js';
import { renderHistory } from './history.js';
import { backfillCard, openBackfill } from './backfill.js';
import { dashboardCard } from './dashboard.js';

const refreshEvery = 3000;

// renderDetail is one integration: its status (refreshed every few
// seconds), what to do about an error, the actions the token may take, its
// backfill, its sync history, its dashboard, its facts, and
// troubleshooting.
export function renderDetail(root, ctx) {
  const { api, me, id } = ctx;
  const title = h('h1', { class: 'mono-title' }, 'Integration');
  // The status sits beside the name; it is filled once the first answer is in.
  const statusSlot = h('div', { class: 'title-row__status' });
  const body = h('div', { class: 'region', 'aria-busy': 'true' }, h('p', { class: 'muted' }, 'Loading the integration…'));
  replace(root,
    h('p', { class: 'crumbs' }, h('a', { href: '#/integrations' }, 'Integrations'), ' / ', h('span', { class: 'mono' }, id)),
    h('div', { class: 'title-row' }, title, statusSlot), body);

  let timer = 0;
  let stopped = false;
  let page = null; // built on the first answer, then updated in place
  let sites = [];
  api.sites().then((r) => { sites = r?.sites ?? []; }).catch(() => {});

  async function refresh() {
    clearTimeout(timer);
    try {
      const it = await api.get(id);
      if (stopped) return;
      if (!page) {
        page = buildPage(it);
        body.removeAttribute('aria-busy');
        replace(body, page.el);
        replace(statusSlot, page.status);
      }
      page.update(it);
      page.history.tick(it);
    } catch (err) {
      if (stopped || err.status === 401) return;
      if (err.status === 404) {
        page = null;
        replace(statusSlot);
        setText(title, 'Integration not found');
        body.removeAttribute('aria-busy');
        replace(body, alertBox('info', null,
          h('p', null, 'There is no such integration, or your token may not see it. It may have been deleted.'),
          h('p', null, h('a', { href: '#/integrations' }, 'Back to integrations'))));
        return;
      }
      if (page) page.stale(err);
      else replace(body, alertBox('error', 'Could not load the integration', err.message));
    }
    if (!stopped && !document.hidden) timer = setTimeout(refresh, refreshEvery);
  }

  // A hidden tab stops polling; coming back refreshes at once.
  const onVisible = () => {
    if (!document.hidden && !stopped) refresh();
  };
  document.addEventListener('visibilitychange', onVisible);

  // act runs one action button's call, with the button busy meanwhile.
  async function act(button, busyText, call, after) {
    const text = button.textContent;
    page?.actionError(null);
    button.disabled = true;
    button.textContent = busyText;
    try {
      const res = await call();
      after?.(res);
      await refresh();
    } catch (err) {
      if (err.status !== 401) page?.actionError(err);
    } finally {
      button.disabled = false;
      button.textContent = text;
    }
  }

  function buildPage(first) {
    const writer = canWrite(me);
    const b = badge(first);
    const statusRegion = h('div', { class: 'status-region', role: 'status', 'aria-live': 'polite', 'aria-atomic': 'true' }, b.el);
    const checked = h('p', { class: 'muted small' });
    const sub = h('p', { class: 'lead' });
    const actionMsg = h('div', { class: 'form-status', dataset: { test: 'action-status' } });

    const pause = h('button', { type: 'button', class: 'btn', dataset: { test: 'pause' } }, 'Pause');
    const resume = h('button', { type: 'button', class: 'btn btn--primary', dataset: { test: 'resume' } }, 'Resume');
    const edit = h('button', { type: 'button', class: 'btn', dataset: { test: 'edit' } }, 'Edit');
    const startBf = h('button', { type: 'button', class: 'btn', dataset: { test: 'start-backfill' } }, 'Start backfill');
    const del = h('button', { type: 'button', class: 'btn btn--danger-ghost', dataset: { test: 'delete' } }, 'Delete');
    const toolbar = h('div', { class: 'toolbar', role: 'group', 'aria-label': 'Actions' }, pause, resume, edit, startBf, del);
    const fileNote = h('p', { class: 'note', hidden: true });
    const roNote = writer ? null : h('p', { class: 'note', dataset: { test: 'readonly' } },
      'Read-only: a viewer token can see this integration but not change it.');

    const retry = h('button', { type: 'button', class: 'btn btn--primary', dataset: { test: 'retry' } }, 'Retry now');
    const fixKeys = h('button', { type: 'button', class: 'btn' }, 'Edit keys');
    const errMessage = h('p', { class: 'error-panel__message' });
    const errHint = h('p', { class: 'error-panel__hint' });
    const errResult = h('div');
    const errorPanel = h('section', { class: 'error-panel', hidden: true, 'aria-labelledby': 'err-title', dataset: { test: 'error-panel' } },
      h('h2', { id: 'err-title' }, 'Datadog refused this integration\u2019s keys'),
      h('p', { class: 'small muted' }, 'Nothing is sent while the keys are refused. Datadog answered:'),
      errMessage,
      h('p', { class: 'error-panel__hint-title' }, 'What to do'),
      errHint,
      errResult,
      writer ? h('div', { class: 'actions actions--start' }, retry, fixKeys) : null);
    // Outside error: what the exporter says of the state (starting,
    // checking the keys, paused), and what to do about it, if anything.
    const noteMessage = h('p', { class: 'status-message' });
    const noteHint = h('p', { class: 'status-hint' });
    const notePanel = h('div', { class: 'alert alert--info', hidden: true, dataset: { test: 'status-note' } },
      h('span', { class: 'alert__icon', 'aria-hidden': 'true' }),
      h('div', { class: 'alert__body' }, noteMessage, noteHint));

    const stat = (label, key) => {
      const dd = h('dd', { class: 'stat__value', dataset: { test: key } });
      return { dd, el: h('div', { class: 'stat' }, h('dt', null, label), dd) };
    };
    const sLast = stat('Last sync', 'last-sync');
    const sLogs = stat('Logs sent', 'logs-sent');
    const sPoints = stat('Points sent', 'points-sent');
    const sFailed = stat('Failed batches', 'batches-failed');

    const fact = (label, cls, key) => {
      const dd = h('dd', { class: cls ?? '', dataset: key ? { test: key } : undefined });
      return { dd, el: h('div', { class: 'fact' }, h('dt', null, label), dd) };
    };
    const fSite = fact('Datadog site', '', 'site');
    const fKey = fact('API key', 'mono', 'api-key-hint');
    const fApp = fact('Application key', 'mono');
    const fInterval = fact('Sync interval', '', 'interval');
    const fHist = fact('Historical data');
    const fResumed = fact('Resumed');
    const fConnected = fact('Connected');
    const fUpdated = fact('Last changed');
    const fManaged = fact('Managed by');
    const fId = fact('Integration ID', 'mono');

    let current = first;
    const refreshSoon = () => refresh();
    const bf = backfillCard({ api, id, writer, announce: ctx.announce, onChanged: refreshSoon });
    const dash = dashboardCard({ api, id, writer, announce: ctx.announce, onChanged: refreshSoon, editAppKey: () => openEditDialog('app_key') });
    const history = renderHistory({ api, id });
    const el = h('div', { class: 'detail' },
      h('div', { class: 'detail__head' }, sub, checked),
      writer ? toolbar : roNote, fileNote, actionMsg, errorPanel, notePanel,
      h('dl', { class: 'stats' }, sLast.el, sLogs.el, sPoints.el, sFailed.el),
      bf.el,
      history.el,
      dash.el,
      h('section', { class: 'card', 'aria-labelledby': 'facts-title' },
        h('h2', { id: 'facts-title' }, 'Details'),
        h('dl', { class: 'facts' }, fSite.el, fKey.el, fApp.el, fInterval.el, fHist.el, fConnected.el, fResumed.el, fUpdated.el, fManaged.el, fId.el)),
      renderTroubleshooting(() => current, writer ? { editSite: () => openEditDialog('site'), editKey: () => openEditDialog('api_key') } : null));

    const openEditDialog = (focus) => openEdit({
      api, it: current, sites, focus,
      onSaved: (it) => {
        ctx.announce('Saved the changes.');
        page.update(it);
        refresh();
      },
    });

    pause.addEventListener('click', () => act(pause, 'Pausing…', () => api.pause(id),
      () => ctx.announce('Paused. Records that arrive while paused are not exported.')));
    resume.addEventListener('click', () => act(resume, 'Resuming…', () => api.resume(id), (res) => {
      const at = res?.resumed_at ? ` from ${absolute(res.resumed_at)}` : '';
      ctx.announce(`Resumed: new traffic${at} is exported.`);
    }));
    edit.addEventListener('click', () => openEditDialog());
    startBf.addEventListener('click', () => openBackfill({
      api, it: current,
      onStarted: (job) => {
        bf.started(job);
        ctx.announce('Started the backfill. Its progress shows below, and the status reads Backfilling until it ends.');
        refresh();
      },
    }));
    fixKeys.addEventListener('click', () => openEditDialog('api_key'));
    del.addEventListener('click', () => openDelete({
      api, it: current,
      onDeleted: () => {
        ctx.announce(`Deleted the integration of ${current.org_id}.`);
        ctx.navigate('#/integrations');
      },
    }));
    retry.addEventListener('click', async () => {
      replace(errResult);
      retry.disabled = true;
      retry.textContent = 'Retrying…';
      try {
        await api.retry(id);
        ctx.announce('The keys passed: exporting again.');
        await refresh();
      } catch (err) {
        if (err.status === 401) return;
        if (err.code === 'keys_rejected' && err.verdicts) {
          replace(errResult, h('div', { class: 'retry-result', role: 'alert' },
            h('p', { class: 'alert__title' }, 'Datadog still refuses the keys'),
            verdictLine(err.verdicts.api_key ?? { verdict: 'rejected', message: err.message }),
            err.verdicts.app_key && err.verdicts.app_key.verdict !== 'unchecked' ? verdictLine(err.verdicts.app_key) : null));
        } else {
          replace(errResult, h('div', { class: 'retry-result', role: 'alert' }, h('p', null, errorText(err))));
        }
      } finally {
        retry.disabled = false;
        retry.textContent = 'Retry now';
      }
    });

    return {
      el,
      status: statusRegion,
      history,
      update(it) {
        current = it;
        const fromFile = it.managed_by === 'file';
        setText(title, it.org_id);
        document.title = `${it.org_id} · Prism exporter`;
        setText(sub, `Datadog \u00b7 ${siteLabel(it.site, it.site_host)}`);
        setText(checked, `Status checked ${new Date().toLocaleTimeString('en-GB')}; refreshes every few seconds.`);
        b.update(it);
        const paused = it.paused || it.status === 'paused';
        pause.hidden = paused;
        resume.hidden = !paused;
        for (const btn of [pause, resume, edit, startBf, del]) btn.disabled = fromFile;
        fileNote.hidden = !fromFile;
        setText(fileNote, fromFile
          ? `This integration comes from the exporter\u2019s tenants file${it.file ? ` (${it.file})` : ''}: change it there. The API refuses changes to it.`
          : '');

        const isError = it.status === 'error';
        errorPanel.hidden = !isError;
        setText(errMessage, it.status_message || 'Datadog refused the keys.');
        setText(errHint, it.hint || 'Check the keys and the site, then edit them or retry.');
        if (!isError) replace(errResult);
        // A delivery in flight is "syncing" with no message: no panel, or it
        // would blink with every delivery.
        // Backfilling: the backfill section below says it all, in the page's
        // words rather than the API's.
        const message = isError || it.status === 'backfilling' ? '' : it.status_message || '';
        const hint = !isError && (message || paused) ? it.hint || '' : '';
        notePanel.hidden = !message && !hint;
        setText(noteMessage, message ? `${message.charAt(0).toUpperCase()}${message.slice(1)}.`.replace(/\.\.$/, '.') : '');
        noteMessage.hidden = !message;
        setText(noteHint, hint);
        noteHint.hidden = !hint;

        setText(sLast.dd, relative(it.last_synced_at));
        sLast.dd.title = absolute(it.last_synced_at);
        setText(sLogs.dd, count(it.logs_sent));
        setText(sPoints.dd, count(it.points_sent));
        setText(sFailed.dd, count(it.batches_failed));

        setText(fSite.dd, siteLabel(it.site, it.site_host));
        setText(fKey.dd, it.api_key_hint || '—');
        setText(fApp.dd, it.app_key_hint || 'None');
        // A new interval starts at a window boundary (docs/api.md, Edit).
        setText(fInterval.dd, it.sync_interval_from
          ? `${intervalLabel(it.sync_interval)}, from ${absolute(it.sync_interval_from)}`
          : intervalLabel(it.sync_interval));
        fResumed.el.hidden = !it.resumed_at;
        setText(fResumed.dd, it.resumed_at ? `${absolute(it.resumed_at)}. Records of the paused period are not exported.` : '');
        setText(fHist.dd, historicalLabel(it.historical));
        setText(fConnected.dd, `${absolute(it.connected_at)}. Requests from then on are exported.`);
        setText(fUpdated.dd, absolute(it.updated_at));
        setText(fManaged.dd, fromFile ? 'The tenants file' : 'This console and the API');
        setText(fId.dd, it.id);
        bf.update(it);
        dash.update(it);
      },
      stale(err) {
        setText(checked, `Could not refresh: ${err.message}`);
      },
      actionError(err) {
        replace(actionMsg, err ? alertBox('error', 'That did not work', errorText(err)) : null);
      },
    };
  }

  refresh();
  return () => {
    stopped = true;
    clearTimeout(timer);
    page?.history.stop();
    document.removeEventListener('visibilitychange', onVisible);
    document.querySelectorAll('dialog').forEach((d) => d.remove());
  };
}
