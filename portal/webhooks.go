package portal

import (
	"net/http"
	"slices"
	"strings"

	"github.com/ivrpay/ivrpay"
)

type webhookForm struct {
	URL    string
	Events []string
}

type webhooksData struct {
	Available bool
	Endpoints []*ivrpay.WebhookEndpoint
	ListError string
	Next      string
	// Wildcard is "*"; Families are the form's checkbox groups.
	Wildcard string
	Families []eventFamily
	Form     webhookForm
}

// eventFamily is one group of the form's checkboxes: the family's pattern
// (chargeback.*), which also covers event types added to it later, and its
// event types.
type eventFamily struct {
	Name    string
	Pattern string
	Types   []string
}

// eventFamilies groups ivrpay.EventTypes under ivrpay.EventPatterns, so a
// family or an event type added there appears in the form.
func eventFamilies() []eventFamily {
	var out []eventFamily
	for _, pat := range ivrpay.EventPatterns {
		if pat == ivrpay.EventWildcard {
			continue
		}
		f := eventFamily{Name: strings.TrimSuffix(pat, ".*"), Pattern: pat}
		for _, t := range ivrpay.EventTypes {
			if ivrpay.EventMatches(pat, t) {
				f.Types = append(f.Types, t)
			}
		}
		out = append(out, f)
	}
	return out
}

var webhookFamilies = eventFamilies()

// Has reports whether the form subscribes to an event type or pattern (for
// checkboxes).
func (f webhookForm) Has(event string) bool { return slices.Contains(f.Events, event) }

func (p *Portal) webhooksPage(rq *request, form webhookForm) *page {
	pg := rq.basePage("Webhooks", "webhooks")
	d := &webhooksData{Available: p.svc.Webhooks != nil, Wildcard: ivrpay.EventWildcard, Families: webhookFamilies, Form: form}
	if d.Available && can(rq.key, "webhook_endpoint:read").OK {
		l, err := p.svc.Webhooks.ListWebhookEndpoints(rq.Context(), ivrpay.Page{Limit: listLimit, StartKey: rq.URL.Query().Get("after")})
		if err != nil {
			d.ListError = p.errorText(err)
		} else {
			d.Endpoints, d.Next = l.Results, nextCursor(l, listLimit)
		}
	}
	pg.Data = d
	return pg
}

func (p *Portal) handleWebhooks(w http.ResponseWriter, rq *request) {
	pg := p.webhooksPage(rq, webhookForm{})
	// A deleted endpoint can no longer be looked up, so the banner is a fixed
	// message that repeats nothing from the URL.
	if rq.URL.Query().Get("deleted") != "" {
		pg.Notice = "The webhook endpoint was deleted: no more events are sent to it."
	}
	p.render(w, rq.Request, http.StatusOK, "webhooks", pg)
}

func (p *Portal) handleCreateWebhook(w http.ResponseWriter, rq *request) {
	if p.svc.Webhooks == nil {
		p.renderError(w, rq.Request, rq, http.StatusNotFound, "Webhooks are not available on this deployment yet.")
		return
	}
	form := webhookForm{URL: strings.TrimSpace(rq.PostForm.Get("url")), Events: rq.PostForm["events"]}
	e, err := p.svc.Webhooks.CreateWebhookEndpoint(rq.Context(), ivrpay.WebhookEndpointCreate{URL: form.URL, Events: form.Events})
	if err != nil {
		pg := p.webhooksPage(rq, form)
		p.render(w, rq.Request, p.fail(pg, err), "webhooks", pg)
		return
	}
	p.log.Info("portal: webhook endpoint created", "webhook_endpoint_id", e.ID, "by", rq.key.ID)
	pg := rq.basePage("Webhook endpoint created", "webhooks")
	// The signing secret is in this response only.
	pg.Data = e
	p.render(w, rq.Request, http.StatusOK, "webhookcreated", pg)
}

type webhookData struct {
	Endpoint      *ivrpay.WebhookEndpoint
	Deliveries    []*ivrpay.WebhookDelivery
	DeliveryError string
}

func (p *Portal) handleWebhook(w http.ResponseWriter, rq *request) {
	if p.svc.Webhooks == nil {
		p.renderError(w, rq.Request, rq, http.StatusNotFound, "Webhooks are not available on this deployment yet.")
		return
	}
	e, err := p.svc.Webhooks.FindWebhookEndpoint(rq.Context(), rq.PathValue("id"))
	if err != nil {
		p.renderServiceError(w, rq.Request, rq, err)
		return
	}
	d := webhookData{Endpoint: e}
	l, err := p.svc.Webhooks.ListWebhookDeliveries(rq.Context(), e.ID, ivrpay.Page{Limit: ivrpay.MaxPageLimit})
	if err != nil {
		d.DeliveryError = p.errorText(err)
	} else {
		// The service lists oldest first; show the most recent 50, newest first.
		res := l.Results
		if len(res) > 50 {
			res = res[len(res)-50:]
		}
		d.Deliveries = slices.Clone(res)
		slices.Reverse(d.Deliveries)
	}
	pg := rq.basePage("Webhook endpoint "+e.ID, "webhooks")
	pg.Data = d
	p.render(w, rq.Request, http.StatusOK, "webhook", pg)
}

func (p *Portal) handleDeleteWebhook(w http.ResponseWriter, rq *request) {
	if p.svc.Webhooks == nil {
		p.renderError(w, rq.Request, rq, http.StatusNotFound, "Webhooks are not available on this deployment yet.")
		return
	}
	id := rq.PathValue("id")
	if err := p.svc.Webhooks.DeleteWebhookEndpoint(rq.Context(), id); err != nil {
		p.renderServiceError(w, rq.Request, rq, err)
		return
	}
	p.log.Info("portal: webhook endpoint deleted", "webhook_endpoint_id", id, "by", rq.key.ID)
	http.Redirect(w, rq.Request, "/portal/webhooks?deleted=1", http.StatusSeeOther)
}

// handleRotateWebhookSecret shows the endpoint's new signing secret, this
// once, and until when the replaced one also signs.
func (p *Portal) handleRotateWebhookSecret(w http.ResponseWriter, rq *request) {
	if p.svc.Webhooks == nil {
		p.renderError(w, rq.Request, rq, http.StatusNotFound, "Webhooks are not available on this deployment yet.")
		return
	}
	e, err := p.svc.Webhooks.RotateWebhookEndpointSecret(rq.Context(), rq.PathValue("id"))
	if err != nil {
		p.renderServiceError(w, rq.Request, rq, err)
		return
	}
	p.log.Info("portal: webhook signing secret rotated", "webhook_endpoint_id", e.ID, "by", rq.key.ID)
	pg := rq.basePage("Webhook signing secret rotated", "webhooks")
	pg.Data = e
	p.render(w, rq.Request, http.StatusOK, "webhookcreated", pg)
}
