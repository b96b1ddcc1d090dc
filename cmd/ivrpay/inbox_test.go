package main

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ivrpay/ivrpay"
	"github.com/ivrpay/ivrpay/payments/paymentstest"
	"github.com/ivrpay/ivrpay/sqlstore"
)

// inboxEvents reads the processor events stored on db about objectID:
// their statuses, as `ivrpay admin events list` would show them.
func inboxEvents(t *testing.T, db, objectID string) []string {
	t.Helper()
	s, err := sqlstore.Open(context.Background(), db, sqlstore.Options{Mode: ivrpay.ModeSandbox})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rows, err := s.DB().Query(`SELECT status FROM processor_events WHERE reference = $1 ORDER BY event_id`, objectID)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var status string
		if err := rows.Scan(&status); err != nil {
			t.Fatal(err)
		}
		out = append(out, status)
	}
	return out
}

// countDeliveries counts the endpoint's deliveries of eventType about objectID.
func (s *whServer) countDeliveries(t *testing.T, admin, endpointID, eventType string) (n int, delivered bool) {
	t.Helper()
	delivered = true
	for _, d := range s.deliveries(t, admin, endpointID) {
		if d["event_type"] == eventType {
			n++
			delivered = delivered && d["status"] == "DELIVERED"
		}
	}
	return n, delivered
}

// TestProcessorEventSurvivesSIGKILL runs the built binary: the sandbox
// processor's confirmation of a payin is stored in the inbox by a server
// that holds it there unapplied (IVRPAY_TEST_HOLD_PROCESSOR_EVENTS: a
// SIGKILL between storing an event and applying it), the server is killed
// with SIGKILL, and a new server on the same database applies the event:
// the payin SUCCEEDED, with one payin.succeeded webhook.
func TestProcessorEventSurvivesSIGKILL(t *testing.T) {
	binaryTestOnEachEngine(t, "builds and runs the binary", func(t *testing.T, inst installation) {
		rcv := whNewReceiver(t)
		env := []string{webhookScheduleEnv + "=0s,1s,1s,1s,1s,1s,1s,1s,1s,1s", holdProcessorEventsEnv + "=1"}
		srv := &whServer{inst.serve(t, env, "--sandbox-settle-after", "200ms")}
		admin, ivrKey, merchant := srv.sandboxKeys(t)
		ep := srv.api(t, "POST", "/v1/webhook_endpoints", admin, map[string]any{"url": rcv.URL + "/hooks", "events": []string{"payin.succeeded"}})
		rcv.setSecret(ep["secret"].(string))
		cfg := srv.api(t, "POST", "/v1/payin_configs", admin, map[string]any{"merchant_id": merchant, "idempotency_key": "order-1",
			"amount": 1000, "currency_code": "USD"})
		payinID := srv.chargeIVR(t, ivrKey, cfg["payin_config_id"].(string))
		srv.waitFor(t, "the sandbox's confirmation stored in the inbox", func() bool {
			return fmt.Sprint(inboxEvents(t, inst.db, payinID)) == "[PENDING]"
		})
		if p := srv.api(t, "GET", "/v1/payins/"+payinID, admin, nil); p["status"] != ivrpay.PayinStatusProcessing {
			t.Fatalf("the held event was applied: payin %v", p["status"])
		}
		srv.kill()

		srv = whStart(t, inst)
		srv.waitFor(t, "the payin SUCCEEDED after the restart", func() bool {
			return srv.api(t, "GET", "/v1/payins/"+payinID, admin, nil)["status"] == ivrpay.PayinStatusSucceeded
		})
		srv.waitFor(t, "payin.succeeded delivered", func() bool {
			_, delivered := srv.countDeliveries(t, admin, ep["webhook_endpoint_id"].(string), "payin.succeeded")
			return delivered && len(rcv.ids()) == 1
		})
		if n, _ := srv.countDeliveries(t, admin, ep["webhook_endpoint_id"].(string), "payin.succeeded"); n != 1 {
			t.Fatalf("%d payin.succeeded deliveries, want 1", n)
		}
		if got := fmt.Sprint(inboxEvents(t, inst.db, payinID)); got != "[APPLIED]" {
			t.Fatalf("the inbox holds %s for the payin, want one APPLIED event", got)
		}
	})
}

// TestTwoProcessesApplyEachProcessorEventOnce runs two built binaries on
// one PostgreSQL database: both run the sandbox processor's confirmations
// and the inbox worker, so both receive the same confirmation of each payin
// at about the same moment; each is stored once and applied once, with one
// payin.succeeded webhook per payin.
func TestTwoProcessesApplyEachProcessorEventOnce(t *testing.T) {
	bin := binaryTest(t, "builds and runs the binary")
	inst := installationOn(t, bin, sharedPostgres(t))
	rcv := whNewReceiver(t)
	first := whStart(t, inst, "--sandbox-settle-after", "500ms")
	admin, ivrKey, merchant := first.sandboxKeys(t)
	servers := []*whServer{first, whStart(t, inst, "--sandbox-settle-after", "500ms")}
	ep := first.api(t, "POST", "/v1/webhook_endpoints", admin, map[string]any{"url": rcv.URL + "/hooks", "events": []string{"payin.succeeded"}})
	rcv.setSecret(ep["secret"].(string))
	endpointID := ep["webhook_endpoint_id"].(string)
	var payins []string
	for i := range 10 {
		srv := servers[i%2]
		cfg := srv.api(t, "POST", "/v1/payin_configs", admin, map[string]any{"merchant_id": merchant, "idempotency_key": fmt.Sprint("order-", i),
			"amount": 1000, "currency_code": "USD"})
		payins = append(payins, srv.chargeIVR(t, ivrKey, cfg["payin_config_id"].(string)))
	}
	first.waitFor(t, "every payin.succeeded delivered", func() bool {
		n, delivered := first.countDeliveries(t, admin, endpointID, "payin.succeeded")
		return n >= len(payins) && delivered
	})
	if n, _ := first.countDeliveries(t, admin, endpointID, "payin.succeeded"); n != len(payins) {
		t.Fatalf("%d payin.succeeded deliveries for %d payins", n, len(payins))
	}
	if got := len(rcv.ids()); got != len(payins) {
		t.Fatalf("the platform received %d distinct webhooks for %d payins", got, len(payins))
	}
	for _, id := range payins {
		if got := fmt.Sprint(inboxEvents(t, inst.db, id)); got != "[APPLIED]" {
			t.Errorf("payin %s: inbox %s, want one APPLIED event", id, got)
		}
	}
}

// TestServeRefusesBadCheckDelays: --processor-check-after below a second,
// or a negative --sandbox-settle-after, is refused in one line naming the
// flag, before anything is opened.
func TestServeRefusesBadCheckDelays(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ flag, value string }{
		{"--processor-check-after", "0s"},
		{"--processor-check-after", "500ms"},
		{"--sandbox-settle-after", "-1s"},
	} {
		t.Run(tc.flag+"="+tc.value, func(t *testing.T) {
			t.Parallel()
			db := filepath.Join(t.TempDir(), "ivrpay.db")
			var out, errOut bytes.Buffer
			code := run(context.Background(), []string{"serve", "--db", db, "--addr", "127.0.0.1:0", tc.flag, tc.value}, &out, &errOut)
			if code != 2 || !strings.Contains(errOut.String(), tc.flag) || strings.Count(strings.TrimSpace(errOut.String()), "\n") != 0 {
				t.Fatalf("exit %d, stderr %q; want 2 and one line naming %s", code, errOut.String(), tc.flag)
			}
			if _, err := os.Stat(db); err == nil {
				t.Fatal("a refused start created the database")
			}
		})
	}
}

// TestAdminFailedProcessorEvents: on both engines, `ivrpay admin events
// list --failed` lists the FAILED events alone, with their note, attempts
// and failures; --failed, --unmatched and --stale are refused together with
// an error naming those given; `events retry ACCOUNT EVENT_ID` puts a FAILED
// event back to PENDING and refuses one that is not FAILED or not there.
func TestAdminFailedProcessorEvents(t *testing.T) {
	paymentstest.ForEngine(t, func(t *testing.T, engine string) {
		d := newDeployment(t, string(ivrpay.ModeSandbox))
		d.db = paymentstest.DSN(t, engine)
		ctx := context.Background()
		s, err := sqlstore.Open(ctx, d.db, sqlstore.Options{Mode: ivrpay.ModeSandbox})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		const note = "applying failed: Store.ApplyPayinEventChange(\"evt_poison\", \"sbx_pyi_x\"): constraint failed"
		for _, done := range []ivrpay.ProcessorEventDone{
			{EventID: "evt_poison", Status: ivrpay.ProcessorEventFailed, Note: note},
			{EventID: "evt_stranger", Status: ivrpay.ProcessorEventUnmatched, Note: "no payin matches"},
		} {
			at := time.Now()
			e := ivrpay.ProcessorEvent{Account: "stripe-main", Kind: "stripe", ID: done.EventID, Type: "payment_intent.succeeded",
				Effect: ivrpay.EffectPaymentCaptured, PaymentReference: "pi_" + done.EventID}
			if _, err := s.InsertProcessorEvent(ctx, e, at, 0); err != nil {
				t.Fatal(err)
			}
			// Stored due at once (no hold): the claim is at.
			done.Account, done.Claim, done.At = e.Account, at, at
			if err := s.FinishProcessorEvent(ctx, done); err != nil {
				t.Fatal(err)
			}
		}
		list := func(args ...string) []any {
			t.Helper()
			code, v, stderr := d.admin(append([]string{"events", "list"}, args...)...)
			if code != 0 {
				t.Fatalf("events list %v: exit %d: %s", args, code, stderr)
			}
			rows, _ := v.([]any)
			return rows
		}
		rows := list("--failed")
		if len(rows) != 1 {
			t.Fatalf("events list --failed: %v; want the FAILED event", rows)
		}
		if row := rows[0].(map[string]any); row["event_id"] != "evt_poison" || row["status"] != ivrpay.ProcessorEventFailed || row["note"] != note ||
			row["attempts"] != 1.0 || row["failures"] != 1.0 || row["applied_at"] != nil {
			t.Fatalf("events list --failed: %v", row)
		}
		if rows := list("--unmatched"); len(rows) != 1 || rows[0].(map[string]any)["event_id"] != "evt_stranger" {
			t.Fatalf("events list --unmatched: %v; want the unmatched event alone", rows)
		}

		unappliedGauge(t, s, map[string]int{"PENDING": 0, "UNMATCHED": 1, "FAILED": 1})

		for _, flags := range [][]string{{"--failed", "--unmatched"}, {"--failed", "--stale"}, {"--unmatched", "--stale"},
			{"--unmatched", "--failed", "--stale"}} {
			t.Run(strings.Join(flags, " "), func(t *testing.T) {
				code, _, stderr := d.admin(append([]string{"events", "list"}, flags...)...)
				if code != 2 || !strings.Contains(stderr, "give one of them") {
					t.Fatalf("exit %d, stderr %q; want 2 and one of them asked for", code, stderr)
				}
				for _, f := range flags {
					if !strings.Contains(stderr, f) {
						t.Fatalf("stderr %q does not name %s", stderr, f)
					}
				}
			})
		}

		code, v, stderr := d.admin("events", "retry", "stripe-main", "evt_poison")
		if row, _ := v.(map[string]any); code != 0 || row["status"] != ivrpay.ProcessorEventPending || row["failures"] != 0.0 {
			t.Fatalf("events retry: exit %d, %v, %s; want the event PENDING with no failures", code, v, stderr)
		}
		if rows := list("--failed"); len(rows) != 0 {
			t.Fatalf("events list --failed after the retry: %v", rows)
		}
		unappliedGauge(t, s, map[string]int{"PENDING": 1, "UNMATCHED": 1, "FAILED": 0})
		for _, tc := range []struct{ name, account, id, want string }{
			{"a PENDING event", "stripe-main", "evt_poison", "is PENDING: only a FAILED event is retried"},
			{"an UNMATCHED event", "stripe-main", "evt_stranger", "is UNMATCHED: only a FAILED event is retried"},
			{"an unknown event", "stripe-main", "evt_nowhere", "not found"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				if code, _, stderr := d.admin("events", "retry", tc.account, tc.id); code != 1 || !strings.Contains(stderr, tc.want) {
					t.Fatalf("events retry %s: exit %d, stderr %q; want 1 and %q", tc.id, code, stderr, tc.want)
				}
			})
		}
	})
}

// unappliedGauge scrapes a fresh /metrics registry on s and checks the
// ivrpay_processor_events_unapplied series, zeros included.
func unappliedGauge(t *testing.T, s *sqlstore.Store, want map[string]int) {
	t.Helper()
	_, handler := newMetrics(s)
	rec := httptest.NewRecorder()
	handler.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	got := map[string]int{}
	for _, line := range strings.Split(rec.Body.String(), "\n") {
		var status string
		var n int
		if _, err := fmt.Sscanf(strings.ReplaceAll(line, `"`, " "), "ivrpay_processor_events_unapplied{status= %s } %d", &status, &n); err == nil {
			got[status] = n
		}
	}
	if !maps.Equal(got, want) {
		t.Fatalf("ivrpay_processor_events_unapplied: %v, want %v", got, want)
	}
}
