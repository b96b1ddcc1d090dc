package portal

import (
	"net/http"

	"github.com/ivrpay/ivrpay"
)

// riskData is the risk blocks page: the platform's active blocks.
type riskData struct {
	Blocks    []ivrpay.RiskBlock
	ListError string
}

// handleRisk lists the blocks the risk rules started on the platform
// (docs/risk.md): a card by brand, last 4 and fingerprint, never its number.
func (p *Portal) handleRisk(w http.ResponseWriter, rq *request) {
	pg := rq.basePage("Risk blocks", "risk")
	d := &riskData{}
	status := http.StatusOK
	switch {
	case p.svc.Risk == nil:
		d.ListError = "Risk blocks are not available on this deployment."
	case can(rq.key, "payin:read").OK:
		blocks, err := p.svc.Risk.ListActiveRiskBlocks(rq.Context())
		if err != nil {
			d.ListError, status = p.errorText(err), statusFor(err)
		}
		d.Blocks = blocks
	}
	pg.Data = d
	p.render(w, rq.Request, status, "risk", pg)
}
