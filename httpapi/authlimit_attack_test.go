package httpapi_test

// Attacks on the authentication limits (SPEC §9, issue 23): other people's
// failures never lock out a valid credential, a forged X-Forwarded-For is
// never an address, IPv6 is counted per /64, the rows failures write are
// bounded in total, and every failure reaches the audit trail within a
// minute and at shutdown.

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ivrpay/ivrpay"
	"github.com/ivrpay/ivrpay/httpapi"
	"github.com/ivrpay/ivrpay/payments/paymentstest"
	"github.com/ivrpay/ivrpay/sqlstore"
)

// limiterSecret is what every "process" of these tests shares.
var limiterSecret = []byte("the secret every process of this deployment shares")

// sharedLimitServer is one server process on store: a real HTTP server
// whose limiter counts in the database and audits to it.
func sharedLimitServer(t *testing.T, store *sqlstore.Store, behindProxy bool, configure func(*httpapi.AuthLimiter)) (string, *httpapi.Server) {
	t.Helper()
	limiter := httpapi.NewSharedAuthLimiter(store, limiterSecret)
	limiter.Audit = store
	if configure != nil {
		configure(limiter)
	}
	srv := &httpapi.Server{Logger: slog.New(slog.DiscardHandler), Limiter: limiter, BehindProxy: behindProxy,
		Services: httpapi.NewServices(store, paymentstest.Options(t).Payments(store))}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	return ts.URL, srv
}

// restStatus sends GET /v1/merchants with the Bearer key and the
// X-Forwarded-For lines given, and returns the status.
func restStatus(t *testing.T, url, key string, forwardedFor ...string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", url+"/v1/merchants", nil)
	req.Header.Set("Authorization", "Bearer "+key)
	for _, line := range forwardedFor {
		req.Header.Add("X-Forwarded-For", line)
	}
	resp, _ := do(t, req)
	return resp.StatusCode
}

func countRows(t *testing.T, store *sqlstore.Store, table string) int {
	t.Helper()
	var n int
	if err := store.DB().QueryRow(`SELECT COUNT(*) FROM ` + table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// authFailureRows flushes the limiter's audit and returns the auth.failure
// rows and the failures they count.
func authFailureRows(t *testing.T, srv *httpapi.Server, store *sqlstore.Store) ([]ivrpay.AuditEvent, int) {
	t.Helper()
	ctx := context.Background()
	if err := srv.Limiter.FlushAudit(ctx); err != nil {
		t.Fatal(err)
	}
	events, err := store.ListAudit(ctx, ivrpay.AuditFilter{Action: "auth.failure", Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return events, countedFailures(t, events)
}

var failuresInDetail = regexp.MustCompile(`failures=(\d+)`)

func countedFailures(t *testing.T, events []ivrpay.AuditEvent) int {
	t.Helper()
	total := 0
	for _, e := range events {
		m := failuresInDetail.FindStringSubmatch(e.Detail)
		if m == nil {
			t.Fatalf("auth.failure row without a count: %+v", e)
		}
		n, _ := strconv.Atoi(m[1])
		total += n
	}
	return total
}

// TestKnownGoodCredentialsPassABlockedAddressOnEveryProcess: a connector key
// and a REST key that worked from an address keep working after others'
// failures blocked it, on a restarted process and on another process (each a
// limiter with nothing in memory, on one database), while a valid key that
// never worked from there is refused unchecked.
func TestKnownGoodCredentialsPassABlockedAddressOnEveryProcess(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		ctx := context.Background()
		store := paymentstest.Open(t, engine, paymentstest.Options(t))
		platform, admin, err := store.CreatePlatform(ctx, "Known good", true)
		if err != nil {
			t.Fatal(err)
		}
		unused, err := store.CreateAPIKey(ivrpay.NewContextWithPrincipal(ctx, admin), ivrKeyStatements(platform.ID))
		if err != nil {
			t.Fatal(err)
		}
		ivrKey, err := store.CreateAPIKey(ivrpay.NewContextWithPrincipal(ctx, admin), ivrKeyStatements(platform.ID))
		if err != nil {
			t.Fatal(err)
		}
		const twilio = "54.172.60.1"

		before, _ := sharedLimitServer(t, store, true, nil)
		if got := connectorPost(t, before, basic(ivrKey.Secret), twilio); got != http.StatusOK {
			t.Fatalf("the IVR key before the attack: %d", got)
		}
		if got := restStatus(t, before, admin.Secret, twilio); got != http.StatusOK {
			t.Fatalf("the admin key before the attack: %d", got)
		}

		// The process restarts; the attacker shares the address.
		restarted, _ := sharedLimitServer(t, store, true, nil)
		for i := range httpapi.ConnectorAddressFailureLimit {
			if got := connectorPost(t, restarted, basic(fmt.Sprintf("sbx_apikey_%064d", i)), twilio); got != http.StatusUnauthorized {
				t.Fatalf("connector guess %d: %d", i+1, got)
			}
		}
		for i := range httpapi.AuthFailureLimit {
			if got := restStatus(t, restarted, "sbx_apikey_wrong", twilio); got != http.StatusUnauthorized {
				t.Fatalf("REST failure %d: %d", i+1, got)
			}
		}
		other, otherSrv := sharedLimitServer(t, store, true, nil)
		if err := otherSrv.Limiter.Refresh(ctx); err != nil { // Run does this every second
			t.Fatal(err)
		}
		for name, url := range map[string]string{"the restarted process": restarted, "another process": other} {
			t.Run(name, func(t *testing.T) {
				if got := connectorPost(t, url, basic("sbx_apikey_another_guess"), twilio); got != http.StatusTooManyRequests {
					t.Errorf("a guess from the blocked address: %d, want 429", got)
				}
				if got := connectorPost(t, url, basic(unused.Secret), twilio); got != http.StatusTooManyRequests {
					t.Errorf("a valid key new to the blocked address, on the connector: %d, want 429", got)
				}
				if got := restStatus(t, url, unused.Secret, twilio); got != http.StatusTooManyRequests {
					t.Errorf("a valid key new to the blocked address, on the REST API: %d, want 429", got)
				}
				if got := connectorPost(t, url, basic(ivrKey.Secret), twilio); got != http.StatusOK {
					t.Errorf("the IVR key that worked from the address: %d, want 200", got)
				}
				if got := restStatus(t, url, admin.Secret, twilio); got != http.StatusOK {
					t.Errorf("the admin key that worked from the address: %d, want 200", got)
				}
			})
		}
		// One shared row per credential and address, written once: the
		// successes on the other processes found it and wrote nothing.
		if n := countRows(t, store, "auth_known_good"); n != 2 {
			t.Errorf("%d known-good rows, want 2 (one per credential and address)", n)
		}
	})
}

// ivrKeyStatements are the guide's IVR key statements.
func ivrKeyStatements(platformID string) []ivrpay.Statement {
	return []ivrpay.Statement{{Permissions: []string{"payin:create"},
		Constraints: ivrpay.Constraints{Platform: &ivrpay.PlatformConstraint{PlatformID: platformID}}}}
}

// TestForwardedForIsAnAddressOnlyWhenItParses: behind a proxy, the address
// is the last hop of the last X-Forwarded-For line when it parses as an IP,
// else the peer's; no header text is ever stored as an address.
func TestForwardedForIsAnAddressOnlyWhenItParses(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		lines []string
		want  string
	}{
		{"12 KB of text", []string{strings.Repeat("A", 12<<10)}, "127.0.0.1"},
		{"a word", []string{"attacker"}, "127.0.0.1"},
		{"text as the last hop", []string{"203.0.113.9, <script>alert(1)</script>"}, "127.0.0.1"},
		{"an empty last hop", []string{"203.0.113.9,"}, "127.0.0.1"},
		{"the last hop", []string{"198.51.100.1, 203.0.113.9"}, "203.0.113.9"},
		{"the proxy's own line after the client's", []string{"198.51.100.1", "203.0.113.10"}, "203.0.113.10"},
		{"an address with a port", []string{"203.0.113.11:4711"}, "203.0.113.11"},
		{"an IPv4-mapped IPv6 address", []string{"::ffff:203.0.113.12"}, "203.0.113.12"},
		{"an IPv6 address with a port", []string{"[2001:db8:7:8::1]:443"}, "2001:db8:7:8::/64"},
		{"an IPv6 address with a zone", []string{"fe80::1%eth0"}, "fe80::/64"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			store := paymentstest.Open(t, sqlstore.EngineSQLite, paymentstest.Options(t))
			url, srv := sharedLimitServer(t, store, true, nil)
			if got := restStatus(t, url, "sbx_apikey_wrong", tc.lines...); got != http.StatusUnauthorized {
				t.Fatalf("status %d, want 401", got)
			}
			events, _ := authFailureRows(t, srv, store)
			if len(events) != 1 || events[0].ClientAddress != tc.want {
				t.Fatalf("%d audit rows, the newest from %.80q, want one from %s", len(events), events[0].ClientAddress, tc.want)
			}
			var key string
			if err := store.DB().QueryRow(`SELECT limit_key FROM auth_limits`).Scan(&key); err != nil || key != tc.want {
				t.Fatalf("limiter row %.80q (%v), want %q", key, err, tc.want)
			}
		})
	}
}

// TestForgedForwardedForFloodWritesBoundedRows: 600 failures from one peer,
// each with another forged X-Forwarded-For text, are one address's
// failures: the limiter blocks it and writes one address's rows, and the
// audit trail one row.
func TestForgedForwardedForFloodWritesBoundedRows(t *testing.T) {
	t.Parallel()
	store := paymentstest.Open(t, sqlstore.EngineSQLite, paymentstest.Options(t))
	url, srv := sharedLimitServer(t, store, true, nil)
	statuses := map[int]int{}
	for i := range 600 {
		statuses[connectorPost(t, url, basic(fmt.Sprintf("sbx_apikey_%064d", i)), fmt.Sprintf("forged-%d-%s", i, strings.Repeat("x", 200)))]++
	}
	if statuses[http.StatusUnauthorized] != httpapi.ConnectorAddressFailureLimit || statuses[http.StatusTooManyRequests] != 600-httpapi.ConnectorAddressFailureLimit {
		t.Fatalf("statuses %v, want %d 401s and the rest 429", statuses, httpapi.ConnectorAddressFailureLimit)
	}
	// One row per guessed credential and one for the address.
	if n := countRows(t, store, "auth_limits"); n > httpapi.ConnectorAddressFailureLimit+1 {
		t.Errorf("%d limiter rows for one address's %d failures", n, httpapi.ConnectorAddressFailureLimit)
	}
	events, total := authFailureRows(t, srv, store)
	if len(events) != 1 || total != httpapi.ConnectorAddressFailureLimit || events[0].ClientAddress != "127.0.0.1" {
		t.Errorf("%d audit rows counting %d failures (%+v), want one counting %d from 127.0.0.1", len(events), total, events, httpapi.ConnectorAddressFailureLimit)
	}
}

// TestAuthFailureRowsAreBoundedInTotal: failures from 600 addresses write at
// most MaxSharedRows limiter rows and MaxAuditRows audit rows (which still
// count every failure), not rows per address.
func TestAuthFailureRowsAreBoundedInTotal(t *testing.T) {
	t.Parallel()
	store := paymentstest.Open(t, sqlstore.EngineSQLite, paymentstest.Options(t))
	const maxShared, maxAudit = 100, 10
	url, srv := sharedLimitServer(t, store, true, func(l *httpapi.AuthLimiter) {
		l.MaxSharedRows, l.MaxAuditRows = maxShared, maxAudit
	})
	for i := range 600 {
		if got := restStatus(t, url, "sbx_apikey_wrong", fmt.Sprintf("10.0.%d.%d", i/250, i%250+1)); got != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d", i+1, got)
		}
	}
	if n := countRows(t, store, "auth_limits"); n > maxShared {
		t.Errorf("%d limiter rows, want at most %d", n, maxShared)
	}
	events, total := authFailureRows(t, srv, store)
	if len(events) > maxAudit || total != 600 {
		t.Errorf("%d audit rows counting %d failures, want at most %d counting 600", len(events), total, maxAudit)
	}
	if !strings.Contains(events[0].Detail, "addresses=others") || events[0].ClientAddress != "" {
		t.Errorf("the last row %+v is not the other addresses' row", events[0])
	}
}

// TestIPv6IsLimitedPer64: failures from ten addresses of one /64 block the
// whole /64 (a host picks any address in it), and no other network.
func TestIPv6IsLimitedPer64(t *testing.T) {
	t.Parallel()
	store := paymentstest.Open(t, sqlstore.EngineSQLite, paymentstest.Options(t))
	_, admin, err := store.CreatePlatform(context.Background(), "IPv6", true)
	if err != nil {
		t.Fatal(err)
	}
	url, srv := sharedLimitServer(t, store, true, nil)
	for i := range httpapi.AuthFailureLimit {
		if got := restStatus(t, url, "sbx_apikey_wrong", fmt.Sprintf("2001:db8:1:2::%x", i+1)); got != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d", i+1, got)
		}
	}
	if got := restStatus(t, url, admin.Secret, "2001:db8:1:2:ffff:ffff:ffff:ffff"); got != http.StatusTooManyRequests {
		t.Errorf("another address of the /64: %d, want 429", got)
	}
	if got := restStatus(t, url, admin.Secret, "2001:db8:1:3::1"); got != http.StatusOK {
		t.Errorf("an address of the next /64: %d, want 200", got)
	}
	events, total := authFailureRows(t, srv, store)
	if len(events) != 1 || total != httpapi.AuthFailureLimit || events[0].ClientAddress != "2001:db8:1:2::/64" {
		t.Errorf("audit rows %+v, want one for 2001:db8:1:2::/64 counting %d", events, httpapi.AuthFailureLimit)
	}
}

// TestEveryAuthFailureReachesTheAuditTrail: failures below the block
// threshold, with no later failure, are written by the limiter's Run within
// its interval, and the ones after its last pass when it stops.
func TestEveryAuthFailureReachesTheAuditTrail(t *testing.T) {
	t.Parallel()
	store := paymentstest.Open(t, sqlstore.EngineSQLite, paymentstest.Options(t))
	url, srv := sharedLimitServer(t, store, false, nil)
	run := func(interval time.Duration) (stop func()) {
		srv.Limiter.AuditInterval = interval
		ctx, cancel := context.WithCancel(context.Background())
		stopped := make(chan struct{})
		go func() {
			defer close(stopped)
			srv.Limiter.Run(ctx, slog.New(slog.DiscardHandler))
		}()
		return func() { cancel(); <-stopped }
	}
	counted := func() int {
		events, err := store.ListAudit(context.Background(), ivrpay.AuditFilter{Action: "auth.failure", Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		return countedFailures(t, events)
	}

	stop := run(50 * time.Millisecond)
	for range 3 {
		restStatus(t, url, "sbx_apikey_wrong")
	}
	for deadline := time.Now().Add(20 * time.Second); counted() != 3; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			stop()
			t.Fatalf("the audit trail counts %d of 3 failures", counted())
		}
	}
	stop()

	// At shutdown: with an interval that never comes, only the last pass writes.
	stop = run(time.Hour)
	for range 2 {
		restStatus(t, url, "sbx_apikey_wrong")
	}
	if got := counted(); got != 3 {
		t.Fatalf("before Run stopped the audit trail counts %d failures, want the first 3", got)
	}
	stop()
	if got := counted(); got != 5 {
		t.Fatalf("after Run stopped the audit trail counts %d of 5 failures", got)
	}
}
