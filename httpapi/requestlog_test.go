package httpapi_test

import (
	"bufio"
	"encoding/json"
	"strings"
	"testing"
)

// TestRequestLogLine: every request logs one line with the fields
// docs/operations.md promises operators: request_id (the answer's
// X-Request-Id), method, route (the pattern, not the path), status,
// latency, the key and platform once authenticated, and the connector's
// outcome; and nothing of the body.
func TestRequestLogLine(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		b := setup(t, engine)
		cfgID := b.payinConfig(b.admin, b.merchantID, 1000, nil)
		res := b.ivr(b.ivrKey("payin:create"), chargeBody(cfgID))
		if res.Status != 200 || string(res.Vals["error_code"]) != "null" {
			t.Fatalf("charge answered %d %s", res.Status, res.Raw)
		}
		unauthorized := b.api("GET", "/v1/merchants", "", nil)

		lines := map[string][]map[string]any{} // route → its request lines
		sc := bufio.NewScanner(strings.NewReader(b.log.String()))
		for sc.Scan() {
			var line map[string]any
			if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
				t.Fatalf("log line %q is not JSON: %v", sc.Text(), err)
			}
			if line["msg"] == "request" {
				lines[line["route"].(string)] = append(lines[line["route"].(string)], line)
			}
		}
		for _, want := range []struct {
			route, method string
			status        float64
			outcome       string
			authenticated bool
			requestID     string // "" when the server made it up
		}{
			{"POST /v1/payin_configs", "POST", 200, "", true, ""},
			{"POST /vendor/twilio/pay_generic", "POST", 200, "OK", true, ""},
			{"GET /v1/merchants", "GET", 401, "", false, unauthorized.Header.Get("X-Request-Id")},
		} {
			t.Run(want.route, func(t *testing.T) {
				got := lines[want.route]
				if len(got) != 1 {
					t.Fatalf("%d request lines for %s, want 1:\n%s", len(got), want.route, b.log.String())
				}
				line := got[0]
				if line["method"] != want.method || line["status"] != want.status || line["level"] != "INFO" {
					t.Errorf("line %v: want method %s, status %v, level INFO", line, want.method, want.status)
				}
				if id, _ := line["request_id"].(string); id == "" || (want.requestID != "" && id != want.requestID) {
					t.Errorf("request_id %q, want the answer's X-Request-Id %q", id, want.requestID)
				}
				if _, ok := line["latency"].(float64); !ok {
					t.Errorf("line %v has no latency", line)
				}
				if (line["key_id"] != nil) != want.authenticated || (line["platform_id"] == b.platformID) != want.authenticated {
					t.Errorf("line %v: key_id and platform_id %s only once authenticated (%v)", line, b.platformID, want.authenticated)
				}
				if want.outcome != "" && line["outcome"] != want.outcome {
					t.Errorf("outcome %v, want %s", line["outcome"], want.outcome)
				}
			})
		}
		if strings.Contains(b.log.String(), "4111111111111111") {
			t.Errorf("the log holds a request body:\n%s", b.log.String())
		}
	})
}
