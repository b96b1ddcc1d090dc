package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/ivrpay/ivrpay/loadtest"
)

// TestLoadtestCommand drives a sandbox with both loops for a second each and
// checks the report: charges made, replays identical, no duplicate payin,
// exit 0, and a progress line on stderr.
func TestLoadtestCommand(t *testing.T) {
	t.Parallel()
	srv := serveInProcess(t)
	base, admin := srv.baseURL, srv.bootstrap(t, "admin api_key")
	for _, loop := range [][]string{{"--concurrency", "4"}, {"--rate", "40"}} {
		t.Run(loop[0], func(t *testing.T) {
			args := append([]string{"loadtest", "--base-url", base, "--api-key", admin, "--duration", "1s", "--json",
				"--retry-fraction", "0.5", "--duplicate-fraction", "0.2"}, loop...)
			code, stdout, stderr := runCLI(run, args...)
			if code != 0 {
				t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
			}
			var r loadtest.Report
			if err := json.Unmarshal([]byte(stdout), &r); err != nil {
				t.Fatalf("report is not JSON: %v\n%s", err, stdout)
			}
			if r.Charged == 0 || r.Charged != r.Calls || r.Latency.N != r.Calls || r.Latency.P99 <= 0 || r.ChargesPerS <= 0 {
				t.Errorf("report = %+v, want every call charged with its latency", r)
			}
			if r.Retries == 0 || r.Concurrent == 0 || r.Mismatches != 0 {
				t.Errorf("retries %d, concurrent duplicates %d, mismatches %d: want replays, all identical", r.Retries, r.Concurrent, r.Mismatches)
			}
			if r.Audit == nil || !r.Audit.OK() || r.Audit.IVRPayins < r.Charged {
				t.Errorf("audit = %+v", r.Audit)
			}
			if !strings.Contains(stderr, "\r") || !strings.Contains(stderr, "charges/s") {
				t.Errorf("no progress line on stderr: %q", stderr)
			}
		})
	}
}

func TestLoadtestUsage(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"--api-key", "k"},
		{"--base-url", "http://127.0.0.1:1"},
		{"--base-url", "ftp://127.0.0.1:1", "--api-key", "k"},
		{"--base-url", "http://127.0.0.1:1", "--api-key", "k", "--rate", "5", "--concurrency", "2"},
		{"--base-url", "http://127.0.0.1:1", "--api-key", "k", "--retry-fraction", "2"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			if code, _, stderr := runCLI(run, append([]string{"loadtest"}, args...)...); code != 2 || !strings.Contains(stderr, "ivrpay loadtest:") {
				t.Errorf("loadtest %v: exit %d, stderr %q; want 2 with a reason", args, code, stderr)
			}
		})
	}
}

// TestLoadtestCardTesting plays the card-testing attack against a sandbox
// (SQLite) beside normal traffic: the attack is stopped within the default
// thresholds, after which none of its attempts reaches the processor, and no
// normal charge is refused. (Throughput is measured in docs/benchmarks.md,
// not asserted here.)
func TestLoadtestCardTesting(t *testing.T) {
	t.Parallel()
	srv := serveInProcess(t)
	base, admin := srv.baseURL, srv.bootstrap(t, "admin api_key")
	code, stdout, stderr := runCLI(run, "loadtest", "--base-url", base, "--api-key", admin, "--duration", "3s", "--rate", "30",
		"--card-testing", "--attack-interval", "20ms", "--json")
	var r loadtest.CardTestingReport
	if err := json.Unmarshal([]byte(stdout), &r); err != nil {
		t.Fatalf("exit %d, report is not JSON: %v\n%s\n%s", code, err, stdout, stderr)
	}
	a := r.Attack
	if code != 0 || !r.OK() {
		t.Fatalf("exit %d, report %s", code, stdout)
	}
	if a.Declined == 0 || a.Refused["RISK_BLOCKED"] == 0 || a.StoppedAtAttempt >= a.Attempts {
		t.Fatalf("the attack was not stopped: %+v", a)
	}
	if a.MaxDeclinesPerCard > 3 || a.MaxCardsPerCaller > 3 || a.MaxDeclinesPerConfig > 5 {
		t.Fatalf("the attack got past the thresholds: %+v", a)
	}
	if r.NormalRefused != 0 || r.Mixed.Charged == 0 || r.Mixed.Charged != r.Mixed.Calls {
		t.Fatalf("normal traffic during the attack: %d refused, %d of %d charged", r.NormalRefused, r.Mixed.Charged, r.Mixed.Calls)
	}
}
