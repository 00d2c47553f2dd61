package deployments

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/model/textparse"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/prometheus/prometheus/util/annotations"
	"sigs.k8s.io/yaml"
)

// ruleGroups parses a PrometheusRule's spec, which is a Prometheus rules
// file, with Prometheus's own parser: unknown fields, bad durations, and
// expressions or templates that do not parse are errors.
func ruleGroups(spec []byte) ([]rulefmt.RuleGroup, error) {
	text, err := yaml.JSONToYAML(spec)
	if err != nil {
		return nil, err
	}
	rgs, errs := rulefmt.Parse(text, false, model.UTF8Validation, parser.NewParser(parser.Options{}), slog.New(slog.DiscardHandler))
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return rgs.Groups, nil
}

// baseRules is the spec of the base kustomization's PrometheusRule.
func baseRules(t *testing.T) []byte {
	t.Helper()
	objs, err := render(manifestsFS(t), "/kubernetes/base")
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		if o.gvk.Kind == "PrometheusRule" {
			var r prometheusRule
			if err := json.Unmarshal(o.json, &r); err != nil {
				t.Fatal(err)
			}
			return r.Spec
		}
	}
	t.Fatal("the base has no PrometheusRule")
	return nil
}

// Every alert parses, and every expression runs against the exporter's real
// metrics with every selector in it matching a series: an alert on a metric
// or label value that does not exist would never fire.
func TestAlertRules(t *testing.T) {
	groups, err := ruleGroups(baseRules(t))
	if err != nil {
		t.Fatal(err)
	}
	db, at := scrapedStorage(t, fixture(t))
	n := 0
	for _, g := range groups {
		for _, r := range g.Rules {
			n++
			if r.Alert == "" {
				t.Errorf("group %s: a recording rule; this file holds alerts", g.Name)
			}
			for _, err := range checkExpr(db, at, r.Expr) {
				t.Errorf("alert %s: %v", r.Alert, err)
			}
			for _, a := range []string{"summary", "description", "runbook_url"} {
				if r.Annotations[a] == "" {
					t.Errorf("alert %s: no %s annotation", r.Alert, a)
				}
			}
			if s := r.Labels["severity"]; s != "page" && s != "ticket" {
				t.Errorf("alert %s: severity %q, want page or ticket", r.Alert, s)
			}
		}
	}
	if n == 0 {
		t.Fatal("no alert rules")
	}
}

// The checks catch a misspelt rule field, a metric that does not exist, a
// label value the exporter never reports, and an expression that does not
// parse.
func TestAlertRulesBroken(t *testing.T) {
	spec := string(baseRules(t))
	db, at := scrapedStorage(t, fixture(t))
	for _, c := range []struct{ name, old, new string }{
		{"misspelt field", `"expr":`, `"exprr":`},
		{"metric that does not exist", "rate(prism_exporter_dead_letters_total[", "rate(prism_exporter_dead_letter_total["},
		{"label value never reported", `state=\"error\"`, `state=\"eror\"`},
		{"label that does not exist", `result=\"ok\"`, `outcome=\"ok\"`},
		{"expression that does not parse", "sum(rate(prism_exporter_dead_letters_total[15m]))", "sum(rate(prism_exporter_dead_letters_total[15m])"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if !strings.Contains(spec, c.old) {
				t.Fatalf("the rules have no %q to change", c.old)
			}
			groups, err := ruleGroups([]byte(strings.Replace(spec, c.old, c.new, 1)))
			if err != nil {
				return
			}
			for _, g := range groups {
				for _, r := range g.Rules {
					if len(checkExpr(db, at, r.Expr)) > 0 {
						return
					}
				}
			}
			t.Errorf("rules with %q passed", c.new)
		})
	}
}

// checkExpr evaluates expr once at ts, and checks that each of its
// selectors matches a series of the scrape.
func checkExpr(db storage.Queryable, ts time.Time, expr string) []error {
	e, err := parser.NewParser(parser.Options{}).ParseExpr(expr)
	if err != nil {
		return []error{err}
	}
	var errs []error
	ctx := context.Background()
	parser.Inspect(e, func(node parser.Node, _ []parser.Node) error {
		vs, ok := node.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		q, err := db.Querier(0, ts.UnixMilli())
		if err != nil {
			errs = append(errs, err)
			return nil
		}
		defer q.Close()
		if !q.Select(ctx, false, nil, vs.LabelMatchers...).Next() {
			errs = append(errs, fmt.Errorf("%s matches no series of the exporter's /metrics", vs))
		}
		return nil
	})
	eng := promql.NewEngine(promql.EngineOpts{MaxSamples: 1_000_000, Timeout: 10 * time.Second, LookbackDelta: 5 * time.Minute})
	q, err := eng.NewInstantQuery(ctx, db, nil, expr, ts)
	if err != nil {
		return append(errs, err)
	}
	defer q.Close()
	if res := q.Exec(ctx); res.Err != nil {
		errs = append(errs, res.Err)
	}
	return errs
}

// scrapedStorage holds the exporter's scrapes as Prometheus would after
// scraping it: one series per exposed line, one sample per scrape. It
// returns the time of the last scrape.
func scrapedStorage(t *testing.T, ex *exporter) (storage.Queryable, time.Time) {
	t.Helper()
	db := memStorage{}
	index := map[string]int{}
	for _, s := range ex.scrapes {
		p := textparse.NewPromParser(s.body, labels.NewSymbolTable(), false)
		for {
			et, err := p.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("parsing the exporter's /metrics: %v", err)
			}
			if et != textparse.EntrySeries {
				continue
			}
			_, _, v := p.Series()
			var l labels.Labels
			p.Labels(&l)
			i, ok := index[l.String()]
			if !ok {
				i = len(db)
				index[l.String()] = i
				db = append(db, memSeries{labels: l})
			}
			db[i].samples = append(db[i].samples, floatSample{t: s.at.UnixMilli(), f: v})
		}
	}
	if len(db) == 0 {
		t.Fatal("the exporter's /metrics had no series")
	}
	return db, ex.scrapes[len(ex.scrapes)-1].at
}

// memStorage is a storage.Queryable over a few scrapes in memory.
type memStorage []memSeries

type memSeries struct {
	labels  labels.Labels
	samples []chunks.Sample
}

func (m memStorage) Querier(_, _ int64) (storage.Querier, error) {
	return &storage.MockQuerier{SelectMockFunction: func(_ bool, _ *storage.SelectHints, ms ...*labels.Matcher) storage.SeriesSet {
		var out []storage.Series
		for _, s := range m {
			if matchesAll(s.labels, ms) {
				out = append(out, storage.NewListSeries(s.labels, s.samples))
			}
		}
		slices.SortFunc(out, func(a, b storage.Series) int { return labels.Compare(a.Labels(), b.Labels()) })
		return &seriesSet{list: out, i: -1}
	}}, nil
}

func matchesAll(l labels.Labels, ms []*labels.Matcher) bool {
	for _, m := range ms {
		if !m.Matches(l.Get(m.Name)) {
			return false
		}
	}
	return true
}

type seriesSet struct {
	list []storage.Series
	i    int
}

func (s *seriesSet) Next() bool                        { s.i++; return s.i < len(s.list) }
func (s *seriesSet) At() storage.Series                { return s.list[s.i] }
func (s *seriesSet) Err() error                        { return nil }
func (s *seriesSet) Warnings() annotations.Annotations { return nil }

// floatSample is one scraped value.
type floatSample struct {
	t int64
	f float64
}

func (s floatSample) T() int64                      { return s.t }
func (s floatSample) ST() int64                     { return 0 }
func (s floatSample) F() float64                    { return s.f }
func (s floatSample) H() *histogram.Histogram       { return nil }
func (s floatSample) FH() *histogram.FloatHistogram { return nil }
func (s floatSample) Type() chunkenc.ValueType      { return chunkenc.ValFloat }
func (s floatSample) Copy() chunks.Sample           { return s }
