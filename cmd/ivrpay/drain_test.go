package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ivrpay/ivrpay"
	"github.com/ivrpay/ivrpay/processor/sandbox"
	"github.com/ivrpay/ivrpay/twilio"
)

// TestSIGTERMDrains runs the built binary, puts connector charges in flight
// at the processor (the sandbox's slow amount, cut at the 6 s processor
// timeout), and sends SIGTERM: /health answers 503 during --drain-delay, then
// new connections are refused, every charge in flight gets its connector
// answer (HTTP 200 with a stored outcome, not an internal error), and the
// process exits 0.
func TestSIGTERMDrains(t *testing.T) {
	srv := freshInstallation(t, binaryTest(t, "builds and runs the binary")).serve(t, nil, "--drain-delay", "1s")
	ws := &whServer{srv}
	admin, ivrKey, merchant := srv.sandboxKeys(t)

	const inFlight = 3
	type answer struct {
		status int
		body   []byte
		err    error
	}
	answers := make(chan answer, inFlight)
	for i := range inFlight {
		cfg := ws.api(t, "POST", "/v1/payin_configs", admin, map[string]any{"merchant_id": merchant,
			"idempotency_key": fmt.Sprintf("drain-%d", i), "amount": sandbox.SlowAmount, "currency_code": "USD"})
		body := chargeBody(cfg["payin_config_id"].(string), fmt.Sprintf("CA-drain-%d", i), twilio.FormatCents(sandbox.SlowAmount))
		go func() {
			req, _ := http.NewRequest("POST", srv.baseURL+"/vendor/twilio/pay_generic", bytes.NewReader(body))
			req.SetBasicAuth("api_key", ivrKey)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				answers <- answer{err: err}
				return
			}
			defer res.Body.Close()
			b, err := io.ReadAll(res.Body)
			answers <- answer{res.StatusCode, b, err}
		}()
	}
	// The charges are in flight once their payins are reserved (CREATED)
	// and the processor has been asked.
	ws.waitFor(t, "the charges to reach the processor", func() bool {
		list := ws.api(t, "GET", "/v1/payins?source=IVR", admin, nil)
		results, _ := list["results"].([]any)
		return len(results) == inFlight
	})

	srv.cmd.Process.Signal(syscall.SIGTERM)
	ws.waitFor(t, "/health to answer 503 while draining", func() bool {
		res, err := http.Get(srv.baseURL + "/health")
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == http.StatusServiceUnavailable
	})
	host := strings.TrimPrefix(srv.baseURL, "http://")
	ws.waitFor(t, "new connections to be refused", func() bool {
		c, err := net.DialTimeout("tcp", host, time.Second)
		if err != nil {
			return true
		}
		c.Close()
		return false
	})
	for range inFlight {
		a := <-answers
		if a.err != nil {
			t.Errorf("a charge in flight at SIGTERM got no answer: %v", a.err)
			continue
		}
		var res twilio.ConnectorResponse
		if a.status != http.StatusOK || json.Unmarshal(a.body, &res) != nil || res.ErrorCode == ivrpay.ConnInternal {
			t.Errorf("a charge in flight at SIGTERM was answered %d %s, want a stored connector answer", a.status, a.body)
		}
	}
	srv.awaitExit0(t)
}
