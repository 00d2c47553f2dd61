package sink

import (
	"fmt"
	"strings"
)

// Site is a Datadog site, named by its site name ("datadoghq.eu"). The zero
// value is US1 (datadoghq.com), Datadog's own default.
type Site string

// The Datadog sites, by region code. Each site name is also a value of the
// `site` server variable in the client's OpenAPI spec (a test checks), so the
// client's own server selection can be used for every site.
const (
	SiteUS1    Site = "datadoghq.com"
	SiteUS3    Site = "us3.datadoghq.com"
	SiteUS5    Site = "us5.datadoghq.com"
	SiteEU1    Site = "datadoghq.eu"
	SiteAP1    Site = "ap1.datadoghq.com"
	SiteAP2    Site = "ap2.datadoghq.com"
	SiteUK1    Site = "uk1.datadoghq.com"
	SiteUS1FED Site = "ddog-gov.com"
	SiteUS2FED Site = "us2.ddog-gov.com"
)

type siteEntry struct {
	region string
	site   Site
}

// sites lists every known site with its region code, in a stable order for
// error messages and tests. A function rather than a package variable: the
// table cannot be changed by anyone.
func sites() [9]siteEntry {
	return [...]siteEntry{
		{"US1", SiteUS1},
		{"US3", SiteUS3},
		{"US5", SiteUS5},
		{"EU1", SiteEU1},
		{"AP1", SiteAP1},
		{"AP2", SiteAP2},
		{"UK1", SiteUK1},
		{"US1-FED", SiteUS1FED},
		{"US2-FED", SiteUS2FED},
	}
}

// ParseSite accepts a region code ("EU1", any case) or a site name
// ("datadoghq.eu", any case). The empty string is US1.
func ParseSite(s string) (Site, error) {
	v := strings.TrimSpace(s)
	if v == "" {
		return SiteUS1, nil
	}
	for _, e := range sites() {
		if strings.EqualFold(v, e.region) || strings.EqualFold(v, string(e.site)) {
			return e.site, nil
		}
	}
	return "", fmt.Errorf("unknown Datadog site %s: use a region code (%s) or its site name (%s)",
		shown(s), strings.Join(regionCodes(), ", "), strings.Join(siteNames(), ", "))
}

func regionCodes() []string {
	out := make([]string, len(sites()))
	for i, e := range sites() {
		out[i] = e.region
	}
	return out
}

func siteNames() []string {
	out := make([]string, len(sites()))
	for i, e := range sites() {
		out[i] = string(e.site)
	}
	return out
}

// Name is the site name, as the client's `site` server variable takes it.
func (s Site) Name() string {
	if s == "" {
		return string(SiteUS1)
	}
	return string(s)
}

// Region is the region code ("EU1"), or "" for a site this package does not
// know (only possible for a Site built by conversion rather than ParseSite).
func (s Site) Region() string {
	for _, e := range sites() {
		if e.site == Site(s.Name()) {
			return e.region
		}
	}
	return ""
}

// APIHost is where metrics and key validation go.
func (s Site) APIHost() string { return "api." + s.Name() }

// LogsHost is where logs go.
func (s Site) LogsHost() string { return "http-intake.logs." + s.Name() }

// AppURL is the site's web app, where people open dashboards and monitors
// (Datadog's "Site URL"): app.<site> for the three sites without a region
// label in their name, the site name itself for the others.
func (s Site) AppURL() string {
	switch Site(s.Name()) {
	case SiteUS1, SiteEU1, SiteUS1FED:
		return "https://app." + s.Name()
	}
	return "https://" + s.Name()
}

// String is the site name.
func (s Site) String() string { return s.Name() }

// MarshalText prints the site name (for the /status page).
func (s Site) MarshalText() ([]byte, error) { return []byte(s.Name()), nil }

// known reports whether s is one of the sites ParseSite returns.
func (s Site) known() bool { return s.Region() != "" }

// Sites lists every Datadog site, US1 first.
func Sites() []Site {
	out := make([]Site, 0, len(sites()))
	for _, e := range sites() {
		out = append(out, e.site)
	}
	return out
}
