import { h, replace, uid } from './dom.js';

// Form fields with their label, hint and message wired for assistive
// technology: the hint and the message are the input's description, and an
// invalid field says so with aria-invalid as well as in words.

// field wraps a control with its label, an optional hint, and a message
// line. control is a function of the id it must carry.
export function field({ label, hint, required, optional, control, extra }) {
  const id = uid('f');
  const hintId = hint ? `${id}-hint` : null;
  const msgId = `${id}-msg`;
  const input = control(id);
  input.setAttribute('aria-describedby', [hintId, msgId].filter(Boolean).join(' '));
  if (required) {
    input.required = true;
    input.setAttribute('aria-required', 'true');
  }
  const msg = h('div', { class: 'field__msg', id: msgId, 'aria-live': 'polite' });
  const root = h('div', { class: 'field' },
    h('label', { class: 'field__label', for: id }, label,
      optional ? h('span', { class: 'field__opt' }, ' (optional)') : null),
    hint ? h('p', { class: 'field__hint', id: hintId }, hint) : null,
    extra ? h('div', { class: 'field__row' }, input, extra) : input,
    msg);
  return {
    root,
    input,
    // error shows a problem with the field (or clears it when text is empty).
    error(text) {
      input.toggleAttribute('aria-invalid', Boolean(text));
      if (text) input.setAttribute('aria-invalid', 'true');
      replace(msg, text ? h('p', { class: 'msg msg--error' }, h('span', { class: 'msg__icon', 'aria-hidden': 'true' }), h('span', null, text)) : null);
    },
    // verdict shows Datadog's verdict on a key, with the server's advice.
    verdict(v) {
      if (!v) {
        this.error('');
        return;
      }
      const bad = v.verdict === 'rejected';
      input.toggleAttribute('aria-invalid', bad);
      if (bad) input.setAttribute('aria-invalid', 'true');
      replace(msg, verdictLine(v));
    },
  };
}

const verdictWords = {
  valid: { title: 'Valid', tone: 'success' },
  rejected: { title: 'Rejected', tone: 'error' },
  unreachable: { title: 'Could not check', tone: 'warning' },
  unchecked: { title: 'Not checked', tone: 'neutral' },
};

// verdictLine is one key's verdict: a word that carries the meaning, then
// the server's message, which says what to do.
export function verdictLine(v) {
  const w = verdictWords[v.verdict] ?? { title: String(v.verdict), tone: 'neutral' };
  return h('p', { class: `msg msg--${w.tone}`, dataset: { verdict: v.verdict } },
    h('span', { class: 'msg__icon', 'aria-hidden': 'true' }),
    h('span', null, h('strong', null, `${w.title}. `), v.message ?? ''));
}

// keyField is a password field for a Datadog key with a Show toggle. The
// value is never put anywhere but the request that needs it.
export function keyField({ label, hint, required, optional, placeholder, name }) {
  let input;
  // The button's words say what it will do ("Show API key", "Hide API
  // key"); a changing label and aria-pressed together would say it twice.
  const toggle = h('button', { type: 'button', class: 'btn btn--ghost btn--sm field__toggle' },
    h('span', { class: 'toggle-text' }, 'Show'), h('span', { class: 'visually-hidden' }, ` ${label}`));
  const f = field({
    label, hint, required, optional, extra: toggle,
    control: (id) => {
      input = h('input', {
        id, type: 'password', class: 'input input--mono', autocomplete: 'off', spellcheck: 'false',
        autocapitalize: 'off', placeholder: placeholder ?? '', name: name ?? id,
      });
      return input;
    },
  });
  toggle.setAttribute('aria-controls', input.id);
  toggle.addEventListener('click', () => {
    const show = input.type === 'password';
    input.type = show ? 'text' : 'password';
    toggle.querySelector('.toggle-text').textContent = show ? 'Hide' : 'Show';
  });
  return {
    ...f,
    value: () => input.value.trim(),
    // clear forgets the typed key and hides it again.
    clear() {
      input.value = '';
      input.type = 'password';
      toggle.querySelector('.toggle-text').textContent = 'Show';
    },
  };
}

// siteOptions fills the Datadog site select, labelled like "US1 (datadoghq.com)".
export function siteOptions(select, sites, selected) {
  replace(select, sites.map((s) => h('option', { value: s.code, selected: s.code === selected }, `${s.code} (${s.host})`)));
  select.value = selected;
}

// alertBox is a message block for a whole form or page. role=alert makes a
// screen reader say it as soon as it appears.
export function alertBox(tone, title, ...body) {
  return h('div', { class: `alert alert--${tone}`, role: tone === 'error' ? 'alert' : 'status', tabindex: '-1' },
    h('span', { class: 'alert__icon', 'aria-hidden': 'true' }),
    h('div', { class: 'alert__body' }, title ? h('p', { class: 'alert__title' }, title) : null, body));
}

// errorText says what an API error means for the person in front of it.
export function errorText(err) {
  if (err?.code === 'rate_limited' && err.retryAfter) {
    return `${err.message} Try again in ${err.retryAfter} s.`;
  }
  if (err?.status === 403) {
    return `${err.message || 'Forbidden.'} Your token's role does not allow this; ask an admin or the organisation's owner.`;
  }
  return err?.message || String(err);
}
