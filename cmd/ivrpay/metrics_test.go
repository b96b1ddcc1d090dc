package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ivrpay/ivrpay/payments/paymentstest"
)

// startProductionServe runs `ivrpay serve --mode production` in this process
// on a fresh database with extra flags, waits until it listens and returns
// its main address; the server stops at cleanup.
func startProductionServe(t *testing.T, extra ...string) string {
	t.Helper()
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "prod.key")
	paymentstest.WriteVaultKey(t, keyFile)
	withProcessorAccount(t, filepath.Join(dir, "prod.db"), keyFile)
	ctx, cancel := context.WithCancel(context.Background())
	var stderr paymentstest.LockedBuffer
	done := make(chan int, 1)
	args := append([]string{"--mode", "production", "--addr", "127.0.0.1:0", "--base-url", "https://pay.example.com", "--behind-proxy",
		"--vault-key-file", keyFile, "--db", filepath.Join(dir, "prod.db")}, extra...)
	go func() { done <- runServe(ctx, args, io.Discard, &stderr) }()
	t.Cleanup(func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("production serve exited %d: %s", code, stderr.String())
		}
	})
	listening := regexp.MustCompile(`"msg":"listening","addr":"([^"]+)"`)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if m := listening.FindStringSubmatch(stderr.String()); m != nil {
			return m[1]
		}
		select {
		case code := <-done:
			done <- code
			t.Fatalf("production serve exited %d before listening: %s", code, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("production serve did not listen: %s", stderr.String())
		}
	}
}

func getStatus(t *testing.T, url string) (int, string) {
	t.Helper()
	var resp *http.Response
	var err error
	// The metrics listener starts beside the main one; give it a moment.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if resp, err = http.Get(url); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func TestProductionServesMetricsOnlyOnMetricsAddr(t *testing.T) {
	t.Parallel()
	t.Run("no --metrics-addr", func(t *testing.T) {
		t.Parallel()
		addr := startProductionServe(t)
		if code, body := getStatus(t, "http://"+addr+"/metrics"); code != http.StatusNotFound || strings.Contains(body, "ivrpay_") {
			t.Fatalf("GET /metrics on the main listener: %d %.200s", code, body)
		}
		if code, _ := getStatus(t, "http://"+addr+"/health"); code != http.StatusOK {
			t.Fatalf("the main listener does not answer /health: %d", code)
		}
	})
	t.Run("--metrics-addr", func(t *testing.T) {
		t.Parallel()
		metrics := freeAddr(t)
		addr := startProductionServe(t, "--metrics-addr", metrics)
		if code, _ := getStatus(t, "http://"+addr+"/metrics"); code != http.StatusNotFound {
			t.Fatalf("GET /metrics on the main listener: %d, want 404", code)
		}
		code, body := getStatus(t, "http://"+metrics+"/metrics")
		if code != http.StatusOK || !strings.Contains(body, "go_goroutines") {
			t.Fatalf("GET /metrics on --metrics-addr: %d %.200s", code, body)
		}
	})
}

// TestPayinGaugeIsCheap checks that scrapes do not each read the database:
// the recent-payin count is read at most once a minute, over the last 24 hours.
func TestPayinGaugeIsCheap(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	var calls []time.Time
	c := newPayinCollector(func(_ context.Context, since time.Time) (map[string]int, error) {
		calls = append(calls, since)
		return map[string]int{"SUCCEEDED": 3}, nil
	}, func() time.Time { return now })
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	scrape := func() int {
		t.Helper()
		families, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, f := range families {
			if f.GetName() == "ivrpay_payins_recent" {
				n += len(f.GetMetric())
			}
		}
		return n
	}
	for i := 0; i < 5; i++ {
		if n := scrape(); n != 1 {
			t.Fatalf("scrape %d: %d series, want 1", i, n)
		}
		now = now.Add(10 * time.Second)
	}
	if len(calls) != 1 || !calls[0].Equal(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC).Add(-24*time.Hour)) {
		t.Fatalf("5 scrapes within a minute read the database %d times (since %v), want once over 24 h", len(calls), calls)
	}
	now = now.Add(time.Minute)
	scrape()
	if len(calls) != 2 {
		t.Fatalf("a scrape after a minute did not refresh: %d reads", len(calls))
	}
}
