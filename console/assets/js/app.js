// The console's entry point: the session (a token in this tab's
// sessionStorage), the hash router, and the frame around the views.
import { createApi } from './api.js';
import { h, replace, setText } from './dom.js';
import { roleWords } from './format.js';
import { renderSignIn } from './signin.js';
import { renderList } from './list.js';
import { renderConnect } from './connect.js';
import { renderDetail } from './detail.js';

// sessionStorage, not localStorage: the token is gone when the tab closes,
// and other tabs never see it.
const tokenKey = 'prism-console.token';

function start() {
  const main = document.getElementById('main');
  const toast = document.getElementById('toast');
  const nav = document.getElementById('nav');
  const sessionBox = document.getElementById('session');
  const who = document.getElementById('who');

  let me = null; // whoami of the signed-in token
  let cleanup = null; // the current view's teardown (timers, listeners)
  let routeSeq = 0; // the latest navigation; older ones stop rendering
  let toastTimer = 0;
  let signInMessage = '';

  const token = () => sessionStorage.getItem(tokenKey) ?? '';

  // announce shows a short message and has screen readers say it.
  function announce(text) {
    clearTimeout(toastTimer);
    toast.textContent = '';
    toast.classList.toggle('toast--on', Boolean(text));
    // A fresh text node after clearing makes repeated messages heard again.
    requestAnimationFrame(() => {
      toast.textContent = text;
    });
    toastTimer = setTimeout(() => toast.classList.remove('toast--on'), 6000);
  }

  function signOut(message) {
    sessionStorage.removeItem(tokenKey);
    me = null;
    signInMessage = message ?? '';
    nav.hidden = true;
    sessionBox.hidden = true;
    route();
  }

  const api = createApi({
    token,
    // Any 401 means the token is no longer good: back to signing in, on the
    // same page once signed in again.
    onUnauthorized: () => signOut('Your token was not accepted any more: sign in again.'),
  });

  function navigate(hash) {
    if (location.hash === hash) route();
    else location.hash = hash;
  }

  function showSession() {
    replace(who, h('span', { class: 'session__name' }, me.name ?? 'token'), ' ',
      h('span', { class: 'role-chip' }, roleWords[me.role] ?? me.role ?? 'unknown role'),
      me.org_id ? h('span', { class: 'session__org' }, ` ${me.org_id}`) : null);
    nav.hidden = false;
    sessionBox.hidden = false;
  }

  function markNav(hash) {
    const link = document.getElementById('nav-integrations');
    if (hash.startsWith('#/integrations') || hash === '#/connect') link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }

  async function route() {
    const seq = ++routeSeq;
    if (cleanup) {
      cleanup();
      cleanup = null;
    }
    let hash = location.hash;
    if (!hash.startsWith('#/')) {
      hash = '#/integrations';
      history.replaceState(null, '', hash);
    }
    if (!token()) {
      show(renderSignIn, {
        message: signInMessage,
        onSignedIn: (tok, whoami) => {
          sessionStorage.setItem(tokenKey, tok);
          me = whoami;
          signInMessage = '';
          showSession();
          announce(`Signed in as ${whoami.name ?? 'token'}`);
          route();
        },
      });
      return;
    }
    if (!me) {
      try {
        me = await api.whoami();
      } catch (err) {
        if (seq !== routeSeq || err.status === 401) return; // 401: signOut already routed
        show(renderFailure, { error: err, retry: route });
        return;
      }
      if (seq !== routeSeq) return;
      showSession();
    }
    markNav(hash);
    const detail = /^#\/integrations\/([^/?]+)$/.exec(hash);
    if (hash === '#/integrations' || hash === '#/') show(renderList, {});
    else if (hash === '#/connect') show(renderConnect, {});
    else if (detail) show(renderDetail, { id: decodeURIComponent(detail[1]) });
    else show(renderNotFound, {});
  }

  // show renders a view into main and moves focus to its heading, so that a
  // screen reader announces the new page as a link would have.
  function show(view, props) {
    replace(main);
    const ctx = { api, me, announce, navigate, signOut, ...props };
    cleanup = view(main, ctx) ?? null;
    const h1 = main.querySelector('h1');
    if (h1) {
      h1.setAttribute('tabindex', '-1');
      document.title = `${h1.textContent} · Prism exporter`;
      // A view that put focus on its first field keeps it.
      const active = document.activeElement;
      if (!main.contains(active) || active === main) h1.focus({ preventScroll: true });
      window.scrollTo(0, 0);
    }
  }

  document.getElementById('signout').addEventListener('click', () => {
    signOut('Signed out. The token is forgotten in this tab.');
    announce('Signed out');
  });
  // The skip link targets #main; without this the router would read it as
  // a route.
  document.getElementById('skip').addEventListener('click', (ev) => {
    ev.preventDefault();
    main.focus();
  });
  window.addEventListener('hashchange', () => {
    if (location.hash.startsWith('#/')) route();
  });
  route();
}

function renderFailure(root, { error, retry }) {
  replace(root,
    h('h1', null, 'The console cannot reach the exporter'),
    h('p', { class: 'lead' }, error.message),
    h('button', { type: 'button', class: 'btn btn--primary', onclick: retry }, 'Try again'));
}

function renderNotFound(root) {
  replace(root,
    h('h1', null, 'Page not found'),
    h('p', { class: 'lead' }, 'This console has no such page.'),
    h('a', { class: 'btn btn--primary', href: '#/integrations' }, 'Go to integrations'));
}

start();
