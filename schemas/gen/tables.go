package gen

// The shapes below are read off the shared samples (1,000 records of the
// Prism gateway): which models run on which provider at what price, how calls
// fail, and how often the gateway caches, falls back or blocks.

type model struct {
	name, resolved, provider string
	// USD per million prompt and completion tokens; the samples' costs fit
	// these exactly.
	inPerM, outPerM float64
	weight          int
}

func models() []model {
	return []model{
		{"gpt-4o-mini", "gpt-4o-mini-2025-08-06", "openai", 0.15, 0.60, 23},
		{"mistral-large", "mistral-large", "mistral", 2, 6, 20},
		{"gpt-4o", "gpt-4o-2025-08-06", "openai", 2.5, 10, 20},
		{"claude-sonnet-4", "claude-sonnet-4", "anthropic", 3, 15, 20},
		{"gemini-2.5-pro", "gemini-2.5-pro", "google", 1.25, 10, 17},
	}
}

// outcome is how a call ended. Failed calls bill their prompt and return no
// completion.
type outcome struct {
	status    int
	message   string
	code      string
	guardrail bool
	perMille  int // of all calls
}

func outcomes() []outcome {
	return []outcome{
		{200, "", "", false, 902},
		{429, "rate limit exceeded for model", "rate_limit_exceeded", false, 38},
		{400, "request blocked by guardrail: pii-detector", "guardrail_blocked", true, 22},
		{500, "provider returned an internal error", "provider_error", false, 17},
		{408, "request timed out after 60000ms", "timeout", false, 13},
		{502, "bad gateway from upstream provider", "upstream_error", false, 8},
	}
}

// routingStrategies are equally likely; "" (no routing decision, the key is
// absent) is as common as each.
func routingStrategies() []string {
	return []string{"", "weighted", "least-latency", "cost-optimized", "fallback"}
}

func gateways() []string { return []string{"gw-us-east-1", "gw-eu-west-1"} }

// sampleTenants are the organisations of the shared samples, used when the
// configuration names none.
func sampleTenants() []string {
	return []string{"org_3f9a1c", "org_77b2e0", "org_c0ffee", "org_d15ea5", "org_5a1e5"}
}

const (
	cacheHitPerMille = 145 // of successful calls
	fallbackPerMille = 43
	streamPerMille   = 435
	sessionPerMille  = 290

	minPrompt, maxPrompt         = 20, 6000
	minCompletion, maxCompletion = 1, 1500
	minLatency, maxLatency       = 150, 9000 // ms, a provider call
	minCachedLatency, maxCached  = 1, 40     // ms, served from the cache
	users, sessions, keysPerOrg  = 300, 80, 4
)
