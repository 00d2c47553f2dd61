package main

// Browser tests of the web console (console/): a real headless Chromium,
// driven with chromedp, against the real exporter with kfake and the local
// Datadog stand-in. The harness they use is console_browser_harness_test.go.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/futureagi/prism-exporter/sink/ddfake"
)

// TestBrowserConsoleLifecycle: an owner connects Datadog through the
// console, sees it Active and its logs count grow while traffic flows,
// pauses it (nothing more reaches Datadog), resumes, sees Error with the
// hint when the stand-in revokes the key (and Retry really retries), edits
// in a new key and sees Active again, and deletes it with the typed
// confirmation.
func TestBrowserConsoleLifecycle(t *testing.T) {
	ce := newConsoleEnv(t)
	b := newBrowser(t, ce.base)
	ce.feed(consoleOrg, 25)

	b.signIn(ce.tokens["owner"])
	if !strings.Contains(b.text(".region"), "No integrations yet") {
		t.Errorf("the empty state is missing: %q", b.text(".region"))
	}
	b.page("empty-list")

	// 1. Connect.
	b.click(`[data-test=connect-datadog]`)
	b.run(b.visible(`#step1-title`))
	b.waitFor("the sites", `document.querySelectorAll('select[name=site] option').length === 9`, 10*time.Second)
	var site struct {
		Value string   `json:"value"`
		Texts []string `json:"texts"`
	}
	b.eval(`(s => ({value: s.value, texts: [...s.options].map(o => o.textContent)}))(document.querySelector('select[name=site]'))`, &site)
	if site.Value != "US1" || len(site.Texts) != 9 || site.Texts[0] != "US1 (datadoghq.com)" || !contains(site.Texts, "EU1 (datadoghq.eu)") {
		t.Errorf("site select: %+v, want the 9 sites as \"US1 (datadoghq.com)\", US1 selected", site)
	}
	b.page("connect-credentials")
	b.fill(`input[name=api_key]`, consoleAPIKey)
	b.click(`[data-test=validate]`)
	b.run(b.visible(`#step2-title`))
	if got := b.text(".summary"); !strings.Contains(got, "Valid") {
		t.Errorf("step 2 does not show the API key's verdict: %q", got)
	}
	var checked string
	b.eval(`document.querySelector('input[type=radio]:checked').value`, &checked)
	if checked != "5m" {
		t.Errorf("default interval %q, want 5m", checked)
	}
	if b.exists(`input[type=checkbox]:not([disabled])`) {
		t.Errorf("without an application key there must be no dashboard option")
	}
	b.click(`input[value="1m"] + label`)
	b.page("connect-sync-settings")
	b.click(`[data-test=connect]`)
	b.run(b.visible(`#step3-title`))
	done := b.text(".verify")
	for _, want := range []string{"source:futureagi", "prism.gateway.requests"} {
		if !strings.Contains(done, want) {
			t.Errorf("the done screen does not say how to verify with %s: %q", want, done)
		}
	}
	b.noKeyInPage(consoleAPIKey)
	b.page("connect-done")

	// 2. Active, and logs flow.
	b.click(`[data-test=open-integration]`)
	b.waitFor("the status Active", statusIs("active"), 60*time.Second)
	if got := b.text(`[data-test=api-key-hint]`); got != "****"+consoleAPIKey[len(consoleAPIKey)-4:] {
		t.Errorf("key hint %q", got)
	}
	if got := b.text(`[data-test=interval]`); got != "Every minute" {
		t.Errorf("interval shown as %q", got)
	}
	b.page("detail-active")
	// The page refreshes itself: no reload from here on.
	b.waitFor("logs_sent to grow", `Number(document.querySelector('[data-test=logs-sent]').textContent.replace(/,/g, '')) > 0`, 150*time.Second)
	shown := b.number(`[data-test=logs-sent]`)
	if inDD := len(ce.dd.Logs(consoleOrg)); inDD < shown {
		t.Errorf("the page shows %d logs sent, the Datadog stand-in holds %d", shown, inDD)
	}
	b.page("detail-logs-flowing")

	// 3. Pause: nothing more reaches Datadog, even across a window's end.
	b.click(`[data-test=pause]`)
	b.waitFor("the status Paused", statusIs("paused"), 20*time.Second)
	b.run(b.visible(`[data-test=resume]`))
	b.page("detail-paused")
	time.Sleep(3 * time.Second) // a delivery already in flight lands
	before := len(ce.dd.Logs(consoleOrg))
	shownBefore := b.number(`[data-test=logs-sent]`)
	time.Sleep(time.Until(nextWindowEnd(time.Minute, ce.lateness).Add(10 * time.Second)))
	if after := len(ce.dd.Logs(consoleOrg)); after != before {
		t.Errorf("paused, yet Datadog received %d more logs", after-before)
	}
	if after := b.number(`[data-test=logs-sent]`); after != shownBefore {
		t.Errorf("paused, yet the page's logs sent went from %d to %d", shownBefore, after)
	}
	b.click(`[data-test=resume]`)
	b.waitFor("the status to leave Paused", `!(`+statusIs("paused")+`)`, 20*time.Second)
	b.page("detail-resumed")

	// 4. The key is revoked at Datadog: Error, with the hint.
	ce.dd.RevokeAPIKey(consoleAPIKey)
	b.waitFor("the status Error", statusIs("error"), 150*time.Second)
	b.run(b.visible(`[data-test=error-panel]`))
	if msg := b.text(".error-panel__message"); strings.TrimSpace(msg) == "" {
		t.Errorf("the error panel shows no status message")
	}
	if hint := b.text(".error-panel__hint"); !strings.Contains(strings.ToLower(hint), "key") {
		t.Errorf("the error panel's hint says nothing of the key: %q", hint)
	}
	b.page("detail-error")
	// Retry really retries: the key is still revoked, so Datadog refuses.
	b.click(`[data-test=retry]`)
	b.waitFor("the retry's answer", `!!document.querySelector('.retry-result')`, 30*time.Second)
	if got := b.text(".retry-result"); !strings.Contains(got, "Rejected") {
		t.Errorf("retry with a revoked key: %q", got)
	}
	b.page("detail-retry-refused")

	// 5. A new key of the same account: Active again.
	ce.dd.AddAccount(ddfake.Account{Name: consoleOrg, APIKeys: []string{consoleNewKey}})
	b.click(`[data-test=edit]`)
	b.run(b.visible(`dialog input[name=api_key]`))
	b.page("edit-dialog")
	b.fill(`dialog input[name=api_key]`, consoleNewKey)
	b.click(`[data-test=save]`)
	b.waitFor("the dialog to close", `!document.querySelector('dialog')`, 30*time.Second)
	b.waitFor("the status Active again", statusIs("active"), 60*time.Second)
	if got := b.text(`[data-test=api-key-hint]`); got != "****"+consoleNewKey[len(consoleNewKey)-4:] {
		t.Errorf("after the edit, key hint %q", got)
	}
	b.noKeyInPage(consoleAPIKey, consoleNewKey)
	b.page("detail-active-again")

	// 6. Delete, typing the org id.
	b.click(`[data-test=delete]`)
	b.run(b.visible(`dialog input[name=confirm]`))
	b.fill(`dialog input[name=confirm]`, "org_cons")
	var disabled bool
	b.eval(`document.querySelector('[data-test=confirm-delete]').disabled`, &disabled)
	if !disabled {
		t.Errorf("Delete is enabled before the org id is typed in full")
	}
	b.fill(`dialog input[name=confirm]`, consoleOrg)
	b.page("delete-dialog")
	b.click(`[data-test=confirm-delete]`)
	b.run(b.visible(`#connected-title`))
	b.waitFor("the empty list", `(document.querySelector('.region') || {}).textContent.includes('No integrations yet')`, 20*time.Second)
	b.page("deleted")
	if status, _ := ce.call("admin", "GET", "/api/v1/integrations?org_id="+consoleOrg, nil); status != http.StatusOK {
		t.Errorf("listing after delete: %d", status)
	} else if _, body := ce.call("admin", "GET", "/api/v1/integrations?org_id="+consoleOrg, nil); strings.Contains(string(body), consoleOrg) {
		t.Errorf("the integration is still listed after delete: %s", body)
	}
}

// TestBrowserConsoleBadInput: a wrong token, empty required fields, a key
// Datadog rejects, and a historical mode the server does not build yet each
// get a clear message where they happen; then the flow still connects.
func TestBrowserConsoleBadInput(t *testing.T) {
	ce := newConsoleEnv(t)
	b := newBrowser(t, ce.base)

	b.run(chromedp.Navigate(b.base+"/ui/"), b.visible(`input[name=token]`))
	b.fill(`input[name=token]`, "not-a-token")
	b.click(`form button[type=submit]`)
	b.waitFor("the unknown-token message", `document.querySelector('input[name=token]').getAttribute('aria-invalid') === 'true'`, 10*time.Second)
	if got := b.text(".field__msg"); !strings.Contains(got, "does not know that token") {
		t.Errorf("wrong token message: %q", got)
	}
	b.page("sign-in-wrong-token")

	b.fill(`input[name=token]`, ce.tokens["admin"])
	b.click(`form button[type=submit]`)
	b.run(b.visible(`[data-test=connect-datadog]`))
	b.click(`[data-test=connect-datadog]`)
	b.run(b.visible(`#step1-title`))

	// Empty required fields: said beside each, focus on the first.
	b.click(`[data-test=validate]`)
	b.waitFor("the required-field messages", `document.querySelectorAll('[aria-invalid=true]').length === 2`, 5*time.Second)
	var focused string
	b.eval(`document.activeElement.name`, &focused)
	if focused != "org_id" {
		t.Errorf("focus went to %q, want the first empty field org_id", focused)
	}
	b.page("connect-empty-fields")

	// A key Datadog rejects: its verdict, with the server's advice.
	b.fill(`input[name=org_id]`, consoleOrg)
	b.fill(`input[name=api_key]`, "ddapi0wrong00000000000000000000ffff")
	b.fill(`input[name=app_key]`, "ddapp0unchecked000000000000000eeee")
	b.click(`[data-test=validate]`)
	b.waitFor("the rejected verdict", `!!document.querySelector('[data-verdict=rejected]')`, 30*time.Second)
	if got := b.text(`[data-verdict=rejected]`); !strings.Contains(got, "Rejected") || len(got) < 30 {
		t.Errorf("rejected verdict without the server's advice: %q", got)
	}
	b.page("connect-key-rejected")

	// The right key, and an application key (the dashboard option appears,
	// disabled).
	ce.dd.AddAccount(ddfake.Account{Name: consoleOrg, APIKeys: []string{consoleAPIKey}, AppKeys: []string{"ddapp0console00000000000000000a1b2"}})
	b.fill(`input[name=api_key]`, consoleAPIKey)
	b.fill(`input[name=app_key]`, "ddapp0console00000000000000000a1b2")
	b.click(`[data-test=validate]`)
	b.run(b.visible(`#step2-title`))
	var dash struct {
		Shown    bool   `json:"shown"`
		Disabled bool   `json:"disabled"`
		Note     string `json:"note"`
	}
	b.eval(`(c => ({shown: !!c && !c.closest('[hidden]'), disabled: !!c && c.disabled, note: c ? c.parentElement.textContent : ''}))(document.querySelector('#step2-title ~ form input[type=checkbox]'))`, &dash)
	if !dash.Shown || !dash.Disabled || !strings.Contains(strings.ToLower(dash.Note), "coming soon") {
		t.Errorf("dashboard option with an application key: %+v, want shown, disabled, \"coming soon\"", dash)
	}
	// A date range without dates: said before anything is sent.
	b.click(`input[value="range"] + label`)
	b.click(`[data-test=connect]`)
	b.waitFor("the range messages", `document.querySelectorAll('.range [aria-invalid=true]').length > 0`, 5*time.Second)
	b.page("connect-range-empty")

	// "Everything": connected, with a backfill of the history Datadog
	// still takes.
	b.click(`input[value="all"] + label`)
	b.click(`[data-test=connect]`)
	b.run(b.visible(`#step3-title`))
	b.noKeyInPage(consoleAPIKey, "ddapp0console00000000000000000a1b2")
	b.page("connect-done-after-errors")
	status, body := ce.call("admin", "GET", "/api/v1/integrations?org_id="+consoleOrg, nil)
	var list struct {
		Integrations []struct {
			Historical struct{ Mode string }   `json:"historical"`
			Backfill   *struct{ State string } `json:"backfill"`
		} `json:"integrations"`
	}
	if err := json.Unmarshal(body, &list); status != http.StatusOK || err != nil || len(list.Integrations) != 1 ||
		list.Integrations[0].Historical.Mode != "all" || list.Integrations[0].Backfill == nil {
		t.Errorf("connected with everything: %d %s", status, body)
	}
}

// TestBrowserConsoleRoles: a viewer sees the integration but no write
// action anywhere, and the server refuses the writes when the page is
// forced to send them with the viewer's token; an owner of the same org
// sees the actions.
func TestBrowserConsoleRoles(t *testing.T) {
	ce := newConsoleEnv(t)
	status, body := ce.call("admin", "POST", "/api/v1/integrations", map[string]any{
		"org_id": consoleOrg, "site": "US1", "api_key": consoleAPIKey, "sync_interval": "1m",
	})
	if status != http.StatusCreated {
		t.Fatalf("creating the integration: %d %s", status, body)
	}
	var created struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(body, &created); err != nil || created.ID == "" {
		t.Fatalf("create answered %s", body)
	}

	b := newBrowser(t, ce.base)
	b.signIn(ce.tokens["viewer"])
	if got := b.text("#who"); !strings.Contains(got, "Viewer") {
		t.Errorf("the header does not show the viewer role: %q", got)
	}
	if b.exists(`[data-test=connect-datadog]`) {
		t.Errorf("a viewer is offered Connect")
	}
	if got := b.text(".platforms"); !strings.Contains(got, "Viewers cannot connect") {
		t.Errorf("the platforms area does not say why a viewer cannot connect: %q", got)
	}
	b.page("viewer-list")

	b.click(`.icard__link`)
	b.run(b.visible(`[data-test=readonly]`))
	b.waitFor("the status badge", `!!document.querySelector('.status-region [data-test=status]')`, 20*time.Second)
	for _, sel := range []string{"[data-test=pause]", "[data-test=resume]", "[data-test=edit]", "[data-test=delete]", "[data-test=retry]"} {
		if b.exists(sel) {
			t.Errorf("a viewer's detail page has %s", sel)
		}
	}
	b.page("viewer-detail")

	// Forced: the page sends writes with the viewer's token anyway.
	var answers map[string]int
	b.eval(fmt.Sprintf(`(async () => {
  const auth = {Authorization: 'Bearer ' + sessionStorage.getItem('prism-console.token'), 'Content-Type': 'application/json'};
  const url = '/api/v1/integrations/%[1]s';
  const out = {};
  out.pause = (await fetch(url + '/pause', {method: 'POST', headers: auth})).status;
  out.patch = (await fetch(url, {method: 'PATCH', headers: auth, body: JSON.stringify({sync_interval: '2m'})})).status;
  out.delete = (await fetch(url, {method: 'DELETE', headers: auth})).status;
  out.create = (await fetch('/api/v1/integrations', {method: 'POST', headers: auth, body: JSON.stringify({site: 'US1', api_key: 'x'})})).status;
  return out;
})()`, created.ID), &answers)
	for call, st := range answers {
		if st != http.StatusForbidden {
			t.Errorf("viewer's forced %s answered %d, want 403", call, st)
		}
	}
	if len(answers) != 4 {
		t.Errorf("forced calls: %v", answers)
	}
	if status, body := ce.call("admin", "GET", "/api/v1/integrations/"+created.ID, nil); status != http.StatusOK || !strings.Contains(string(body), `"paused": false`) || !strings.Contains(string(body), `"sync_interval": "1m"`) {
		t.Errorf("after the viewer's refused writes the integration changed: %d %s", status, body)
	}

	b.eval(`(location.hash = '#/connect', true)`, nil)
	b.waitFor("the connect page", `!!document.querySelector('.connect__panel .alert')`, 10*time.Second)
	if got := b.text(".connect__panel"); !strings.Contains(got, "can only view") {
		t.Errorf("a viewer on the connect page: %q", got)
	}
	b.page("viewer-connect")

	// The owner of the same org: the actions are there.
	b.click(`#signout`)
	b.run(b.visible(`input[name=token]`))
	b.fill(`input[name=token]`, ce.tokens["owner"])
	b.click(`form button[type=submit]`)
	b.run(b.visible(`#nav-integrations`))
	b.eval(fmt.Sprintf(`(location.hash = '#/integrations/%s', true)`, created.ID), nil)
	b.run(b.visible(`[data-test=pause]`))
	for _, sel := range []string{"[data-test=edit]", "[data-test=delete]"} {
		if !b.exists(sel) {
			t.Errorf("an owner's detail page lacks %s", sel)
		}
	}
	b.page("owner-detail")
}
