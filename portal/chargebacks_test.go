package portal_test

// The portal's chargebacks (issue 24): the list with deadlines, and the
// badge on the payin page that links to the processor's dashboard.

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ivrpay/ivrpay"
	"github.com/ivrpay/ivrpay/payments/paymentstest"
)

// dispute receives a dispute event about payinID, as the events endpoints
// do, and returns the chargeback.
func (e *env) dispute(t *testing.T, payinID, reference, status string, respondBy *time.Time, dashboard string) *ivrpay.Chargeback {
	t.Helper()
	ev := paymentstest.Receive(t, e.store, ivrpay.ProcessorEvent{Account: ivrpay.SandboxAccount, Kind: "sandbox",
		ID: "evt_" + reference + "_" + status, Type: "test.dispute", Effect: ivrpay.EffectDispute, Reference: payinID,
		Dispute: &ivrpay.DisputeDetails{Reference: reference, Status: status, ReasonCode: "fraudulent", RespondBy: respondBy, DashboardURL: dashboard}})
	c, err := e.store.FindChargeback(e.adminContext(), ev.ObjectID)
	if err != nil {
		t.Fatalf("dispute event %s: %s %q: %v", ev.ID, ev.Status, ev.Note, err)
	}
	return c
}

func TestChargebackPages(t *testing.T) {
	t.Parallel()
	e := setup(t)
	_, payinID := e.chargedConfig(t, 2500, "")
	respondBy := time.Date(2031, 5, 6, 17, 0, 0, 0, time.UTC)
	const dashboard = "https://dashboard.example/disputes/du_portal_1"
	cb := e.dispute(t, payinID, "du_portal_1", ivrpay.ChargebackStatusDisputeActionRequired, &respondBy, dashboard)
	const deadline = "2031-05-06 17:00:00 UTC"

	admin := e.newClient(t)
	admin.signIn(e.admin.Secret)
	list := admin.get("/portal/chargebacks")
	mustContain(t, list, `id="chargebacks-table"`, `href="/portal/payins/`+payinID+`"`, "$25.00", "DISPUTE_ACTION_REQUIRED", deadline,
		`href="`+dashboard+`"`, "fraudulent", `title="`+cb.ID+`"`)
	mustContain(t, admin.get("/portal/chargebacks?status=LOST"), "No chargebacks match this filter.")
	if p := admin.get("/portal/chargebacks?status=lost"); p.status != 400 || !strings.Contains(p.text(), "status") {
		t.Errorf("an unknown status filter: %d %s", p.status, p.text())
	}

	// The payin page: a badge with the status and deadline, linking to the dashboard.
	pi := admin.get("/portal/payins/" + payinID)
	mustContain(t, pi, `id="chargeback-`+cb.ID+`" href="`+dashboard+`"`, "Chargeback DISPUTE_ACTION_REQUIRED · $25.00 · respond by "+deadline,
		`id="payin-chargebacks"`)
	if strings.Contains(pi.body, "chargeback:read") {
		t.Errorf("the admin's payin page says chargeback:read is missing:\n%s", pi.text())
	}

	// Once lost, no answer is due: no deadline.
	e.dispute(t, payinID, "du_portal_1", ivrpay.ChargebackStatusLost, nil, "")
	pi = admin.get("/portal/payins/" + payinID)
	mustContain(t, pi, "Chargeback LOST · $25.00")
	if strings.Contains(pi.text(), "respond by") {
		t.Errorf("a LOST chargeback shows a deadline:\n%s", pi.text())
	}

	// A dashboard URL that is not http(s) never becomes a link.
	_, other := e.chargedConfig(t, 1200, "")
	bad := e.dispute(t, other, "du_portal_2", ivrpay.ChargebackStatusInquiryActionRequired, nil, "javascript:alert(1)")
	if p := admin.get("/portal/payins/" + other); strings.Contains(p.body, "javascript:") || !strings.Contains(p.body, `id="chargeback-`+bad.ID+`"`) {
		t.Errorf("payin page with a javascript: dashboard URL:\n%s", p.body)
	}

	// A key that reads payins but not chargebacks: the payin's summary
	// only, and the list names the missing permission.
	reader, err := e.store.CreateAPIKey(e.adminContext(), []ivrpay.Statement{{Permissions: []string{"payin:read"},
		Constraints: ivrpay.Constraints{Platform: &ivrpay.PlatformConstraint{PlatformID: e.platform.ID}}}})
	if err != nil {
		t.Fatal(err)
	}
	rc := e.newClient(t)
	rc.signIn(reader.Secret)
	mustContain(t, rc.get("/portal/chargebacks"), "Unavailable: your key lacks the permission chargeback:read")
	pi = rc.get("/portal/payins/" + payinID)
	mustContain(t, pi, "Chargeback LOST · $25.00", "Deadlines and dashboard links need the permission chargeback:read")
}

// TestRefundOfDisputedPayinPage: the payin page of a payin whose chargeback
// refuses refunds offers no refund form but says why, with the service's
// own refusal; a form posted anyway is refused with the same words and
// refunds nothing. An inquiry leaves the refund form in place.
func TestRefundOfDisputedPayinPage(t *testing.T) {
	t.Parallel()
	e := setup(t)
	_, disputed := e.chargedConfig(t, 2500, "")
	_, inquired := e.chargedConfig(t, 1200, "")
	paymentstest.Settle(t, e.store)
	cb := e.dispute(t, disputed, "du_portal_refund_1", ivrpay.ChargebackStatusDisputeActionRequired, nil, "")
	e.dispute(t, inquired, "du_portal_refund_2", ivrpay.ChargebackStatusInquiryActionRequired, nil, "")

	admin := e.newClient(t)
	token := admin.signIn(e.admin.Secret)
	pi := admin.get("/portal/payins/" + disputed)
	mustContain(t, pi, `id="refund-refused"`, "cannot be refunded while its chargeback "+cb.ID+" is DISPUTE_ACTION_REQUIRED", "pay the cardholder twice")
	if strings.Contains(pi.body, `id="refund-button"`) {
		t.Errorf("the disputed payin's page offers a refund:\n%s", pi.text())
	}
	p := admin.post("/portal/payins/"+disputed+"/refund", url.Values{"csrf_token": {token}, "idempotency_key": {"k-disputed"}, "reason": {"DUPLICATE"}})
	if p.status != http.StatusConflict || !strings.Contains(p.text(), "chargeback "+cb.ID) {
		t.Errorf("refund form of the disputed payin posted anyway: status %d:\n%s", p.status, p.text())
	}
	if n := paymentstest.Count(t, e.store.DB(), `SELECT COUNT(*) FROM refunds WHERE payin_id = $1`, disputed); n != 0 {
		t.Errorf("%d refunds of the disputed payin", n)
	}
	mustContain(t, admin.get("/portal/payins/"+inquired), `id="refund-button"`)
}

// TestRefundFormFollowsRefundableAmount: the payin page offers the refund
// form exactly when the payin has a refundable amount, shows the
// non_refundable_reason_code beside a 0, and names the chargeback when one
// is the reason.
func TestRefundFormFollowsRefundableAmount(t *testing.T) {
	t.Parallel()
	e := setup(t)
	admin := e.newClient(t)
	token := admin.signIn(e.admin.Secret)
	type row struct {
		name   string
		payin  func(t *testing.T) string
		reason string // "" when the payin is refundable (the form is offered)
	}
	settled := func(t *testing.T) string {
		_, id := e.chargedConfig(t, 2000, "")
		paymentstest.Settle(t, e.store)
		return id
	}
	var rows []row
	for _, st := range ivrpay.ChargebackStatuses {
		r := row{"chargeback " + st, func(t *testing.T) string {
			id := settled(t)
			e.dispute(t, id, "du_form_"+st, st, nil, "")
			return id
		}, ""}
		if slices.Contains(ivrpay.ChargebackStatusesRefusingRefunds, st) {
			r.reason = ivrpay.NonRefundableHasChargebacks
		}
		rows = append(rows, r)
	}
	rows = append(rows,
		row{"settled", settled, ""},
		row{"fully refunded", func(t *testing.T) string {
			id := settled(t)
			if p := admin.post("/portal/payins/"+id+"/refund", url.Values{"csrf_token": {token}, "idempotency_key": {"k-full-" + id}, "reason": {"DUPLICATE"}}); p.status != http.StatusOK {
				t.Fatalf("full refund from the form: status %d:\n%s", p.status, p.text())
			}
			return id
		}, ivrpay.NonRefundableFullyRefunded},
		// Settled by the next row that settles, once its own checks are done.
		row{"processing", func(t *testing.T) string { _, id := e.chargedConfig(t, 2000, ""); return id }, ivrpay.NonRefundableInSettlementWindow},
	)
	for _, tc := range rows {
		t.Run(tc.name, func(t *testing.T) {
			id := tc.payin(t)
			pi := admin.get("/portal/payins/" + id)
			if form := strings.Contains(pi.body, `id="refund-button"`); form != (tc.reason == "") {
				t.Errorf("refund form offered: %v, want %v (reason %q):\n%s", form, tc.reason == "", tc.reason, pi.text())
			}
			if tc.reason == "" {
				if strings.Contains(pi.body, `id="payin-non-refundable"`) {
					t.Errorf("a refundable payin shows a non-refundable reason:\n%s", pi.text())
				}
				return
			}
			mustContain(t, pi, "("+tc.reason+")")
			if refused := strings.Contains(pi.body, `id="refund-refused"`); refused != (tc.reason == ivrpay.NonRefundableHasChargebacks) {
				t.Errorf("refusal shown: %v, want it only for a chargeback:\n%s", refused, pi.text())
			}
		})
	}
}
