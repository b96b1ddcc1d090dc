package main

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"testing"
)

// TestDemo runs `ivrpay demo` as the README's first command does and checks
// that it tells the whole story: a PROCESSING payin made over IVR, a decline
// and a stored card, then settlement to SUCCEEDED, a refund, a chargeback
// opened and lost, and the signed webhooks verified from their svix-*
// headers, without printing a full card number.
func TestDemo(t *testing.T) {
	t.Parallel()
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"demo"}, &out, &errOut); code != 0 {
		t.Fatalf("ivrpay demo exited %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errOut.String())
	}
	for _, want := range []string{`"status": "PROCESSING"`, `"source": "IVR"`, `"ConnectorError": "DECLINED"`, `"PaymentToken": "sbx_mtd_`, `<Parameter name="payin_config_id"`,
		// The agent-assisted payment through the emulator, and the payin it made.
		"statusCallback: Capture=payment-card-number PartialResult=false PaymentCardNumber=xxxxxxxxxxxx1111",
		"SecurityCode=*** Required=postal-code", "final statusCallback", `"amount": 2500`,
		// The money flow: settlement, a refund, verified webhooks.
		"status SUCCEEDED, captured 2500", `"type": "REFUND"`, `"refund_status": "PROCESSING"`, `"status": "SUCCEEDED"`,
		"verified payin.succeeded", "verified refund.succeeded", "svix-id sbx_evt_",
		// The chargeback trigger: opened, lost, each a verified webhook; the payin stays SUCCEEDED.
		`"status": "DISPUTE_ACTION_REQUIRED"`, `"respond_by": "`, "is LOST", `stays SUCCEEDED, with "chargebacks": [{"chargeback_id":"sbx_chb_`,
		`"status":"LOST","amount":5130}], refundable 0 cents (HAS_CHARGEBACKS)`,
		"verified chargeback.dispute_action_required", "verified chargeback.lost"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("demo output lacks %s", want)
		}
	}
	// The IVR key's id is labelled as an id, and its secret, not the id, is the connector's Password.
	key := regexp.MustCompile(`IVR key id +(sbx_api_\w+) +\(api_key_id[^\n]*\nIVR key secret +(sbx_apikey_[0-9a-f]{64}) +\(api_key: the connector's Password`).FindStringSubmatch(out.String())
	if key == nil || !strings.Contains(out.String(), "Password      "+key[2]+"   (the IVR key's secret, not its id)") {
		t.Errorf("the demo does not label the IVR key's id and secret, or the Password is not the secret:\n%s", out.String())
	}
	final := out.String()[strings.Index(out.String(), "final statusCallback"):]
	m := regexp.MustCompile(`"PaymentConfirmationCode": "(sbx_pyi_\w+)"`).FindStringSubmatch(final)
	if !strings.Contains(final, `"Result": "success"`) || m == nil || !strings.Contains(final, "GET /v1/payins/"+m[1]+":\n") {
		t.Errorf("the agent-assisted payment did not end in a payin:\n%s", final)
	}
	for _, pan := range []string{"4111111111111111", "4000000000000002", "5555555555554444"} {
		if strings.Contains(out.String(), pan) {
			t.Errorf("demo output shows the full card number %s", pan)
		}
	}
}
