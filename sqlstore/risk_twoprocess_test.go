package sqlstore_test

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/ivrpay/ivrpay"
)

// TestRiskCountsAcrossTwoProcesses: declines of one card spread over two
// `ivrpay serve` processes on one PostgreSQL database add up, so rule 1
// refuses the card at the same attempt as one process would (the fourth),
// whichever process the attempt reaches; and the block is seen by both.
func TestRiskCountsAcrossTwoProcesses(t *testing.T) {
	forEngine(t, func(t *testing.T, engine string) {
		b, servers := twoServers(t, engine)

		charge := func(server int, pan string) connectorAnswer {
			t.Helper()
			cfg := b.payinConfig(t, 1000)
			var body map[string]any
			if err := json.Unmarshal(connectorBody(cfg.ID, fmt.Sprintf("CA-risk-%s", cfg.ID)), &body); err != nil {
				t.Fatal(err)
			}
			body["cardnumber"] = pan
			raw, _ := json.Marshal(body)
			answer := fire(t, 1, func(int) (string, []byte) { return servers[server], raw }, b.ivrKey.Secret)[0]
			var res connectorAnswer
			if err := json.Unmarshal(answer, &res); err != nil {
				t.Fatalf("%v: %s", err, answer)
			}
			return res
		}
		code := func(r connectorAnswer) string {
			if r.ErrorCode == nil {
				return "OK"
			}
			return *r.ErrorCode
		}
		const declined = "4000000000000002"
		for i, server := range []int{0, 1, 0} {
			if got := code(charge(server, declined)); got != ivrpay.RefusalDeclined {
				t.Fatalf("decline %d (server %d) answered %s, want DECLINED", i+1, server, got)
			}
		}
		for _, server := range []int{1, 0} {
			if got := code(charge(server, declined)); got != ivrpay.ConnRiskBlocked {
				t.Fatalf("the card's next attempt on server %d answered %s, want RISK_BLOCKED", server, got)
			}
		}
		if n := count(t, b.s.DB(), `SELECT COUNT(*) FROM payins WHERE refusal_code = $1`, ivrpay.RefusalDeclined); n != 3 {
			t.Fatalf("%d payins reached the processor's decline, want 3", n)
		}
		if got := code(charge(1, visaOK)); got != "OK" {
			t.Fatalf("a normal card answered %s", got)
		}
	})
}
