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
// console, sees it Active, its logs count grow and the sync history fill
// while traffic flows, pauses it (nothing more reaches Datadog), resumes, sees Error with the
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
	var dashOffered bool
	b.eval(`[...document.querySelectorAll('input[type=checkbox]')].some(c => !c.closest('[hidden]'))`, &dashOffered)
	if dashOffered {
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
	// Each delivered window is a row of the sync history, as the API lists it.
	liveRows := `document.querySelectorAll('[data-test=history-table] tbody tr[data-source=live]').length`
	b.waitFor("a history row", liveRows+` > 0`, 60*time.Second)
	rowsAtFirst := b.count(`[data-test=history-table] tbody tr`)
	var first struct {
		Syncs []struct {
			WindowStart string `json:"window_start"`
			Records     int    `json:"records"`
			Outcome     string `json:"outcome"`
		} `json:"syncs"`
	}
	var id string
	b.eval(`decodeURIComponent(location.hash.split('/')[2])`, &id)
	if st, raw := ce.call("owner", "GET", "/api/v1/integrations/"+id+"/syncs?limit=1", nil); st != http.StatusOK || json.Unmarshal(raw, &first) != nil || len(first.Syncs) != 1 {
		t.Errorf("syncs: %d %s", st, raw)
	} else {
		row := fmt.Sprintf(`[data-test=history-table] tbody tr[data-start=%q]`, first.Syncs[0].WindowStart)
		b.waitFor("the API's newest window in the table", `!!document.querySelector('`+row+`')`, 10*time.Second)
		if got := b.attr(row, "data-outcome"); got != first.Syncs[0].Outcome {
			t.Errorf("the newest window's outcome: page %q, API %q", got, first.Syncs[0].Outcome)
		}
		if got := b.number(row + ` td:nth-child(3)`); got != first.Syncs[0].Records {
			t.Errorf("the newest window's records: page %d, API %d", got, first.Syncs[0].Records)
		}
		if got := b.text(row + ` .outcome`); got != "Success" {
			t.Errorf("a delivered window's outcome reads %q, want Success", got)
		}
	}
	b.page("detail-history")

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
	// Minutes of windows later, the first page of the history has grown by
	// itself.
	if got := b.count(`[data-test=history-table] tbody tr`); got <= rowsAtFirst {
		t.Errorf("the history shows %d rows, as many as %d minutes ago", got, rowsAtFirst)
	}
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

	// The right key, and an application key: the dashboard option appears.
	ce.dd.AddAccount(ddfake.Account{Name: consoleOrg, APIKeys: []string{consoleAPIKey}, AppKeys: []string{consoleAppKey}})
	b.fill(`input[name=api_key]`, consoleAPIKey)
	b.fill(`input[name=app_key]`, consoleAppKey)
	b.click(`[data-test=validate]`)
	b.run(b.visible(`#step2-title`))
	var dash struct {
		Shown    bool   `json:"shown"`
		Disabled bool   `json:"disabled"`
		Note     string `json:"note"`
	}
	b.eval(`(c => ({shown: !!c && !c.closest('[hidden]'), disabled: !!c && c.disabled, note: c ? c.parentElement.textContent : ''}))(document.querySelector('#step2-title ~ form input[type=checkbox]'))`, &dash)
	if !dash.Shown || dash.Disabled || !strings.Contains(dash.Note, "Create a dashboard and monitors") {
		t.Errorf("dashboard option with an application key: %+v, want shown and enabled", dash)
	}
	b.click(`[data-test=create-dashboard]`)
	// A date range without dates: said before anything is sent.
	b.click(`input[value="range"] + label`)
	b.click(`[data-test=connect]`)
	b.waitFor("the range messages", `document.querySelectorAll('.range [aria-invalid=true]').length > 0`, 5*time.Second)
	b.page("connect-range-empty")

	// "Everything": connected, with a backfill of the history Datadog
	// still takes (its coverage on the done screen), and the dashboard.
	b.click(`input[value="all"] + label`)
	b.click(`[data-test=connect]`)
	b.run(b.visible(`#step3-title`))
	b.noKeyInPage(consoleAPIKey, consoleAppKey)
	if href := b.attr(`[data-test=done-dashboard] [data-test=dashboard-link]`, "href"); !strings.HasPrefix(href, ce.ddURL+"/dashboard/") {
		t.Errorf("the done screen's dashboard link: %q", href)
	}
	if n := b.count(`[data-test=done-dashboard] [data-test=monitor-link]`); n != 3 {
		t.Errorf("the done screen links %d monitors, want 3", n)
	}
	if got := b.text(`[data-test=coverage]`); !strings.Contains(got, "Logs only") {
		t.Errorf("the done screen does not say what of the history Datadog takes: %q", got)
	}
	if d := len(ce.dd.Dashboards(consoleOrg)); d != 1 {
		t.Errorf("Datadog holds %d dashboards after connecting with the option, want 1", d)
	}
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
	for _, sel := range []string{"[data-test=pause]", "[data-test=resume]", "[data-test=edit]", "[data-test=delete]", "[data-test=retry]",
		"[data-test=start-backfill]", "[data-test=cancel-backfill]", "[data-test=dashboard-make]", "[data-test=dashboard-add-app-key]"} {
		if b.exists(sel) {
			t.Errorf("a viewer's detail page has %s", sel)
		}
	}
	if got := b.text(`[data-test=dashboard]`); !strings.Contains(got, "application key") || !strings.Contains(got, "owner or admin") {
		t.Errorf("a viewer's dashboard section without an application key: %q", got)
	}
	b.run(b.visible(`[data-test=history]`))
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
  out.backfill = (await fetch(url + '/backfill', {method: 'POST', headers: auth, body: JSON.stringify({from: new Date(Date.now() - 3600e3).toISOString(), to: new Date().toISOString()})})).status;
  out.cancelBackfill = (await fetch(url + '/backfill', {method: 'DELETE', headers: auth})).status;
  out.dashboard = (await fetch(url + '/dashboard', {method: 'POST', headers: auth})).status;
  return out;
})()`, created.ID), &answers)
	for call, st := range answers {
		if st != http.StatusForbidden {
			t.Errorf("viewer's forced %s answered %d, want 403", call, st)
		}
	}
	if len(answers) != 7 {
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
	for _, sel := range []string{"[data-test=edit]", "[data-test=delete]", "[data-test=start-backfill]", "[data-test=dashboard-add-app-key]"} {
		if !b.exists(sel) {
			t.Errorf("an owner's detail page lacks %s", sel)
		}
	}
	b.page("owner-detail")
}

// TestBrowserConsoleBackfillHistoryDashboard: the org's history sits in the
// gateway topic at three ages (19 h, 75 min and the last 45 min) before its
// integration exists. An owner starts a backfill of it from the detail page
// (a range in UTC, whose coverage the page shows), sees Backfilling with a
// percentage and a progress bar, cancels it, starts it again and sees it
// done; then reads the sync history the backfill wrote, a page of 10 at a
// time, filtered by outcome; makes the dashboard and monitors, asks again
// (nothing new is made) and changes a threshold. A viewer sees all of it
// but none of the actions, and the server refuses them when forced.
func TestBrowserConsoleBackfillHistoryDashboard(t *testing.T) {
	// A slow backfill (the lowest rate the exporter takes) makes its
	// progress visible: about 3,000 records at 100 a second.
	ce := newConsoleEnv(t, func(s *settings) { s.BackfillRate = 100 })
	ce.dd.AddAccount(ddfake.Account{Name: consoleOrg, APIKeys: []string{consoleAPIKey}, AppKeys: []string{consoleAppKey}})
	now := time.Now().UTC()
	ce.produceAt(consoleOrg, 150, now.Add(-19*time.Hour), 8*time.Minute, 1)     // older than 18 h: too_old
	ce.produceAt(consoleOrg, 450, now.Add(-76*time.Minute), 10*time.Minute, 2)  // past the hour: logs only, too_old
	ce.produceAt(consoleOrg, 2400, now.Add(-45*time.Minute), 40*time.Minute, 3) // logs and metrics: success
	status, body := ce.call("admin", "POST", "/api/v1/integrations", map[string]any{
		"org_id": consoleOrg, "site": "US1", "api_key": consoleAPIKey, "app_key": consoleAppKey, "sync_interval": "1m",
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
	id := created.ID

	b := newBrowser(t, ce.base)
	b.signIn(ce.tokens["owner"])
	b.click(`.icard__link`)
	b.waitFor("the status badge", `!!document.querySelector('.status-region [data-test=status]')`, 20*time.Second)
	b.waitFor("the empty history", `(el => !!el && !el.hidden)(document.querySelector('[data-test=history-empty]'))`, 30*time.Second)
	if got := b.text(`[data-test=history-empty]`); !strings.Contains(got, "No windows delivered yet") {
		t.Errorf("history empty state: %q", got)
	}
	if got := b.text(`[data-test=dashboard]`); !strings.Contains(got, "No dashboard yet") {
		t.Errorf("dashboard card before one is made: %q", got)
	}
	if b.exists(`[data-test=backfill]:not([hidden])`) {
		t.Errorf("a backfill section is shown before any backfill")
	}
	b.page("detail-before-backfill")

	// 1. A backfill of the three ages, cancelled halfway.
	from := now.Add(-19*time.Hour - 30*time.Minute).Truncate(time.Minute)
	to := time.Now().UTC().Add(-time.Minute).Truncate(time.Minute)
	startBackfill := func(shot string) {
		t.Helper()
		b.click(`[data-test=start-backfill]`)
		b.run(b.visible(`dialog input[name=from]`))
		b.setValue(`dialog input[name=from]`, from.Format("2006-01-02T15:04"))
		b.setValue(`dialog input[name=to]`, to.Format("2006-01-02T15:04"))
		dialog := b.text("dialog")
		for _, want := range []string{"UTC", "logs up to 18 h back", "metrics up to 1 h back", "Logs and metrics:", "Logs only:", "Not sent:"} {
			if !strings.Contains(dialog, want) {
				t.Errorf("the backfill dialog does not say %q: %q", want, dialog)
			}
		}
		if shot != "" {
			b.page(shot)
		}
		b.click(`[data-test=submit-backfill]`)
		b.waitFor("the dialog to close", `!document.querySelector('dialog')`, 20*time.Second)
	}
	startBackfill("backfill-dialog")
	b.run(b.visible(`[data-test=backfill] [data-test=coverage]`))
	if got := b.text(`[data-test=backfill] [data-test=coverage]`); !strings.Contains(got, "Logs only") || !strings.Contains(got, "Not sent") {
		t.Errorf("the started backfill's coverage: %q", got)
	}
	// The badge reads "Backfilling N%" and the bar says the same, while it
	// runs.
	b.waitFor("Backfilling with a percentage under way", `(() => {
  const badge = document.querySelector('.status-region [data-test=status]');
  const bar = document.querySelector('[data-test=backfill-progress]');
  const m = /^Backfilling (\d+)%$/.exec(badge ? badge.textContent.replace('Status: ', '').trim() : '');
  const now = bar ? Number(bar.getAttribute('aria-valuenow')) : 0;
  return !!m && Number(m[1]) > 0 && Number(m[1]) < 100 && now > 0 && now < 100;
})()`, 90*time.Second)
	if got := b.attr(`[data-test=backfill-state]`, "data-state"); got != "running" {
		t.Errorf("backfill state shown as %q while the badge says Backfilling", got)
	}
	b.page("backfilling")
	b.click(`[data-test=cancel-backfill]`)
	b.run(b.visible(`[data-test=confirm-cancel-backfill]`))
	b.page("cancel-backfill-dialog")
	b.click(`[data-test=confirm-cancel-backfill]`)
	b.waitFor("the backfill cancelled", `(document.querySelector('[data-test=backfill-state]') || {dataset: {}}).dataset.state === 'cancelled'`, 30*time.Second)
	b.waitFor("the badge to leave Backfilling", `!(`+statusIs("backfilling")+`)`, 30*time.Second)
	if b.exists(`[data-test=cancel-backfill]:not([hidden])`) {
		t.Errorf("Cancel backfill is still offered after the cancel")
	}
	b.page("backfill-cancelled")

	// 2. Again, to the end.
	startBackfill("")
	b.waitFor("the backfill done", `(document.querySelector('[data-test=backfill-state]') || {dataset: {}}).dataset.state === 'done'`, 180*time.Second)
	b.waitFor("the status Active", statusIs("active"), 30*time.Second)
	if got := b.attr(`[data-test=backfill-progress]`, "aria-valuenow"); got != "100" {
		t.Errorf("a done backfill's progress bar: aria-valuenow %q", got)
	}
	for _, sel := range []string{"backfill-logs", "backfill-logs-too-old", "backfill-windows-too-old"} {
		if n := b.number(`[data-test=` + sel + `]`); n <= 0 {
			t.Errorf("the done backfill shows %s = %d, want > 0", sel, n)
		}
	}
	var job struct {
		Backfill struct {
			State      string `json:"state"`
			LogsSent   int    `json:"logs_sent"`
			LogsTooOld int    `json:"logs_too_old"`
		} `json:"backfill"`
	}
	if st, raw := ce.call("owner", "GET", "/api/v1/integrations/"+id, nil); st != http.StatusOK || json.Unmarshal(raw, &job) != nil ||
		job.Backfill.State != "done" || b.number(`[data-test=backfill-logs]`) != job.Backfill.LogsSent {
		t.Errorf("the job view (%d %s) and the page (logs sent %d) disagree", st, raw, b.number(`[data-test=backfill-logs]`))
	}
	b.page("backfill-done")

	// 3. The history the backfill wrote: once it stops growing, page
	// through it 10 at a time, then filter it.
	apiSyncs := func(outcome string) []map[string]any {
		t.Helper()
		var all []map[string]any
		cursor := ""
		for {
			st, raw := ce.call("owner", "GET", "/api/v1/integrations/"+id+"/syncs?limit=500&outcome="+outcome+"&cursor="+cursor, nil)
			var page struct {
				Syncs []map[string]any `json:"syncs"`
				Next  string           `json:"next_cursor"`
			}
			if st != http.StatusOK || json.Unmarshal(raw, &page) != nil {
				t.Fatalf("syncs: %d %s", st, raw)
			}
			all = append(all, page.Syncs...)
			if cursor = page.Next; cursor == "" {
				return all
			}
		}
	}
	var windows []map[string]any
	for deadline, last := time.Now().Add(60*time.Second), -1; ; {
		windows = apiSyncs("")
		if len(windows) == last && last > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the history kept changing for 60s (%d windows)", len(windows))
		}
		last = len(windows)
		time.Sleep(3 * time.Second)
	}
	if len(windows) < 25 {
		t.Fatalf("the backfill wrote %d history entries, want a window a minute of the history (50 or so)", len(windows))
	}
	b.waitFor("the history table", fmt.Sprintf(`document.querySelectorAll('[data-test=history-table] tbody tr').length === %d`, 25), 30*time.Second)
	if got := b.count(`[data-test=history-table] tbody tr[data-source=backfill] .tag--source`); got != 25 {
		t.Errorf("%d of 25 rows say Backfill", got)
	}
	b.page("history")

	rowStarts := func() []string {
		var out []string
		b.eval(`[...document.querySelectorAll('[data-test=history-table] tbody tr')].map(r => r.dataset.start)`, &out)
		return out
	}
	b.setValue(`[data-test=history-page-size]`, "10")
	b.waitFor("10 rows a page", `document.querySelectorAll('[data-test=history-table] tbody tr').length === 10`, 10*time.Second)
	page1 := rowStarts()
	if want := windows[0]["window_start"]; page1[0] != want {
		t.Errorf("the first row is the window of %s, the API's newest is %v", page1[0], want)
	}
	b.click(`[data-test=history-older]`)
	b.waitFor("page 2", `document.querySelector('[data-test=history-page]').textContent === 'Page 2' && !document.querySelector('[data-test=history][aria-busy]')`, 10*time.Second)
	page2 := rowStarts()
	if len(page2) != 10 || page2[0] >= page1[len(page1)-1] {
		t.Errorf("page 2 does not go on from page 1: %v after %v", page2, page1)
	}
	if fmt.Sprint(page2) != fmt.Sprint(starts(windows[10:20])) {
		t.Errorf("page 2 shows %v, the API's windows 11 to 20 are %v", page2, starts(windows[10:20]))
	}
	b.page("history-page-2")
	b.click(`[data-test=history-older]`)
	b.waitFor("page 3", `document.querySelector('[data-test=history-page]').textContent === 'Page 3' && !document.querySelector('[data-test=history][aria-busy]')`, 10*time.Second)
	b.click(`[data-test=history-newer]`)
	b.waitFor("back on page 2", `document.querySelector('[data-test=history-page]').textContent === 'Page 2' && !document.querySelector('[data-test=history][aria-busy]')`, 10*time.Second)
	if got := rowStarts(); fmt.Sprint(got) != fmt.Sprint(page2) {
		t.Errorf("Newer from page 3 shows %v, page 2 was %v", got, page2)
	}
	time.Sleep(4 * time.Second) // a refresh of the page passes: page 2 stays put
	if got := b.text(`[data-test=history-page]`); got != "Page 2" {
		t.Errorf("the auto-refresh moved the reader to %q", got)
	}
	b.click(`[data-test=history-newer]`)
	b.waitFor("back on page 1", `document.querySelector('[data-test=history-page]').textContent === 'Page 1' && !document.querySelector('[data-test=history][aria-busy]')`, 10*time.Second)
	if got := rowStarts(); fmt.Sprint(got) != fmt.Sprint(page1) {
		t.Errorf("Newer to page 1 shows %v, page 1 was %v", got, page1)
	}

	// The windows past the hour (their logs sent, or dropped past 18 h) are
	// too_old, the recent ones success. Each outcome the API lists is
	// filtered in the page, row for row.
	byOutcome := outcomesOf(windows)
	if byOutcome["success"] == 0 || byOutcome["too_old"] == 0 {
		t.Errorf("the backfill's windows by outcome: %v, want success and too_old among them", byOutcome)
	}
	for _, outcome := range []string{"partial", "too_old", "success"} {
		want := apiSyncs(outcome)
		if len(want) == 0 {
			continue
		}
		b.setValue(`[data-test=history-outcome]`, outcome)
		first := want[:min(len(want), 10)]
		b.waitFor(outcome+" rows only", fmt.Sprintf(`(rows => rows.length === %d && rows.every(r => r.dataset.outcome === %q))([...document.querySelectorAll('[data-test=history-table] tbody tr')])`, len(first), outcome), 10*time.Second)
		if got := rowStarts(); fmt.Sprint(got) != fmt.Sprint(starts(first)) {
			t.Errorf("filtered by %s the page shows %v, the API %v", outcome, got, starts(first))
		}
		if got := b.text(`[data-test=history-page]`); got != "Page 1" {
			t.Errorf("a new filter starts on %q, want Page 1", got)
		}
		dropped := 0
		for _, w := range first {
			if n, _ := w["logs_dropped"].(float64); n > 0 {
				dropped++
			}
		}
		if got := b.count(`[data-test=history-table] tbody tr .cell-note`); got != dropped {
			t.Errorf("filtered by %s, %d rows say logs were not sent; the API has %d such windows", outcome, got, dropped)
		}
		b.page("history-" + outcome)
	}
	b.setValue(`[data-test=history-outcome]`, "failed")
	b.waitFor("the filtered empty state", `(el => !!el && !el.hidden && el.textContent.includes('No windows with the outcome'))(document.querySelector('[data-test=history-empty]'))`, 10*time.Second)
	b.page("history-failed-none")
	b.setValue(`[data-test=history-outcome]`, "")

	// 4. The dashboard and monitors; asking again makes nothing new.
	b.click(`[data-test=dashboard-make]`)
	b.run(b.visible(`[data-test=submit-dashboard]`))
	b.page("dashboard-dialog")
	b.click(`[data-test=submit-dashboard]`)
	b.waitFor("the dashboard link", `!!document.querySelector('[data-test=dashboard-link]')`, 60*time.Second)
	link := struct{ href, target, rel string }{b.attr(`[data-test=dashboard-link]`, "href"), b.attr(`[data-test=dashboard-link]`, "target"), b.attr(`[data-test=dashboard-link]`, "rel")}
	if !strings.HasPrefix(link.href, ce.ddURL+"/dashboard/") || link.target != "_blank" || !strings.Contains(link.rel, "noopener") {
		t.Errorf("dashboard link %+v, want %s/dashboard/... in a new tab, noopener", link, ce.ddURL)
	}
	if n := b.count(`[data-test=monitor-link][target=_blank]`); n != 3 {
		t.Errorf("%d monitor links, want 3", n)
	}
	if got := b.text(`[data-test=dashboard-result]`); !strings.Contains(got, "Created the dashboard") {
		t.Errorf("after making the dashboard the page says %q", got)
	}
	if d, m := len(ce.dd.Dashboards(consoleOrg)), len(ce.dd.Monitors(consoleOrg)); d != 1 || m != 3 {
		t.Errorf("Datadog holds %d dashboards and %d monitors, want 1 and 3", d, m)
	}
	b.page("dashboard-created")

	b.click(`[data-test=dashboard-make]`)
	b.run(b.visible(`[data-test=submit-dashboard]`))
	b.click(`[data-test=submit-dashboard]`)
	b.waitFor("the second answer", `(document.querySelector('[data-test=dashboard-result]') || {}).textContent.includes('Nothing needed changing')`, 60*time.Second)
	if d, m := len(ce.dd.Dashboards(consoleOrg)), len(ce.dd.Monitors(consoleOrg)); d != 1 || m != 3 {
		t.Errorf("asked again, Datadog holds %d dashboards and %d monitors, want 1 and 3", d, m)
	}
	if got := b.attr(`[data-test=dashboard-link]`, "href"); got != link.href {
		t.Errorf("asked again, the link went from %s to %s", link.href, got)
	}
	b.page("dashboard-again")

	b.click(`[data-test=dashboard-make]`)
	b.fill(`dialog input[name=error_rate]`, "10")
	b.click(`[data-test=submit-dashboard]`)
	b.waitFor("the new threshold", `(document.querySelector('[data-test=monitor-link][data-kind=error_rate]') || {}).textContent.includes('above 10%')`, 60*time.Second)
	if d, m := len(ce.dd.Dashboards(consoleOrg)), len(ce.dd.Monitors(consoleOrg)); d != 1 || m != 3 {
		t.Errorf("after a new threshold, Datadog holds %d dashboards and %d monitors, want 1 and 3", d, m)
	}

	// 5. A viewer sees it all, and none of the actions.
	b.click(`#signout`)
	b.run(b.visible(`input[name=token]`))
	b.fill(`input[name=token]`, ce.tokens["viewer"])
	b.click(`form button[type=submit]`)
	b.run(b.visible(`#nav-integrations`))
	b.eval(fmt.Sprintf(`(location.hash = '#/integrations/%s', true)`, id), nil)
	b.run(b.visible(`[data-test=dashboard-link]`), b.visible(`[data-test=backfill-progress]`))
	b.waitFor("the viewer's history", `document.querySelectorAll('[data-test=history-table] tbody tr').length > 0`, 20*time.Second)
	for _, sel := range []string{"[data-test=start-backfill]", "[data-test=cancel-backfill]", "[data-test=dashboard-make]", "[data-test=dashboard-add-app-key]"} {
		if b.exists(sel) {
			t.Errorf("a viewer's detail page has %s", sel)
		}
	}
	b.page("viewer-detail-backfill-dashboard")
	var answers map[string]int
	b.eval(fmt.Sprintf(`(async () => {
  const auth = {Authorization: 'Bearer ' + sessionStorage.getItem('prism-console.token'), 'Content-Type': 'application/json'};
  const url = '/api/v1/integrations/%[1]s';
  const out = {};
  out.backfill = (await fetch(url + '/backfill', {method: 'POST', headers: auth, body: JSON.stringify({from: %[2]q, to: %[3]q})})).status;
  out.cancel = (await fetch(url + '/backfill', {method: 'DELETE', headers: auth})).status;
  out.dashboard = (await fetch(url + '/dashboard', {method: 'POST', headers: auth})).status;
  return out;
})()`, id, from.Format(time.RFC3339), to.Format(time.RFC3339)), &answers)
	if len(answers) != 3 {
		t.Errorf("forced calls: %v", answers)
	}
	for call, st := range answers {
		if st != http.StatusForbidden {
			t.Errorf("viewer's forced %s answered %d, want 403", call, st)
		}
	}
	if d := len(ce.dd.Dashboards(consoleOrg)); d != 1 {
		t.Errorf("after the viewer's refused calls Datadog holds %d dashboards", d)
	}
}

func starts(rows []map[string]any) []string {
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i], _ = r["window_start"].(string)
	}
	return out
}

func outcomesOf(rows []map[string]any) map[string]int {
	out := map[string]int{}
	for _, r := range rows {
		o, _ := r["outcome"].(string)
		out[o]++
	}
	return out
}
