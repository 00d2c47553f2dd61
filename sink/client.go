package sink

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/DataDog/datadog-api-client-go/v2/api/datadog"
	"github.com/DataDog/datadog-api-client-go/v2/api/datadogV1"
	"github.com/DataDog/datadog-api-client-go/v2/api/datadogV2"
)

// ddClient is the one Datadog API client all tenants share: one connection
// pool, one configuration. What differs per tenant (keys, site) travels in
// the request context, the client's own mechanism for it.
type ddClient struct {
	httpc *http.Client
	api   *datadog.APIClient
	auth  *datadogV1.AuthenticationApi
	keys  *datadogV2.KeyManagementApi
	// baseProto and baseName are Config.BaseURL split for the client's
	// "{protocol}://{name}" server (index 1); empty when unset.
	baseProto, baseName string
}

func newDDClient(cfg Config) *ddClient {
	// http.DefaultClient has no timeout at all: a stuck connection would
	// hold a tenant's delivery slot forever.
	dialer := &net.Dialer{Timeout: min(10*time.Second, cfg.HTTPTimeout), KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           dialer.DialContext,
		TLSHandshakeTimeout:   min(10*time.Second, cfg.HTTPTimeout),
		ResponseHeaderTimeout: cfg.HTTPTimeout,
		ExpectContinueTimeout: time.Second,
		// Below common server idle timeouts, so the transport closes a
		// parked connection before the server does.
		IdleConnTimeout: 30 * time.Second,
		MaxIdleConns:    256,
		// Tenants on one site share hosts: keep enough idle connections for
		// every tenant's concurrent requests.
		MaxIdleConnsPerHost: 64,
		ForceAttemptHTTP2:   true,
	}
	httpc := &http.Client{Transport: tr, Timeout: cfg.HTTPTimeout}

	dc := datadog.NewConfiguration()
	dc.HTTPClient = httpc
	// The sink retries by itself, per tenant, with its own classification
	// (the client's retry skips 408 and transport errors and gives up).
	dc.RetryConfiguration.EnableRetry = false
	dc.UserAgent = "prism-exporter " + datadog.GetUserAgent()
	api := datadog.NewAPIClient(dc)

	c := &ddClient{
		httpc: httpc,
		api:   api,
		auth:  datadogV1.NewAuthenticationApi(api),
		keys:  datadogV2.NewKeyManagementApi(api),
	}
	if cfg.BaseURL != "" {
		u, _ := url.Parse(cfg.BaseURL) // validated by Config.validate
		c.baseProto = u.Scheme
		c.baseName = u.Host + strings.TrimSuffix(u.Path, "/")
	}
	return c
}

// parseBaseURL checks PRISM_DATADOG_URL.
func parseBaseURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("must start with http:// or https://, got %q", s)
	}
	if u.Host == "" {
		return fmt.Errorf("has no host: %q", s)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return fmt.Errorf("must be a plain base URL without user, query or fragment: %q", u.Redacted())
	}
	return nil
}

// conn is how one tenant configuration reaches Datadog: its keys and server
// selection as client context values, and its logs URL. It never changes;
// a new one is made when the tenant's keys or site change.
type conn struct {
	site           Site
	apiKey, appKey Secret
	keys           map[string]datadog.APIKey
	serverIndex    int // 0: the site's hosts; 1: Config.BaseURL
	serverVars     map[string]string
	logsURL        string
	seriesURL      string
}

func (c *ddClient) newConn(t Tenant) (*conn, error) {
	cn := &conn{
		site:   t.Site,
		apiKey: t.APIKey,
		appKey: t.AppKey,
		keys:   map[string]datadog.APIKey{"apiKeyAuth": {Key: string(t.APIKey)}},
	}
	if t.AppKey != "" {
		cn.keys["appKeyAuth"] = datadog.APIKey{Key: string(t.AppKey)}
	}
	if c.baseName != "" {
		cn.serverIndex = 1
		cn.serverVars = map[string]string{"protocol": c.baseProto, "name": c.baseName}
	} else {
		cn.serverVars = map[string]string{"site": t.Site.Name()}
	}
	// The client's server selection, so that the logs intake host of each
	// site comes from the spec rather than from string concatenation here.
	base, err := c.api.GetConfig().ServerURLWithContext(cn.ctx(context.Background()), "v2.LogsApi.SubmitLog")
	if err != nil {
		return nil, fmt.Errorf("site %s: %w", t.Site, err)
	}
	cn.logsURL = base + "/api/v2/logs"
	base, err = c.api.GetConfig().ServerURLWithContext(cn.ctx(context.Background()), "v2.MetricsApi.SubmitMetrics")
	if err != nil {
		return nil, fmt.Errorf("site %s: %w", t.Site, err)
	}
	cn.seriesURL = base + "/api/v2/series"
	return cn, nil
}

// ctx carries the tenant's keys and server selection to the client.
func (cn *conn) ctx(parent context.Context) context.Context {
	ctx := context.WithValue(parent, datadog.ContextAPIKeys, cn.keys)
	if cn.serverIndex != 0 {
		ctx = context.WithValue(ctx, datadog.ContextServerIndex, cn.serverIndex)
	}
	return context.WithValue(ctx, datadog.ContextServerVariables, cn.serverVars)
}

// secrets lists the keys to scrub from anything quoted from an answer.
func (cn *conn) secrets() []Secret { return []Secret{cn.apiKey, cn.appKey} }
