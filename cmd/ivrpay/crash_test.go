package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"maps"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ivrpay/ivrpay"
	"github.com/ivrpay/ivrpay/loadtest"
	"github.com/ivrpay/ivrpay/payments/paymentstest"
	"github.com/ivrpay/ivrpay/sqlstore"
	"github.com/ivrpay/ivrpay/twilio"
)

// crashLease is the connector lease the crash test's servers run with
// (IVRPAY_CONNECTOR_LEASE), so that a retry takes over a killed server's
// attempt within seconds instead of 30.
const crashLease = 2 * time.Second

// TestCrashRecovery runs `ivrpay serve` as a real process on a fresh
// database, drives IVR charges against it with the loadtest's driver, and
// kills it with SIGKILL at random moments (now and then while it is still
// starting), restarting it each time on the same database and vault key.
// After every restart: each charge acknowledged with a charge_id is still a
// payin of its transaction_id, no config has two approved payins, no
// transaction_id has two payins, every charge that got no answer completes
// when Twilio would retry it, answered charges replay byte for byte, and a
// SQLite file passes PRAGMA integrity_check. IVRPAY_CRASH_SEED replays a run.
func TestCrashRecovery(t *testing.T) {
	t.Parallel()
	bin := buildIvrpay(t)
	for _, engine := range paymentstest.Engines(t) {
		t.Run(engine, func(t *testing.T) {
			crashRecovery(t, bin, engine)
		})
	}
}

func crashRecovery(t *testing.T, bin, engine string) {
	rounds := 20
	if testing.Short() {
		rounds = 4
	}
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("IVRPAY_CRASH_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	t.Logf("IVRPAY_CRASH_SEED=%d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))

	sv := crashServerConfig{installationOn(t, bin, paymentstest.DSN(t, engine))}
	srv := sv.start(t)
	defer func() { srv.kill() }()
	adminKey := srv.bootstrap(t, "admin api_key")
	ctx := context.Background()
	target, err := loadtest.Prepare(ctx, loadtest.NewHTTPClient(32), []string{srv.baseURL}, adminKey, 1000)
	if err != nil {
		t.Fatalf("prepare the load target: %v\n%s", err, srv.logTail())
	}

	var mu sync.Mutex
	var calls []loadtest.Call // every call that sent a charge
	acks := crashAcks{acked: map[string]string{}, requests: map[string][]byte{}, answers: map[string][]byte{}}
	ack := func(c loadtest.Call, answer []byte) {
		mu.Lock()
		defer mu.Unlock()
		acks.acked[c.Response.ID] = c.TransactionID
		acks.requests[c.TransactionID] = c.Request
		acks.answers[c.TransactionID] = answer
	}

	began := time.Now()
	for round := 1; round <= rounds; round++ {
		// Drive charges and kill the server at a random moment.
		var roundCalls []loadtest.Call
		driveCtx, stopDriving := context.WithCancel(ctx)
		done := driveCharges(driveCtx, target, 6, func(c loadtest.Call) {
			mu.Lock()
			defer mu.Unlock()
			roundCalls = append(roundCalls, c)
		})
		time.Sleep(time.Duration(100+rng.IntN(900)) * time.Millisecond)
		srv.kill()
		stopDriving()
		report := <-done
		if report.Mismatches > 0 {
			t.Errorf("round %d: %d replays differed: %s", round, report.Mismatches, strings.Join(report.MismatchSamples, "; "))
		}

		// Restart, now and then killing a start half-way first.
		if rng.IntN(4) == 0 {
			early := sv.spawn(t)
			time.Sleep(time.Duration(rng.IntN(150)) * time.Millisecond)
			early.kill()
		}
		srv = sv.start(t)
		target.BaseURLs = []string{srv.baseURL}

		var pending []loadtest.Call
		for _, c := range roundCalls {
			calls = append(calls, c)
			if c.Charged() {
				ack(c, c.Answer)
			} else if c.Retryable() {
				pending = append(pending, c)
			} else {
				t.Errorf("round %d: transaction %s answered %s: %s", round, c.TransactionID, c.Outcome, c.Answer)
			}
		}
		// Twilio retries every unanswered charge with its transaction_id:
		// each must complete (its first answer, or a resumed attempt).
		retryCtx, cancel := context.WithTimeout(ctx, crashLease+20*time.Second)
		var wg sync.WaitGroup
		for _, c := range pending {
			wg.Add(1)
			go func() {
				defer wg.Done()
				answer, err := target.RetryUntilAnswered(retryCtx, c.Request)
				if err != nil {
					t.Errorf("round %d: retry of %s: %v", round, c.TransactionID, err)
					return
				}
				var r twilio.ConnectorResponse
				if json.Unmarshal(answer, &r); r.ID == "" {
					t.Errorf("round %d: retry of unanswered %s did not complete the charge: %s", round, c.TransactionID, answer)
					return
				}
				c.Response = r
				ack(c, answer)
			}()
		}
		wg.Wait()
		cancel()

		charged := 0
		for _, c := range roundCalls {
			if c.Charged() {
				charged++
			}
		}
		t.Logf("round %d: %d charges sent, %d answered, %d retried after the restart (%.0fs)", round, len(roundCalls), charged, len(pending), time.Since(began).Seconds())
		mu.Lock()
		checkAfterRestart(t, ctx, round, target, engine, sv.db, rng, acks)
		mu.Unlock()
		if t.Failed() {
			t.Logf("server log tail:\n%s", srv.logTail())
			return
		}
	}
	srv.kill()
	if engine == sqlstore.EngineSQLite {
		checkIntegrity(t, sv.db)
	}
	t.Logf("%d rounds, %d charges sent, %d acknowledged, in %.0fs", rounds, len(calls), len(acks.acked), time.Since(began).Seconds())
}

// crashAcks are the charges acknowledged so far.
type crashAcks struct {
	acked    map[string]string // charge_id → transaction_id
	requests map[string][]byte // transaction_id → its connector request
	answers  map[string][]byte // transaction_id → its acknowledged answer
}

// checkAfterRestart checks the invariants that must hold after every restart.
func checkAfterRestart(t *testing.T, ctx context.Context, round int, target *loadtest.Target, engine, dsn string, rng *rand.Rand, acks crashAcks) {
	t.Helper()
	acked := acks.acked
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	audit, err := target.AuditIVRPayins(ctx, acked)
	if err != nil {
		t.Fatalf("round %d: audit: %v", round, err)
	}
	if !audit.OK() {
		t.Errorf("round %d: after the restart: %d configs with two approved payins, %d transaction_ids with two payins, %d acknowledged charges lost: %s",
			round, audit.DuplicateConfigs, audit.DuplicateTransactions, audit.MissingCharges, strings.Join(audit.Samples, "; "))
	}
	if audit.IVRPayins < len(acked) {
		t.Errorf("round %d: %d IVR payins for %d acknowledged charges", round, audit.IVRPayins, len(acked))
	}
	// Every acknowledged charge reads back by id, and a sample of them
	// replays its answer byte for byte across the restarts.
	ids := slices.Sorted(maps.Keys(acked))
	work := make(chan string)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range work {
				p, err := target.AdminClient().GetPayin(ctx, id)
				if err != nil {
					t.Errorf("round %d: acknowledged charge %s: GET /v1/payins: %v", round, id, err)
					continue
				}
				var tx string
				if p.IVR != nil {
					tx = p.IVR.TransactionID
				}
				if tx != acked[id] || p.Status == ivrpay.PayinStatusFailed || p.Status == ivrpay.PayinStatusCreated {
					t.Errorf("round %d: acknowledged charge %s is %s for transaction %s, want an approved payin of %s", round, id, p.Status, tx, acked[id])
				}
			}
		}()
	}
	for _, id := range ids {
		work <- id
	}
	close(work)
	wg.Wait()
	for range min(10, len(ids)) {
		tx := acked[ids[rng.IntN(len(ids))]]
		answer, err := target.RetryUntilAnswered(ctx, acks.requests[tx])
		if err != nil {
			t.Errorf("round %d: replay of %s: %v", round, tx, err)
		} else if !bytes.Equal(answer, acks.answers[tx]) {
			t.Errorf("round %d: replay of %s after the restart differs:\n%s\nfirst:\n%s", round, tx, answer, acks.answers[tx])
		}
	}
	if engine == sqlstore.EngineSQLite {
		checkIntegrity(t, dsn)
	}
}

// checkIntegrity runs PRAGMA integrity_check on a read-only connection.
func checkIntegrity(t *testing.T, path string) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro&_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var result string
	if err := db.QueryRow(`PRAGMA integrity_check`).Scan(&result); err != nil {
		t.Errorf("PRAGMA integrity_check: %v", err)
	} else if result != "ok" {
		t.Errorf("PRAGMA integrity_check: %s", result)
	}
}

// driveCharges runs the loadtest driver's charges, with retries and
// duplicates, against target from concurrency callers until ctx ends (for
// a minute at most), and hands record every call that sent a charge (from
// the callers' goroutines). The driver's report arrives on the channel.
func driveCharges(ctx context.Context, target *loadtest.Target, concurrency int, record func(loadtest.Call)) <-chan *loadtest.Report {
	done := make(chan *loadtest.Report, 1)
	go func() {
		done <- loadtest.Run(ctx, target, loadtest.Options{Concurrency: concurrency, Duration: time.Minute, MaxCalls: 100000,
			RetryFraction: 0.10, DuplicateFraction: 0.05, Timeout: 10 * time.Second,
			OnCall: func(c loadtest.Call) {
				if c.Request != nil {
					record(c)
				}
			}})
	}()
	return done
}

// crashServerConfig is how the crash test runs `ivrpay serve`: sandbox,
// with the short connector lease crashLease (a killed process's charges
// are taken over within seconds).
type crashServerConfig struct{ installation }

// crashServer is one `ivrpay serve` process of the crash test.
type crashServer = serveProcess

// spawn starts the process (with extra flags) without waiting for it to listen.
func (c crashServerConfig) spawn(t *testing.T, extra ...string) *crashServer {
	t.Helper()
	return c.installation.spawn(t, []string{connectorLeaseEnv + "=" + crashLease.String()}, append([]string{"--mode", "sandbox"}, extra...)...)
}

// start spawns the server and waits until it listens.
func (c crashServerConfig) start(t *testing.T, extra ...string) *crashServer {
	t.Helper()
	return awaitListening(t, c.spawn(t, extra...))
}
