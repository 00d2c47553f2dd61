package ddfake

import (
	"net"
	"strings"
)

// Account is one tenant's Datadog organisation: its keys and its site
// (for example "datadoghq.eu"; empty means any site).
type Account struct {
	Name    string
	APIKeys []string
	AppKeys []string
	Site    string
}

// keyring maps keys to accounts. Revoked keys are remembered so a later
// request with them is "unknown" (403), like a revoked key at Datadog.
type keyring struct {
	accounts map[string]Account // by name
	api      map[string]string  // API key -> account name
	app      map[string]string  // application key -> account name
}

func newKeyring() keyring {
	return keyring{accounts: map[string]Account{}, api: map[string]string{}, app: map[string]string{}}
}

func (k *keyring) add(a Account) {
	if old, ok := k.accounts[a.Name]; ok {
		for _, key := range old.APIKeys {
			if k.api[key] == a.Name {
				delete(k.api, key)
			}
		}
		for _, key := range old.AppKeys {
			if k.app[key] == a.Name {
				delete(k.app, key)
			}
		}
	}
	a.APIKeys = append([]string(nil), a.APIKeys...)
	a.AppKeys = append([]string(nil), a.AppKeys...)
	k.accounts[a.Name] = a
	for _, key := range a.APIKeys {
		k.api[key] = a.Name
	}
	for _, key := range a.AppKeys {
		k.app[key] = a.Name
	}
}

// AddAccount adds an account, or replaces the one with the same name (its
// old keys stop working). A key listed again after revocation works again.
// When two accounts list the same key, the last added owns it.
func (s *Server) AddAccount(a Account) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys.add(a)
}

// RevokeAPIKey makes key unknown everywhere: every endpoint answers 403.
func (s *Server) RevokeAPIKey(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.keys.api, key)
}

// RevokeAppKey makes an application key unknown (validate_keys answers 403).
func (s *Server) RevokeAppKey(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.keys.app, key)
}

// lookupAPIKey returns the account owning key, honouring the site check.
// Callers hold s.mu.
func (s *Server) lookupAPIKey(key, host string) (string, bool) {
	return s.keys.lookup(s.keys.api, key, host)
}

func (s *Server) lookupAppKey(key, host string) (string, bool) {
	return s.keys.lookup(s.keys.app, key, host)
}

func (k *keyring) lookup(m map[string]string, key, host string) (string, bool) {
	if key == "" {
		return "", false
	}
	name, ok := m[key]
	if !ok {
		return "", false
	}
	site := k.accounts[name].Site
	if reqSite := siteOfHost(host); site != "" && reqSite != "" && !strings.EqualFold(site, reqSite) {
		// Keys belong to one Datadog site; another site does not know them.
		return "", false
	}
	return name, true
}

// isKnownSite reports whether site is one Datadog documents (see the site
// table in the logs and metrics API reference).
func isKnownSite(site string) bool {
	switch site {
	case "datadoghq.com", "us3.datadoghq.com", "us5.datadoghq.com", "datadoghq.eu",
		"ap1.datadoghq.com", "ap2.datadoghq.com", "uk1.datadoghq.com",
		"ddog-gov.com", "us2.ddog-gov.com":
		return true
	}
	return false
}

// siteOfHost returns the site when host is a Datadog API or logs-intake host
// name, so a test that routes real host names to the fake gets site checks;
// "" otherwise (plain 127.0.0.1 tests).
func siteOfHost(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.ToLower(host)
	for _, prefix := range []string{"api.", "http-intake.logs."} {
		rest, ok := strings.CutPrefix(host, prefix)
		if !ok {
			continue
		}
		if isKnownSite(rest) {
			return rest
		}
	}
	return ""
}
