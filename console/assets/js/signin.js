import { createApi } from './api.js';
import { h, replace } from './dom.js';
import { alertBox, keyField } from './fields.js';

// renderSignIn asks for an API token and checks it with whoami before the
// app keeps it.
export function renderSignIn(root, { message, onSignedIn }) {
  const tokenField = keyField({
    label: 'API token',
    name: 'token',
    required: true,
    hint: "Ask your exporter's operator for one. It is kept in this browser tab only and forgotten when the tab closes.",
  });
  tokenField.input.autocomplete = 'current-password';
  const status = h('div', { class: 'form-status' });
  const submit = h('button', { type: 'submit', class: 'btn btn--primary btn--block' }, 'Sign in');
  const form = h('form', { class: 'stack', novalidate: true, 'aria-labelledby': 'signin-title' },
    tokenField.root, status, submit);

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    replace(status);
    const tok = tokenField.value();
    if (!tok) {
      tokenField.error('Enter your API token.');
      tokenField.input.focus();
      return;
    }
    tokenField.error('');
    submit.disabled = true;
    submit.textContent = 'Signing in…';
    // Its own client: a refused token is this form's message, not a
    // "signed out" bounce.
    const probe = createApi({ token: () => tok, onUnauthorized: () => {} });
    try {
      const me = await probe.whoami();
      tokenField.clear();
      onSignedIn(tok, me);
    } catch (err) {
      submit.disabled = false;
      submit.textContent = 'Sign in';
      if (err.status === 401) {
        tokenField.error('This exporter does not know that token. Check that you copied all of it.');
        tokenField.input.focus();
      } else if (err.status === 404) {
        replace(status, alertBox('error', 'Could not sign in',
          'This exporter does not serve the integrations API: its operator turns it on with PRISM_API_TOKENS_FILE.'));
      } else {
        replace(status, alertBox('error', 'Could not sign in', err.message));
      }
    }
  });

  replace(root,
    h('section', { class: 'signin' },
      h('div', { class: 'card signin__card' },
        h('img', { src: '/ui/logo.svg', alt: '', width: '48', height: '48', class: 'signin__logo' }),
        h('h1', { id: 'signin-title' }, 'Sign in to the console'),
        h('p', { class: 'muted' }, 'Connect your organisation\u2019s gateway traffic to Datadog, and see how its export is doing.'),
        message ? alertBox('info', null, message) : null,
        form)));
  tokenField.input.focus();
}
