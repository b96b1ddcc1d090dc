package portal

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"

	"github.com/ivrpay/ivrpay"
)

// keyPreset is one of the guide's restricted IVR keys.
type keyPreset struct {
	Name        string
	Label       string
	Permissions []string
	Help        string
}

// keyPresets are the guide's three IVR keys: they can run step 2 (the call)
// and cannot create configs, so a leaked key cannot move money on its own.
var keyPresets = []keyPreset{
	{"payins", "IVR: process payins", []string{"payin:create"}, "payin:create only: Twilio can charge payin configs you create."},
	{"payment_methods", "IVR: store payment methods", []string{"payment_method:create"}, "payment_method:create only: Twilio can store cards for payment method configs you create."},
	{"both", "IVR: both", []string{"payin:create", "payment_method:create"}, "payin:create and payment_method:create."},
}

func presetByName(name string) (keyPreset, bool) {
	for _, p := range keyPresets {
		if p.Name == name {
			return p, true
		}
	}
	return keyPreset{}, false
}

// presetStatements builds exactly the guide's statement shape:
// [{"permissions":[…],"constraints":{"platform":{"platform_id":…}[,"merchant":{"merchant_id":…}]}}].
func presetStatements(p keyPreset, platformID, merchantID string) []ivrpay.Statement {
	st := ivrpay.Statement{Permissions: append([]string(nil), p.Permissions...),
		Constraints: ivrpay.Constraints{Platform: &ivrpay.PlatformConstraint{PlatformID: platformID}}}
	if merchantID != "" {
		st.Constraints.Merchant = &ivrpay.MerchantConstraint{MerchantID: merchantID}
	}
	return []ivrpay.Statement{st}
}

// PresetView is a preset as the form shows it, with its statements for the
// Advanced editor (the page's script swaps them in when the choice changes).
type PresetView struct {
	keyPreset
	Checked bool
	// PermissionsJSON is the permissions array for the script.
	PermissionsJSON string
}

type keyForm struct {
	Preset     string
	MerchantID string
	Statements string
}

type keysData struct {
	Keys           []*ivrpay.APIKey
	ListError      string
	Next           string
	Merchants      []*ivrpay.Merchant
	MerchantsError string
	Presets        []PresetView
	Form           keyForm
	// Advanced opens the Advanced editor (after an error in it).
	Advanced bool
	// Checked is set when "Check statements" found no problem.
	Checked bool
	// RemovedCommas counts trailing commas the editor tolerated.
	RemovedCommas int
	SelfID        string
	// Sessions are the platform's active sessions (POST /v1/sessions).
	Sessions      []*ivrpay.Session
	SessionsError string
}

type keyCreatedData struct {
	Key            *ivrpay.APIKey
	StatementsJSON string
}

func (p *Portal) keysPage(rq *request, form keyForm) (*page, *keysData) {
	pg := rq.basePage("API keys", "keys")
	d := &keysData{Form: form, SelfID: rq.key.ID}
	if can(rq.key, "api_key:read").OK {
		l, err := p.svc.APIKeys.ListAPIKeys(rq.Context(), ivrpay.Page{Limit: 100, StartKey: rq.URL.Query().Get("after")})
		if err != nil {
			d.ListError = p.errorText(err)
		} else {
			d.Keys = l.Results
			if len(l.Results) == 100 {
				d.Next = l.LastKey
			}
		}
	}
	if p.svc.Sessions != nil && can(rq.key, "api_key:read").OK {
		l, err := p.svc.Sessions.ListActiveSessions(rq.Context(), ivrpay.Page{Limit: 100})
		if err != nil {
			d.SessionsError = p.errorText(err)
		} else {
			d.Sessions = l.Results
		}
	}
	d.Merchants, d.MerchantsError = p.merchantOptions(rq, "")
	if d.Form.Preset == "" {
		d.Form.Preset = keyPresets[0].Name
	}
	for _, kp := range keyPresets {
		perms, _ := json.Marshal(kp.Permissions)
		d.Presets = append(d.Presets, PresetView{keyPreset: kp, Checked: kp.Name == d.Form.Preset, PermissionsJSON: string(perms)})
	}
	if d.Form.Statements == "" {
		kp, _ := presetByName(d.Form.Preset)
		d.Form.Statements = statementsJSON(presetStatements(kp, rq.key.PlatformID, d.Form.MerchantID))
	}
	pg.Data = d
	return pg, d
}

// merchantOptions lists the merchants the key may read (for selects), up to
// 1000; with permission, only those the key holds it for.
func (p *Portal) merchantOptions(rq *request, permission string) ([]*ivrpay.Merchant, string) {
	if !can(rq.key, "merchant:read").OK {
		return nil, "missing permission merchant:read"
	}
	l, err := p.svc.Merchants.ListMerchants(rq.Context(), ivrpay.Page{Limit: ivrpay.MaxPageLimit})
	if err != nil {
		return nil, p.errorText(err)
	}
	if permission == "" {
		return l.Results, ""
	}
	var out []*ivrpay.Merchant
	for _, m := range l.Results {
		if ivrpay.Allows(rq.key, permission, ivrpay.Object{PlatformID: m.PlatformID, MerchantID: m.ID}) {
			out = append(out, m)
		}
	}
	return out, ""
}

func (p *Portal) handleKeys(w http.ResponseWriter, rq *request) {
	pg, _ := p.keysPage(rq, keyForm{})
	pg.Notice = p.keyStatusNotice(rq)
	p.render(w, rq.Request, http.StatusOK, "keys", pg)
}

// keyStatusNotice is the banner after a key was disabled or enabled. It shows
// nothing taken from the URL: a fixed message per done value, about a key the
// signed-in key may read, looked up, whose status is the one announced.
// Anything else (a crafted link) shows no banner.
func (p *Portal) keyStatusNotice(rq *request) string {
	q := rq.URL.Query()
	var status, message string
	switch q.Get("done") {
	case "disabled":
		status, message = ivrpay.APIKeyStatusDisabled, " is disabled: it no longer authenticates."
	case "enabled":
		status, message = ivrpay.APIKeyStatusEnabled, " is enabled."
	default:
		return ""
	}
	key, err := p.svc.APIKeys.FindAPIKey(rq.Context(), q.Get("id"))
	if err != nil || key.Status != status {
		return ""
	}
	return "Key " + key.ID + message
}

// handleCreateKey creates a key from a preset or from the Advanced editor's
// statements, validated as POST /v1/api_keys validates them: ParseStatements,
// then the service's grant checks.
func (p *Portal) handleCreateKey(w http.ResponseWriter, rq *request) {
	form := keyForm{Preset: rq.PostForm.Get("preset"), MerchantID: strings.TrimSpace(rq.PostForm.Get("merchant_id"))}
	mode := rq.PostForm.Get("mode")
	var statements []ivrpay.Statement
	var removed int
	if mode == "advanced" || mode == "check" {
		form.Statements = rq.PostForm.Get("statements")
		cleaned, n := StripTrailingCommas([]byte(form.Statements))
		removed = n
		var err error
		if msg := jsonSyntaxError(cleaned); msg != "" {
			err = ivrpay.FieldErrorf("statements", "is not valid JSON: %s", msg)
		} else {
			statements, err = ivrpay.ParseStatements(bytes.TrimSpace(cleaned))
		}
		if err == nil && mode == "check" {
			err = ivrpay.CheckGrant(rq.key.Statements, statements)
		}
		if err != nil {
			pg, d := p.keysPage(rq, form)
			d.Advanced, d.RemovedCommas = true, removed
			status := p.fail(pg, err)
			pg.Error, pg.InlineError = ivrpay.ErrorMessage(err), true
			p.render(w, rq.Request, status, "keys", pg)
			return
		}
		if mode == "check" {
			pg, d := p.keysPage(rq, form)
			d.Advanced, d.Checked, d.RemovedCommas = true, true, removed
			p.render(w, rq.Request, http.StatusOK, "keys", pg)
			return
		}
	} else {
		kp, ok := presetByName(form.Preset)
		if !ok {
			pg, _ := p.keysPage(rq, form)
			pg.Error = "Choose one of the presets."
			p.render(w, rq.Request, http.StatusBadRequest, "keys", pg)
			return
		}
		statements = presetStatements(kp, rq.key.PlatformID, form.MerchantID)
	}
	key, err := p.svc.APIKeys.CreateAPIKey(rq.Context(), statements)
	if err != nil {
		pg, d := p.keysPage(rq, form)
		d.Advanced, d.RemovedCommas = mode == "advanced", removed
		status := p.fail(pg, err)
		if d.Advanced && ivrpay.ErrorCode(err) != ivrpay.EINTERNAL {
			pg.Error, pg.InlineError = ivrpay.ErrorMessage(err), true
		}
		p.render(w, rq.Request, status, "keys", pg)
		return
	}
	p.log.Info("portal: API key created", "key_id", key.ID, "by", rq.key.ID, "platform_id", key.PlatformID)
	pg := rq.basePage("API key created", "keys")
	pg.Data = keyCreatedData{Key: key, StatementsJSON: statementsJSON(key.Statements)}
	// The secret is in this response only: it is not stored (only its hash
	// is), and the page is never cached.
	p.render(w, rq.Request, http.StatusOK, "keycreated", pg)
}

func (p *Portal) handleSetKeyStatus(status string) func(w http.ResponseWriter, rq *request) {
	return func(w http.ResponseWriter, rq *request) {
		id := rq.PathValue("id")
		if _, err := p.svc.APIKeys.SetAPIKeyStatus(rq.Context(), id, status); err != nil {
			pg, _ := p.keysPage(rq, keyForm{})
			p.render(w, rq.Request, p.fail(pg, err), "keys", pg)
			return
		}
		p.log.Info("portal: API key status changed", "key_id", id, "status", status, "by", rq.key.ID)
		http.Redirect(w, rq.Request, "/portal/keys?done="+strings.ToLower(status)+"&id="+url.QueryEscape(id), http.StatusSeeOther)
	}
}
