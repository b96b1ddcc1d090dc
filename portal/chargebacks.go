package portal

import (
	"net/http"
	"net/url"
	"time"

	"github.com/ivrpay/ivrpay"
)

// chargebackView is a chargeback as the portal shows it. RespondBy is set
// only while the merchant is asked to answer; DashboardURL when the
// processor gives the page where the merchant answers.
type chargebackView struct {
	ID, PayinID, Status, ReasonCode, DashboardURL string
	Amount                                        int64
	RespondBy                                     *time.Time
	CreatedAt                                     time.Time
}

func viewChargeback(c *ivrpay.Chargeback) chargebackView {
	v := chargebackView{ID: c.ID, PayinID: c.PayinID, Status: c.Status, ReasonCode: string(c.ReasonCode),
		DashboardURL: string(c.Processor.DashboardURL), Amount: c.Amount, CreatedAt: c.CreatedAt}
	if ivrpay.ChargebackStatusAwaitsMerchant(c.Status) {
		v.RespondBy = c.RespondBy
	}
	return v
}

type chargebacksData struct {
	Chargebacks []chargebackView
	ListError   string
	Next        string
	Status      string
	Statuses    []string
	Query       string // the filters as a query string, for the next-page link
}

// handleChargebacks lists the chargebacks the key may read, oldest first:
// each row shows its deadline while an answer is due and links to the
// processor's dashboard when known.
func (p *Portal) handleChargebacks(w http.ResponseWriter, rq *request) {
	pg := rq.basePage("Chargebacks", "chargebacks")
	q := rq.URL.Query()
	d := &chargebacksData{Status: q.Get("status"), Statuses: ivrpay.ChargebackStatuses}
	if d.Status != "" {
		d.Query = url.Values{"status": {d.Status}}.Encode()
	}
	status := http.StatusOK
	switch {
	case p.svc.Chargebacks == nil:
		d.ListError = "Chargebacks are not available on this deployment."
	case can(rq.key, "chargeback:read").OK:
		l, err := p.svc.Chargebacks.ListChargebacks(rq.Context(), ivrpay.ChargebackFilter{Page: ivrpay.Page{Limit: listLimit, StartKey: q.Get("after")},
			Status: d.Status})
		if err != nil {
			d.ListError, status = p.errorText(err), statusFor(err)
			break
		}
		for _, c := range l.Results {
			d.Chargebacks = append(d.Chargebacks, viewChargeback(c))
		}
		d.Next = nextCursor(l, listLimit)
	}
	pg.Data = d
	p.render(w, rq.Request, status, "chargebacks", pg)
}

// payinChargebacks are the chargebacks of pi as the payin page shows them:
// read in full (deadline, dashboard link) when the key may read
// chargebacks, else the payin's own summary.
func (p *Portal) payinChargebacks(rq *request, pi *ivrpay.Payin) []chargebackView {
	if len(pi.Chargebacks) == 0 {
		return nil
	}
	if p.svc.Chargebacks != nil && can(rq.key, "chargeback:read").OK {
		l, err := p.svc.Chargebacks.ListChargebacks(rq.Context(), ivrpay.ChargebackFilter{Page: ivrpay.Page{Limit: ivrpay.MaxPageLimit}, PayinID: pi.ID})
		if err == nil {
			var out []chargebackView
			for _, c := range l.Results {
				out = append(out, viewChargeback(c))
			}
			return out
		}
		p.log.Warn("portal: reading a payin's chargebacks", "payin_id", pi.ID, "error", err)
	}
	out := make([]chargebackView, 0, len(pi.Chargebacks))
	for _, c := range pi.Chargebacks {
		out = append(out, chargebackView{ID: c.ID, PayinID: pi.ID, Status: c.Status, Amount: c.Amount})
	}
	return out
}
