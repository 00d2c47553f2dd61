package main

// The harness of the console's browser tests (console_browser_test.go): an
// exporter with the API and console on, live traffic, and a headless
// Chromium tab driven with chromedp. Each step is screenshotted, checked for
// script errors and Content-Security-Policy violations, and put through
// axe-core in the same browser.
//
// Chromium: /usr/bin/chromium or one on PATH; deployments/with-chromium.sh
// installs it. axe-core: PRISM_AXE_JS, or the copy with-chromium.sh leaves in
// the user cache folder. Without them the tests (or the accessibility
// checks) are skipped with a message, except under CI=true where they fail.

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/futureagi/prism-exporter/schemas/gen"
	"github.com/futureagi/prism-exporter/sink"
)

const (
	consoleOrg    = "org_console"
	consoleAPIKey = "ddapi0console0000000000000000a1b2"
	consoleNewKey = "ddapi0console0000000000000000c3d4"
	consoleAppKey = "ddapp0console00000000000000000a1b2"
)

// inCI reports whether missing tools must fail rather than skip.
func inCI() bool { return os.Getenv("CI") == "true" }

func skipOrFail(t *testing.T, format string, args ...any) {
	t.Helper()
	if inCI() {
		t.Fatalf(format+" (CI=true: required)", args...)
	}
	t.Skipf(format, args...)
}

// chromiumPath finds a Chromium to drive, or skips (fails under CI).
func chromiumPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("PRISM_CHROMIUM"); p != "" {
		if _, err := os.Stat(p); err != nil {
			skipOrFail(t, "PRISM_CHROMIUM: %v", err)
		}
		return p
	}
	if _, err := os.Stat("/usr/bin/chromium"); err == nil {
		return "/usr/bin/chromium"
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	skipOrFail(t, "no Chromium: run through deployments/with-chromium.sh (make test-browser), or set PRISM_CHROMIUM")
	return ""
}

// axeSource is axe-core's script, or "" when it is not at hand.
func axeSource(t *testing.T) string {
	t.Helper()
	path := os.Getenv("PRISM_AXE_JS")
	if path == "" {
		if dir, err := os.UserCacheDir(); err == nil {
			found, _ := filepath.Glob(filepath.Join(dir, "prism-exporter", "axe-core-*", "package", "axe.min.js"))
			if len(found) > 0 {
				path = found[len(found)-1]
			}
		}
	}
	if path == "" {
		return ""
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("PRISM_AXE_JS: %v", err)
	}
	return string(b)
}

// consoleEnv is an exporter with the API on, no tenants file, and one
// Datadog stand-in account whose organisation has no integration yet.
type consoleEnv struct {
	*env
	base   string            // http://host:port of the API and console
	tokens map[string]string // by role
}

// newConsoleEnv starts it; tune changes the exporter's settings first (a
// slower backfill, say).
func newConsoleEnv(t *testing.T, tune ...func(*settings)) *consoleEnv {
	t.Helper()
	if testing.Short() {
		// Minutes of real sync windows: they have their own target.
		t.Skip("browser tests do not run under -short: make test-browser runs them")
	}
	chromiumPath(t) // skip (or fail under CI) before starting anything
	e := newEnv(t, []testTenant{{ID: consoleOrg, APIKey: consoleAPIKey, Interval: time.Minute, NoIntegr: true}})
	ce := &consoleEnv{env: e, tokens: map[string]string{}}
	var b strings.Builder
	b.WriteString("tokens:\n")
	for _, tk := range []struct{ role, name, org string }{
		{"admin", "ops", ""}, {"owner", "console-owner", consoleOrg}, {"viewer", "console-viewer", consoleOrg},
	} {
		tok := randomText(24)
		ce.tokens[tk.role] = tok
		sum := sha256.Sum256([]byte(tok))
		fmt.Fprintf(&b, "  - name: %s\n    sha256: %s\n    role: %s\n", tk.name, hex.EncodeToString(sum[:]), tk.role)
		if tk.org != "" {
			fmt.Fprintf(&b, "    org_id: %s\n", tk.org)
		}
	}
	tokensFile := filepath.Join(t.TempDir(), "tokens.yaml")
	if err := os.WriteFile(tokensFile, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	s := e.settings()
	s.TenantsFile = ""
	s.APITokensFile = tokensFile
	s.SecretsKey = sink.Secret(base64.StdEncoding.EncodeToString(randomBytes(32)))
	for _, f := range tune {
		f(&s)
	}
	e.runInProcess(s)

	deadline := time.Now().Add(90 * time.Second)
	for e.run.Load() == nil {
		if time.Now().After(deadline) {
			t.Fatal("the exporter did not start within 90s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	r := e.run.Load()
	addr := r.apiAddr
	if addr == "" {
		addr = r.httpAddr
	}
	ce.base = "http://" + addr
	for {
		status, _ := ce.call("admin", "GET", "/api/v1/whoami", nil)
		if status == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the API did not answer whoami within 90s (last status %d)", status)
		}
		time.Sleep(200 * time.Millisecond)
	}
	res, err := http.Get(ce.base + "/ui/")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Security-Policy") == "" {
		t.Fatalf("GET /ui/ answered %d without the console's headers: serve() must mount console.Handler() at /ui/", res.StatusCode)
	}
	return ce
}

// call is one API call with a role's token; it returns the status and body.
func (ce *consoleEnv) call(role, method, path string, body any) (int, []byte) {
	ce.t.Helper()
	var rd *bytes.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, _ := http.NewRequest(method, ce.base+path, rd)
	req.Header.Set("Authorization", "Bearer "+ce.tokens[role])
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil
	}
	defer res.Body.Close()
	var out bytes.Buffer
	_, _ = out.ReadFrom(res.Body)
	return res.StatusCode, out.Bytes()
}

// feed produces live gateway traffic for org, stamped now, until the
// returned stop is called (or the test ends).
func (ce *consoleEnv) feed(org string, perSecond int) (stop func()) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(ce.brokers...), kgo.DefaultProduceTopic(ce.topic),
		kgo.RecordPartitioner(kgo.RoundRobinPartitioner()), kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		ce.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		g := gen.New(gen.Config{Tenants: []string{org}, Seed: 13})
		tick := time.NewTicker(time.Second / time.Duration(perSecond))
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				_, v, _ := g.Next(time.Now())
				cl.Produce(ctx, &kgo.Record{Value: v}, nil)
			}
		}
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			<-done
			cl.Close()
		})
	}
	ce.t.Cleanup(stop)
	return stop
}

// produceAt writes n gateway records of org with event times spread over
// [from, from+span), in time order and stamped in Kafka with their event
// time, as the gateway's producer stamps them: history a backfill can read.
func (ce *consoleEnv) produceAt(org string, n int, from time.Time, span time.Duration, seed int64) {
	ce.t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(ce.brokers...), kgo.DefaultProduceTopic(ce.topic),
		kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	if err != nil {
		ce.t.Fatal(err)
	}
	defer cl.Close()
	g := gen.New(gen.Config{Tenants: []string{org}, Seed: seed})
	recs := make([]*kgo.Record, 0, n)
	for i := range n {
		ts := from.Add(span * time.Duration(i) / time.Duration(n))
		_, v, _ := g.Next(ts)
		recs = append(recs, &kgo.Record{Value: v, Timestamp: ts})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		ce.t.Fatal(err)
	}
}

// browser is one headless Chromium tab on the console.
type browser struct {
	t       *testing.T
	ctx     context.Context
	base    string
	shots   string // folder of this test's screenshots
	step    int
	axe     string
	mu      sync.Mutex
	errs    []string // script errors seen since the last check
	stopped atomic.Bool
}

func newBrowser(t *testing.T, base string) *browser {
	t.Helper()
	execPath := chromiumPath(t)
	root := os.Getenv("PRISM_SCREENSHOTS_DIR")
	if root == "" {
		// Not under the package: screenshots must not dirty the repo.
		root = filepath.Join(os.TempDir(), "prism-console-screenshots")
	}
	dir := filepath.Join(root, strings.ReplaceAll(t.Name(), "/", "_"))
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots of each step: %s", dir)

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(execPath),
		chromedp.WindowSize(1280, 900),
		chromedp.Flag("lang", "en-GB"),
		chromedp.Flag("force-prefers-reduced-motion", true),
	)
	if os.Geteuid() == 0 {
		// Chromium refuses to start its sandbox as root (CI runs as root).
		opts = append(opts, chromedp.NoSandbox)
	}
	b := &browser{t: t, base: base, shots: dir, axe: axeSource(t)}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx, chromedp.WithErrorf(b.chromedpError))
	if deadline, ok := t.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, deadline.Add(-10*time.Second))
		t.Cleanup(cancel)
	}
	t.Cleanup(func() {
		b.stopped.Store(true)
		cancelTab()
		cancelAlloc()
	})
	b.ctx = ctx
	chromedp.ListenTarget(ctx, func(ev any) {
		switch e := ev.(type) {
		case *runtime.EventExceptionThrown:
			msg := e.ExceptionDetails.Text
			if e.ExceptionDetails.Exception != nil {
				msg += " " + e.ExceptionDetails.Exception.Description
			}
			b.problem("uncaught exception: " + msg)
		case *runtime.EventConsoleAPICalled:
			if e.Type == runtime.APITypeError || e.Type == runtime.APITypeAssert {
				var parts []string
				for _, a := range e.Args {
					parts = append(parts, string(a.Value)+a.Description)
				}
				b.problem("console.error: " + strings.Join(parts, " "))
			}
		}
	})
	// Runs before the page's own scripts and is not subject to its CSP:
	// it records every violation, which check() then reports.
	const watch = `window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', e => window.__cspViolations.push(e.violatedDirective + ' blocked ' + (e.blockedURI || 'inline') + ' in ' + e.sourceFile + ':' + e.lineNumber));`
	b.run(chromedp.ActionFunc(func(ctx context.Context) error {
		_, err := page.AddScriptToEvaluateOnNewDocument(watch).Do(ctx)
		return err
	}))
	return b
}

func (b *browser) chromedpError(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	// chromedp v0.14 does not know every event of a newer Chromium; that
	// is noise, not a console problem.
	if strings.Contains(msg, "unhandled") || b.stopped.Load() {
		return
	}
	b.t.Logf("chromedp: %s", msg)
}

func (b *browser) problem(msg string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.errs = append(b.errs, msg)
}

func (b *browser) run(actions ...chromedp.Action) {
	b.t.Helper()
	if err := chromedp.Run(b.ctx, actions...); err != nil {
		b.shot("failed")
		b.t.Fatalf("browser: %v\npage text:\n%s", err, b.pageText())
	}
}

// eval evaluates a JavaScript expression in the page (awaiting a promise)
// into out.
func (b *browser) eval(expr string, out any) {
	b.t.Helper()
	b.run(chromedp.Evaluate(expr, out, func(p *runtime.EvaluateParams) *runtime.EvaluateParams {
		return p.WithAwaitPromise(true)
	}))
}

func (b *browser) pageText() string {
	var text string
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	_ = chromedp.Run(ctx, chromedp.Evaluate(`document.body ? document.body.innerText : ''`, &text))
	return text
}

// check reports the script errors and CSP violations seen so far.
func (b *browser) check(step string) {
	b.t.Helper()
	var csp []string
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	_ = chromedp.Run(ctx, chromedp.Evaluate(`window.__cspViolations || []`, &csp))
	b.mu.Lock()
	errs := b.errs
	b.errs = nil
	b.mu.Unlock()
	for _, v := range csp {
		b.t.Errorf("%s: Content-Security-Policy violation: %s", step, v)
	}
	for _, e := range errs {
		b.t.Errorf("%s: %s", step, e)
	}
}

// shot saves a full-page screenshot of the step.
func (b *browser) shot(name string) {
	b.t.Helper()
	b.step++
	var png []byte
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	// Let transitions and the toast settle, so the picture is what a
	// person would see.
	time.Sleep(300 * time.Millisecond)
	if err := chromedp.Run(ctx, chromedp.FullScreenshot(&png, 100)); err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return
	}
	p := filepath.Join(b.shots, fmt.Sprintf("%02d-%s.png", b.step, name))
	if err := os.WriteFile(p, png, 0o644); err != nil {
		b.t.Errorf("saving screenshot: %v", err)
	}
}

// page screenshots a step, checks it for script errors and CSP
// violations, and runs axe-core on it.
func (b *browser) page(name string) {
	b.t.Helper()
	b.shot(name)
	b.check(name)
	b.accessible(name)
}

// axeViolation is what the test reports of one axe-core finding.
type axeViolation struct {
	ID     string   `json:"id"`
	Impact string   `json:"impact"`
	Help   string   `json:"help"`
	Nodes  []string `json:"nodes"`
}

// accessible runs axe-core (WCAG 2.1 A and AA, and best practices) on the
// page as it is, as a subtest that is skipped when axe-core is absent.
func (b *browser) accessible(name string) {
	b.t.Helper()
	b.t.Run("axe/"+name, func(t *testing.T) {
		if b.axe == "" {
			skipOrFail(t, "axe-core is absent: run through deployments/with-chromium.sh (make test-browser), or set PRISM_AXE_JS to an axe.min.js")
		}
		var loaded bool
		b.eval(`typeof window.axe === 'object'`, &loaded)
		if !loaded {
			// Runtime.evaluate is the debugger's, not a page script: the
			// page's CSP does not apply to it, and the page keeps its own.
			b.run(chromedp.Evaluate(b.axe, nil))
		}
		var found []axeViolation
		b.eval(`axe.run(document, {
  runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']},
  resultTypes: ['violations'],
}).then(r => r.violations.map(v => ({
  id: v.id, impact: v.impact || '', help: v.help,
  nodes: v.nodes.slice(0, 5).map(n => n.target.join(' ') + ': ' + (n.failureSummary || '').replace(/\s+/g, ' ')),
})))`, &found)
		for _, v := range found {
			t.Errorf("%s: axe %s (%s): %s\n  %s", name, v.ID, v.Impact, v.Help, strings.Join(v.Nodes, "\n  "))
		}
	})
}

// waitFor polls a JavaScript condition until it is true.
func (b *browser) waitFor(what, expr string, timeout time.Duration) {
	b.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var ok bool
		ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
		err := chromedp.Run(ctx, chromedp.Evaluate(expr, &ok))
		cancel()
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			b.shot("timeout")
			b.t.Fatalf("waited %s for %s (%s), last error %v\npage text:\n%s", timeout, what, expr, err, b.pageText())
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func (b *browser) visible(sel string) chromedp.Action {
	return chromedp.WaitVisible(sel, chromedp.ByQuery)
}

func (b *browser) click(sel string) {
	b.t.Helper()
	b.run(chromedp.WaitVisible(sel, chromedp.ByQuery), chromedp.Click(sel, chromedp.ByQuery))
}

// fill replaces an input's value by typing, as a person would.
func (b *browser) fill(sel, text string) {
	b.t.Helper()
	b.run(chromedp.WaitVisible(sel, chromedp.ByQuery))
	var ok bool
	b.eval(fmt.Sprintf(`(el => { el.value = ''; el.dispatchEvent(new Event('input', {bubbles: true})); return true })(document.querySelector(%q))`, sel), &ok)
	b.run(chromedp.SendKeys(sel, text, chromedp.ByQuery))
}

// setValue sets a field's value as a picker would (a datetime-local or a
// select), and tells the page with input and change events.
func (b *browser) setValue(sel, value string) {
	b.t.Helper()
	b.run(chromedp.WaitVisible(sel, chromedp.ByQuery))
	var ok bool
	b.eval(fmt.Sprintf(`(el => { el.focus(); el.value = %q; el.dispatchEvent(new Event('input', {bubbles: true})); el.dispatchEvent(new Event('change', {bubbles: true})); return el.value === %q })(document.querySelector(%q))`, value, value, sel), &ok)
	if !ok {
		b.t.Fatalf("%s does not take the value %q", sel, value)
	}
}

// attr is an attribute of the first element sel matches, "" when absent.
func (b *browser) attr(sel, name string) string {
	b.t.Helper()
	var s string
	b.eval(fmt.Sprintf(`((document.querySelector(%q) || {getAttribute: () => ''}).getAttribute(%q)) || ''`, sel, name), &s)
	return s
}

// count is how many elements sel matches.
func (b *browser) count(sel string) int {
	b.t.Helper()
	var n int
	b.eval(fmt.Sprintf(`document.querySelectorAll(%q).length`, sel), &n)
	return n
}

func (b *browser) text(sel string) string {
	b.t.Helper()
	var s string
	b.eval(fmt.Sprintf(`(document.querySelector(%q) || {}).textContent || ''`, sel), &s)
	return s
}

func (b *browser) exists(sel string) bool {
	b.t.Helper()
	var ok bool
	b.eval(fmt.Sprintf(`!!document.querySelector(%q)`, sel), &ok)
	return ok
}

// statusIs is the condition "the detail page's badge shows status".
func statusIs(status string) string {
	return fmt.Sprintf(`(document.querySelector('.status-region [data-test=status]') || {dataset: {}}).dataset.status === %q`, status)
}

// number reads a count the page shows ("1,234").
func (b *browser) number(sel string) int {
	b.t.Helper()
	var n int
	b.eval(fmt.Sprintf(`Number(((document.querySelector(%q) || {}).textContent || '-1').replace(/[^0-9-]/g, ''))`, sel), &n)
	return n
}

func (b *browser) signIn(token string) {
	b.t.Helper()
	b.run(chromedp.Navigate(b.base+"/ui/"), b.visible(`input[name=token]`))
	b.page("sign-in")
	b.fill(`input[name=token]`, token)
	b.click(`form button[type=submit]`)
	b.run(b.visible(`#connected-title`))
	b.waitFor("the integrations to load", `!document.querySelector('.region[aria-busy]')`, 20*time.Second)
}

// noKeyInPage fails when a Datadog key is anywhere in the page: the API
// never returns one, and the console clears what was typed.
func (b *browser) noKeyInPage(keys ...string) {
	b.t.Helper()
	var dump string
	b.eval(`document.documentElement.outerHTML + [...document.querySelectorAll('input')].map(i => i.value).join(' ')`, &dump)
	for _, k := range keys {
		if strings.Contains(dump, k) {
			b.t.Errorf("a Datadog key (…%s) is still in the page", k[len(k)-4:])
		}
	}
}

// nextWindowEnd is when the window of length d that is open now, plus
// lateness, has surely been delivered.
func nextWindowEnd(d, lateness time.Duration) time.Time {
	now := time.Now()
	return now.Truncate(d).Add(d).Add(lateness)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return b
}

func randomText(n int) string {
	return base64.RawURLEncoding.EncodeToString(randomBytes(n))
}
