package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/ivrpay/ivrpay"
)

// TestAuthLimitsAcrossARestart runs the built binary behind a (trusted)
// proxy on SQLite: an IVR key and an admin key work from a Twilio address,
// then an attacker sharing it blocks it on the connector and on the REST
// API, and another client fails three times, below the threshold. SIGTERM
// writes every failure to the audit trail, and after a restart the keys that
// worked from the blocked address still do, while a valid key new to it is
// refused unchecked.
func TestAuthLimitsAcrossARestart(t *testing.T) {
	inst := freshInstallation(t, binaryTest(t, "builds and runs the binary"))
	start := func() *serveProcess { return inst.serve(t, nil, "--behind-proxy", "--drain-delay", "0s") }
	srv := start()
	admin, ivrKey := srv.bootstrap(t, "admin api_key"), srv.bootstrap(t, "ivr api_key")
	const twilio, clumsy = "54.172.60.1", "198.51.100.7"
	unused := (&whServer{srv}).api(t, "POST", "/v1/api_keys", admin, map[string]any{"statements": []ivrpay.Statement{{
		Permissions: []string{"payin:create"},
		Constraints: ivrpay.Constraints{Platform: &ivrpay.PlatformConstraint{PlatformID: srv.bootstrap(t, "platform_id")}}}}})["api_key"].(string)

	if got := limitConnector(t, srv.baseURL, ivrKey, twilio); got != http.StatusOK {
		t.Fatalf("the IVR key from Twilio's address: %d", got)
	}
	if got := limitREST(t, srv.baseURL, admin, twilio); got != http.StatusOK {
		t.Fatalf("the admin key from Twilio's address: %d", got)
	}
	for i := range 50 {
		if got := limitConnector(t, srv.baseURL, fmt.Sprintf("sbx_apikey_%064d", i), twilio); got != http.StatusUnauthorized {
			t.Fatalf("connector guess %d: %d", i+1, got)
		}
	}
	for i := range 10 {
		if got := limitREST(t, srv.baseURL, "sbx_apikey_wrong", twilio); got != http.StatusUnauthorized {
			t.Fatalf("REST failure %d: %d", i+1, got)
		}
	}
	for i := range 3 {
		if got := limitREST(t, srv.baseURL, "sbx_apikey_typo", clumsy); got != http.StatusUnauthorized {
			t.Fatalf("clumsy failure %d: %d", i+1, got)
		}
	}
	srv.stop(t)

	t.Run("SIGTERM writes every failure to the audit trail", func(t *testing.T) {
		var out, errOut bytes.Buffer
		if code := run(context.Background(), []string{"admin", "--mode", "sandbox", "--db", inst.db, "--vault-key-file", inst.vaultKey,
			"--action", "auth.failure", "--limit", "1000", "--json", "audit"}, &out, &errOut); code != 0 {
			t.Fatalf("admin audit exited %d: %s", code, errOut.String())
		}
		counts := map[string]int{}
		failures := regexp.MustCompile(`failures=(\d+)`)
		for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
			var e ivrpay.AuditEvent
			if err := json.Unmarshal([]byte(line), &e); err != nil {
				t.Fatalf("audit line %q: %v", line, err)
			}
			n := 1
			if m := failures.FindStringSubmatch(e.Detail); m != nil {
				n, _ = strconv.Atoi(m[1])
			}
			counts[e.ClientAddress] += n
		}
		if counts[clumsy] != 3 || counts[twilio] != 60 || len(counts) != 2 {
			t.Fatalf("the audit trail counts %v, want %s: 3 and %s: 60", counts, clumsy, twilio)
		}
	})

	t.Run("after a restart the keys that worked from the blocked address still do", func(t *testing.T) {
		srv := start()
		if got := limitConnector(t, srv.baseURL, "sbx_apikey_another_guess", twilio); got != http.StatusTooManyRequests {
			t.Errorf("a guess: %d, want 429", got)
		}
		if got := limitConnector(t, srv.baseURL, unused, twilio); got != http.StatusTooManyRequests {
			t.Errorf("a valid key new to the address, on the connector: %d, want 429", got)
		}
		if got := limitREST(t, srv.baseURL, unused, twilio); got != http.StatusTooManyRequests {
			t.Errorf("a valid key new to the address, on the REST API: %d, want 429", got)
		}
		if got := limitConnector(t, srv.baseURL, ivrKey, twilio); got != http.StatusOK {
			t.Errorf("the IVR key: %d, want 200", got)
		}
		if got := limitREST(t, srv.baseURL, admin, twilio); got != http.StatusOK {
			t.Errorf("the admin key: %d, want 200", got)
		}
	})
}

// limitConnector posts a connector request with the password from address
// (as the proxy says) and returns the status.
func limitConnector(t *testing.T, baseURL, password, address string) int {
	t.Helper()
	req, _ := http.NewRequest("POST", baseURL+"/vendor/twilio/pay_generic", strings.NewReader(`{"method":"charge","transaction_id":"CA1"}`))
	req.SetBasicAuth("api_key", password)
	req.Header.Set("X-Forwarded-For", address)
	return limitStatus(t, req)
}

// limitREST sends GET /v1/merchants with the key from address and returns the status.
func limitREST(t *testing.T, baseURL, key, address string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", baseURL+"/v1/merchants", nil)
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("X-Forwarded-For", address)
	return limitStatus(t, req)
}

func limitStatus(t *testing.T, req *http.Request) int {
	t.Helper()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}
