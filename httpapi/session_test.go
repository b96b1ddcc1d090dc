package httpapi_test

// Sessions (SPEC §3): POST /v1/sessions makes a short-lived key that
// authenticates like an API key until expires_at.

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ivrpay/ivrpay"
	"github.com/ivrpay/ivrpay/payments/paymentstest"
)

// offsetClock is the wall clock moved forward by a settable offset, so that a
// session can be made to expire without waiting.
type offsetClock struct {
	mu  sync.Mutex
	off time.Duration
}

func (c *offsetClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().UTC().Add(c.off)
}

func (c *offsetClock) advance(d time.Duration) {
	c.mu.Lock()
	c.off += d
	c.mu.Unlock()
}

// createSession posts a session body with key and returns the answer.
func (b *bundle) createSession(key, body string) apiResp {
	b.t.Helper()
	return b.api("POST", "/v1/sessions", key, body)
}

// openEMRSessionBody is the body OpenEMR's Rainforest integration sends:
// group#payment_component with only a merchant constraint.
func openEMRSessionBody(ttl int, merchantID string) string {
	return fmt.Sprintf(`{"ttl":%d,"statements":[{"permissions":["group#payment_component"],"constraints":{"merchant":{"merchant_id":%q}}}]}`, ttl, merchantID)
}

func TestSessionAuthenticatesUntilExpiry(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		clock := &offsetClock{}
		b := setup(t, engine, func(o *paymentstest.Config) { o.Clock = clock })
		other, err := b.store.CreateMerchantAsOperator(t.Context(), b.platformID, merchantCreate("Merchant N"))
		if err != nil {
			t.Fatal(err)
		}
		cfgM := b.payinConfig(b.admin, b.merchantID, 1000, nil)
		cfgN := b.payinConfig(b.admin, other.ID, 1000, nil)

		r := b.createSession(b.admin, openEMRSessionBody(120, b.merchantID))
		wantStatus(t, r, 200)
		d := r.data(t)
		wantID(t, d["session_id"], "ses_")
		key, _ := d["session_key"].(string)
		if !strings.HasPrefix(key, "sbx_session_") || len(key) != len("sbx_session_")+64 {
			t.Fatalf("session_key %q, want sbx_session_ and 64 hex characters", key)
		}
		created, _ := time.Parse(time.RFC3339Nano, d["created_at"].(string))
		expires, _ := time.Parse(time.RFC3339Nano, d["expires_at"].(string))
		if got := expires.Sub(created); got != 120*time.Second {
			t.Errorf("expires_at - created_at = %v, want the ttl 120s", got)
		}
		// The statement that named only a merchant got the creating key's platform.
		if st := fmt.Sprint(d["statements"]); !strings.Contains(st, b.platformID) || !strings.Contains(st, b.merchantID) {
			t.Errorf("statements %s lack the platform or the merchant", st)
		}
		// Only a hash is stored.
		var hits int
		if err := b.store.DB().QueryRow(`SELECT COUNT(*) FROM sessions WHERE secret_hash = $1 OR statements LIKE $2`, key, "%"+key+"%").Scan(&hits); err != nil {
			t.Fatal(err)
		}
		if hits != 0 {
			t.Errorf("the session key is stored in clear")
		}

		for _, c := range []struct {
			name, method, path string
			status             int
		}{
			{"its merchant's payin config", "GET", "/v1/payin_configs/" + cfgM, 200},
			// A payer's browser learns nothing of what it may not read (SPEC §1.1).
			{"another merchant's payin config", "GET", "/v1/payin_configs/" + cfgN, 404},
			{"payins, listed", "GET", "/v1/payins", 200},
			{"merchants (not in the group)", "GET", "/v1/merchants", 403},
			{"API keys (not in the group)", "GET", "/v1/api_keys", 403},
		} {
			t.Run(c.name, func(t *testing.T) { wantStatus(t, b.on(t).api(c.method, c.path, key, nil), c.status) })
		}

		// Default ttl: one hour.
		d = b.createSession(b.admin, `{"statements":[{"permissions":["payin:read"],"constraints":{}}]}`).data(t)
		created, _ = time.Parse(time.RFC3339Nano, d["created_at"].(string))
		expires, _ = time.Parse(time.RFC3339Nano, d["expires_at"].(string))
		if got := expires.Sub(created); got != time.Hour {
			t.Errorf("default ttl %v, want 1h", got)
		}
		hourKey := d["session_key"].(string)

		// Past expires_at: 401, and the cleanup deletes the row; the
		// one-hour session still works.
		clock.advance(121 * time.Second)
		r = b.api("GET", "/v1/payin_configs/"+cfgM, key, nil)
		wantStatus(t, r, 401)
		if !strings.Contains(r.err().Message, "expired") {
			t.Errorf("401 message %q does not say the session expired", r.err().Message)
		}
		wantStatus(t, b.api("GET", "/v1/payins", hourKey, nil), 200)
		n, err := b.store.DeleteExpiredSessions(t.Context())
		if err != nil || n != 1 {
			t.Errorf("DeleteExpiredSessions: %d, %v; want the one expired session", n, err)
		}
		if c := b.count("sessions"); c != 1 {
			t.Errorf("%d sessions left, want 1", c)
		}
		wantStatus(t, b.api("GET", "/v1/payin_configs/"+cfgM, key, nil), 401)

		// Audit: the creation and the first use, with the session as actor.
		events, err := b.store.ListAudit(t.Context(), ivrpay.AuditFilter{Action: "session.", PlatformID: b.platformID, Limit: 50})
		if err != nil {
			t.Fatal(err)
		}
		var creates, uses int
		for _, e := range events {
			switch {
			case e.Action == "session.create" && e.Actor == b.adminID && e.Outcome == ivrpay.AuditSuccess:
				creates++
			case e.Action == "session.use" && strings.HasPrefix(e.Actor, "sbx_ses_") && e.Target == e.Actor:
				uses++
			}
		}
		if creates != 2 || uses != 2 {
			t.Errorf("audit: %d session.create and %d session.use records, want 2 and 2: %+v", creates, uses, events)
		}
	})
}

// TestSessionCannotEscalate: a session holds at most what its creating key
// holds, never creates keys or sessions, and ends with its key.
func TestSessionCannotEscalate(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		b := setup(t, engine)
		P, M := b.platformID, b.merchantID
		cfg := b.payinConfig(b.admin, M, 1000, nil)
		// A key that may create sessions and holds payin:create only.
		creator, creatorID := b.createKey(b.admin, statementsJSON(P, "", "session:create", "payin:create"))
		ivr := b.ivrKey("payin:create")
		cases := []struct {
			name, key, body string
			status          int
			field, message  string
		}{
			{"a key without session:create", ivr, openEMRSessionBody(60, M), 403, "", "missing permission session:create"},
			{"more than the creating key", creator, `{"statements":[{"permissions":["payin:read"],"constraints":{}}]}`, 403, "statements[0].permissions[0]", "cannot grant payin:read"},
			{"a group the creating key only partly holds", creator, openEMRSessionBody(60, M), 403, "statements[0].permissions[0]", "(in group#payment_component)"},
			{"another platform", b.admin, `{"statements":[{"permissions":["payin:read"],"constraints":{"platform":{"platform_id":"sbx_plt_000000000000000000000000000"}}}]}`, 403, "statements[0].permissions[0]", ""},
			{"ttl too short", b.admin, `{"ttl":59,"statements":[{"permissions":["payin:read"],"constraints":{}}]}`, 400, "ttl", ""},
			{"ttl too long", b.admin, `{"ttl":86401,"statements":[{"permissions":["payin:read"],"constraints":{}}]}`, 400, "ttl", ""},
			{"ttl not an integer", b.admin, `{"ttl":60.5,"statements":[{"permissions":["payin:read"],"constraints":{}}]}`, 400, "ttl", ""},
			{"no statements", b.admin, `{"ttl":60}`, 400, "statements", ""},
			{"unknown field", b.admin, `{"ttl":60,"statements":[{"permissions":["payin:read"],"constraints":{}}],"name":"x"}`, 400, "name", ""},
			{"an unknown payin config", b.admin, `{"statements":[{"permissions":["payin:create"],"constraints":{"payin_config":{"payin_config_id":"sbx_cfg_000000000000000000000000000"}}}]}`, 400, "statements[0].constraints.payin_config.payin_config_id", ""},
			{"narrowing to a config", creator, fmt.Sprintf(`{"statements":[{"permissions":["payin:create"],"constraints":{"payin_config":{"payin_config_id":%q}}}]}`, cfg), 200, "", ""},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				r := b.on(t).createSession(c.key, c.body)
				if r.Status != c.status || (c.status != 200 && r.err().Field != c.field) || !strings.Contains(r.err().Message, c.message) {
					t.Errorf("HTTP %d field %q %q, want %d field %q with %q\n%s", r.Status, r.err().Field, r.err().Message, c.status, c.field, c.message, r.Raw)
				}
			})
		}

		// Even a session with group#all cannot make keys or sessions, nor change keys.
		all := b.createSession(b.admin, `{"statements":[{"permissions":["group#all"],"constraints":{}}]}`).data(t)["session_key"].(string)
		wantStatus(t, b.api("GET", "/v1/merchants", all, nil), 200)
		for _, c := range []struct{ name, method, path, body string }{
			{"create a key", "POST", "/v1/api_keys", `{"statements":` + statementsJSON(P, "", "payin:read") + `}`},
			{"create a session", "POST", "/v1/sessions", openEMRSessionBody(60, M)},
			{"disable a key", "POST", "/v1/api_keys/" + creatorID + "/disable", ""},
			{"delete a key", "DELETE", "/v1/api_keys/" + creatorID, ""},
		} {
			t.Run("group#all session may not "+c.name, func(t *testing.T) {
				var body any
				if c.body != "" {
					body = c.body
				}
				r := b.on(t).api(c.method, c.path, all, body)
				if r.Status != 403 || !strings.Contains(r.err().Message, "a session key cannot") {
					t.Errorf("HTTP %d %q, want 403 saying a session key cannot", r.Status, r.err().Message)
				}
			})
		}

		// Disabling the creating key ends its sessions at once.
		narrow := b.createSession(creator, fmt.Sprintf(`{"statements":[{"permissions":["payin:create"],"constraints":{"payin_config":{"payin_config_id":%q}}}]}`, cfg)).data(t)["session_key"].(string)
		b.ivr(narrow, chargeBody(b.payinConfig(b.admin, M, 1000, nil))).wantErr(t, "charge", ivrpay.ConnForbidden, 200)
		wantStatus(t, b.api("POST", "/v1/api_keys/"+creatorID+"/disable", b.admin, nil), 200)
		b.ivr(narrow, chargeBody(cfg)).wantErr(t, "charge", ivrpay.ConnUnauthorized, 401)
		wantStatus(t, b.api("POST", "/v1/api_keys/"+creatorID+"/enable", b.admin, nil), 200)
		b.ivr(narrow, chargeBody(cfg)).wantOK(t, "charge")
	})
}

// TestSessionNarrowedToOnePayinConfig is the acceptance: a session
// key narrowed to one payin config, used as the Twilio connector's password,
// charges that config and nothing else.
func TestSessionNarrowedToOnePayinConfig(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		b := setup(t, engine)
		cfg := b.payinConfig(b.admin, b.merchantID, 1000, nil)
		otherCfg := b.payinConfig(b.admin, b.merchantID, 1000, nil)
		pmc := b.paymentMethodConfig(b.admin, b.platformID, b.merchantID, nil)
		r := b.createSession(b.admin, fmt.Sprintf(`{"ttl":600,"statements":[{"permissions":["payin:create","payin:read"],"constraints":{"payin_config":{"payin_config_id":%q}}}]}`, cfg))
		wantStatus(t, r, 200)
		key := r.data(t)["session_key"].(string)

		for _, c := range []struct {
			name   string
			method string
			body   map[string]any
		}{
			{"another payin config", "charge", chargeBody(otherCfg)},
			{"a payment method config", "tokenize", tokenizeBody(pmc)},
		} {
			t.Run(c.name, func(t *testing.T) {
				b.on(t).ivr(key, c.body).wantErr(t, c.method, ivrpay.ConnForbidden, 200)
			})
		}
		payinID := b.ivr(key, chargeBody(cfg)).wantOK(t, "charge")
		// It reads the payin it made, and no other REST object.
		wantStatus(t, b.api("GET", "/v1/payins/"+payinID, key, nil), 200)
		wantStatus(t, b.api("GET", "/v1/payin_configs/"+cfg, key, nil), 403)
		wantStatus(t, b.api("POST", "/v1/payin_configs", key, map[string]any{"merchant_id": b.merchantID,
			"idempotency_key": "k-" + randHex(6), "amount": 1000, "currency_code": "USD"}), 403)
		if n := b.count("payins"); n != 1 {
			t.Errorf("%d payins, want only the one of its config", n)
		}
		// The same config again: already used.
		b.ivr(key, chargeBody(cfg)).wantErr(t, "charge", ivrpay.ConnConfigAlreadyUsed, 200)
	})
}
