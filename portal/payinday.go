package portal

// The platform's day after the call: its payin configs (listed, filtered,
// one by one) and the capture, void and refund of a payin. Every action goes
// through the payments service, which checks the permission again.

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/ivrpay/ivrpay"
)

type payinConfigsData struct {
	Configs   []*ivrpay.PayinConfig
	ListError string
	Next      string
	Merchants []*ivrpay.Merchant
	Merchant  string
	Used      string
	Query     string
}

// payinConfigList fills the list section of the configs page.
func (p *Portal) payinConfigList(rq *request) (*payinConfigsData, int) {
	q := rq.URL.Query()
	d := &payinConfigsData{Merchant: q.Get("merchant_id"), Used: q.Get("used")}
	filters := url.Values{}
	if d.Merchant != "" {
		filters.Set("merchant_id", d.Merchant)
	}
	if d.Used != "" {
		filters.Set("used", d.Used)
	}
	d.Query = filters.Encode()
	if !can(rq.key, "payin_config:read").OK {
		return d, http.StatusOK
	}
	d.Merchants, _ = p.merchantOptions(rq, "")
	l, err := p.svc.PayinConfigs.ListPayinConfigs(rq.Context(), ivrpay.PayinConfigFilter{
		Page: ivrpay.Page{Limit: listLimit, StartKey: q.Get("after")}, MerchantID: d.Merchant, Used: d.Used})
	if err != nil {
		d.ListError = p.errorText(err)
		return d, statusFor(err)
	}
	d.Configs, d.Next = l.Results, nextCursor(l, listLimit)
	return d, http.StatusOK
}

type payinConfigData struct {
	Config   *ivrpay.PayinConfig
	Metadata string
	Payin    *ivrpay.Payin
}

func (p *Portal) handlePayinConfig(w http.ResponseWriter, rq *request) {
	cfg, err := p.svc.PayinConfigs.FindPayinConfig(rq.Context(), rq.PathValue("id"))
	if err != nil {
		p.renderServiceError(w, rq.Request, rq, err)
		return
	}
	pg := rq.basePage("Payin config "+cfg.ID, "configs")
	d := payinConfigData{Config: cfg, Metadata: prettyJSON(cfg.Metadata)}
	if cfg.Payin != nil && can(rq.key, "payin:read").OK {
		// Shown when the key may read it; the link is there either way.
		d.Payin, _ = p.svc.Payins.FindPayin(rq.Context(), cfg.Payin.PayinID)
	}
	pg.Data = d
	p.render(w, rq.Request, http.StatusOK, "payinconfig", pg)
}

// payinAction is one of capture, void and refund as the payin page offers it.
type payinAction struct {
	Name       string // capture, void, refund
	Permission string
	// Allowed: the key holds Permission on this payin.
	Allowed bool
	// Applies: the payin's state admits the action (a refund: a
	// refundable amount).
	Applies bool
	// Refused is why a settled payin takes no refund when the reason is a
	// chargeback: the service's own refusal, naming it.
	Refused string
}

// payinActions lists the actions and whether the key and the payin's status allow each.
func payinActions(key *ivrpay.APIKey, pi *ivrpay.Payin) []payinAction {
	obj := pi.Object()
	refund := payinAction{"refund", "refund:create", ivrpay.Allows(key, "refund:create", obj), pi.RefundableAmount > 0, ""}
	if pi.NonRefundableReasonCode == ivrpay.NonRefundableHasChargebacks {
		refund.Refused = ivrpay.ErrorMessage(ivrpay.RefundRefusedByChargeback(pi))
	}
	return []payinAction{
		{"capture", "payin:update", ivrpay.Allows(key, "payin:update", obj), pi.Status == ivrpay.PayinStatusAuthorized, ""},
		{"void", "refund:create", ivrpay.Allows(key, "refund:create", obj),
			pi.Status == ivrpay.PayinStatusProcessing || pi.Status == ivrpay.PayinStatusAuthorized, ""},
		refund,
	}
}

// payinNotice is the banner after an action: a fixed message per done value,
// shown only when the payin's state bears it out (no text from the URL).
func payinNotice(done string, pi *ivrpay.Payin) string {
	switch {
	case done == "captured" && pi.CapturedAmount > 0:
		return "Captured: the payin settles like any other."
	case done == "voided" && pi.Status == ivrpay.PayinStatusCanceled:
		return "Voided: the authorization is released and no money moves."
	case done == "refunded" && len(pi.Refunds) > 0:
		return "Refund requested: it is listed below."
	}
	return ""
}

// handlePayinAction runs capture, void or refund from the payin page's forms.
func (p *Portal) handlePayinAction(action string) func(w http.ResponseWriter, rq *request) {
	return func(w http.ResponseWriter, rq *request) {
		id := rq.PathValue("id")
		f := rq.PostForm
		var err error
		var done string
		switch {
		case p.svc.Lifecycle == nil:
			err = ivrpay.Errorf(ivrpay.EINTERNAL, "payin actions are not available on this portal")
		case action == "capture":
			_, err = p.svc.Lifecycle.CapturePayin(rq.Context(), id, ivrpay.PayinCapture{})
			done = "captured"
		case action == "void":
			_, err = p.svc.Lifecycle.VoidOrRefund(rq.Context(), id, ivrpay.VoidOrRefund{IdempotencyKey: f.Get("idempotency_key"),
				Reason: f.Get("reason"), Type: ivrpay.VoidOrRefundTypeVoid})
			done = "voided"
		default:
			var cents int64
			amount := strings.TrimSpace(f.Get("amount"))
			if amount != "" {
				cents, err = dollarsToCents(amount)
			}
			if err == nil {
				v := ivrpay.VoidOrRefund{IdempotencyKey: f.Get("idempotency_key"), Reason: f.Get("reason"), Type: ivrpay.VoidOrRefundTypeRefund}
				if amount != "" {
					// 0.00 goes on as 0, which the service refuses: never a full refund.
					v.Amount = json.Number(strconv.FormatInt(cents, 10))
				}
				_, err = p.svc.Lifecycle.VoidOrRefund(rq.Context(), id, v)
			}
			done = "refunded"
		}
		if err != nil {
			pi, ferr := p.svc.Payins.FindPayin(rq.Context(), id)
			if ferr != nil {
				p.renderServiceError(w, rq.Request, rq, err)
				return
			}
			pg := p.payinPage(rq, pi)
			p.render(w, rq.Request, p.fail(pg, err), "payin", pg)
			return
		}
		p.log.Info("portal: payin "+action, "payin_id", id, "by", rq.key.ID)
		http.Redirect(w, rq.Request, "/portal/payins/"+url.PathEscape(id)+"?done="+done, http.StatusSeeOther)
	}
}
