package portal_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/ivrpay/ivrpay"
	"github.com/ivrpay/ivrpay/portal"
)

func TestStripTrailingCommas(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in, want string
		removed  int
	}{
		{`[1,2,]`, `[1,2]`, 1},
		{`{"a":1,}`, `{"a":1}`, 1},
		{"{\"a\":{\"b\":1},\n}\n", "{\"a\":{\"b\":1}\n}\n", 1},
		{"[ {\"x\": [1, 2 ,\t\r\n ] , } , ]", "[ {\"x\": [1, 2 \t\r\n ]  }  ]", 3},
		{`["a,]", "b,}",]`, `["a,]", "b,}"]`, 1},
		{`["quote \",]", 1,]`, `["quote \",]", 1]`, 1},
		{`["backslash \\",]`, `["backslash \\"]`, 1},
		{`["\\\",]"]`, `["\\\",]"]`, 0},
		{`[1,,]`, `[1,]`, 1},
		{`[1, 2]`, `[1, 2]`, 0},
		{`,`, `,`, 0},
		{`[1,`, `[1,`, 0},
		{``, ``, 0},
		{`"unterminated ,]`, `"unterminated ,]`, 0},
		{`[{"é":"ü",},]`, `[{"é":"ü"}]`, 2},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, n := portal.StripTrailingCommas([]byte(tc.in))
			if string(got) != tc.want || n != tc.removed {
				t.Errorf("StripTrailingCommas(%q) = %q, %d; want %q, %d", tc.in, got, n, tc.want, tc.removed)
			}
		})
	}
}

func TestStripTrailingCommasGuideExample(t *testing.T) {
	t.Parallel()
	// The guide's merchant-constraint example, verbatim but for the placeholders.
	guide := `[
{
"permissions": [
"payin:create"
],
"constraints": {
"platform": {
"platform_id": "sbx_plt_X"
},
"merchant": {
"merchant_id": "sbx_mid_Y"
},
}
}
]`
	cleaned, n := portal.StripTrailingCommas([]byte(guide))
	if n != 1 {
		t.Fatalf("removed %d commas, want 1", n)
	}
	st, err := ivrpay.ParseStatements(cleaned)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(st)
	want := `[{"permissions":["payin:create"],"constraints":{"platform":{"platform_id":"sbx_plt_X"},"merchant":{"merchant_id":"sbx_mid_Y"}}}]`
	if string(got) != want {
		t.Errorf("parsed %s, want %s", got, want)
	}
}

func FuzzStripTrailingCommas(f *testing.F) {
	for _, s := range []string{`[1,]`, `{"a":"b,}",}`, `["\\",]`, `[{"x":[1,2,],},]`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out, n := portal.StripTrailingCommas([]byte(s))
		if len(out) != len(s)-n {
			t.Fatalf("removed %d bytes but reported %d", len(s)-len(out), n)
		}
		// Valid JSON has no trailing commas: it must come out unchanged.
		if json.Valid([]byte(s)) && (n != 0 || string(out) != s) {
			t.Fatalf("changed valid JSON %q to %q", s, out)
		}
		// Idempotent.
		again, m := portal.StripTrailingCommas(out)
		if m != 0 || string(again) != string(out) {
			t.Fatalf("second pass changed %q to %q", out, again)
		}
	})
}

var statementsPre = regexp.MustCompile(`(?s)<pre class="code" id="statements-json">(.*?)</pre>`)

func createdStatements(t *testing.T, p page) string {
	t.Helper()
	m := statementsPre.FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("no statements on the page (status %d):\n%s", p.status, p.text())
	}
	raw := html.UnescapeString(m[1])
	var buf bytes.Buffer
	if err := json.Compact(&buf, []byte(raw)); err != nil {
		t.Fatalf("shown statements are not JSON: %v\n%s", err, raw)
	}
	return buf.String()
}

func TestCreateKeyPresetsAndAdvancedEditor(t *testing.T) {
	t.Parallel()
	e := setup(t)
	c := e.newClient(t)
	token := c.signIn(e.admin.Secret)
	plt, mid := e.platform.ID, e.merchant.ID

	for _, tc := range []struct {
		preset, merchant, want string
	}{
		{"payins", "", `[{"permissions":["payin:create"],"constraints":{"platform":{"platform_id":"` + plt + `"}}}]`},
		{"payment_methods", "", `[{"permissions":["payment_method:create"],"constraints":{"platform":{"platform_id":"` + plt + `"}}}]`},
		{"both", "", `[{"permissions":["payin:create","payment_method:create"],"constraints":{"platform":{"platform_id":"` + plt + `"}}}]`},
		{"payins", mid, `[{"permissions":["payin:create"],"constraints":{"platform":{"platform_id":"` + plt + `"},"merchant":{"merchant_id":"` + mid + `"}}}]`},
	} {
		t.Run(tc.preset+" "+tc.merchant, func(t *testing.T) {
			c := c.on(t)
			p := c.post("/portal/keys", url.Values{"csrf_token": {token}, "mode": {"preset"}, "preset": {tc.preset}, "merchant_id": {tc.merchant}})
			if p.status != http.StatusOK {
				t.Fatalf("preset %s: status %d:\n%s", tc.preset, p.status, p.text())
			}
			if got := createdStatements(t, p); got != tc.want {
				t.Errorf("preset %s merchant %q: statements\n%s\nwant\n%s", tc.preset, tc.merchant, got, tc.want)
			}
			mustContain(t, p, "shown this once")
		})
	}

	// The guide's merchant example, trailing comma included, creates the key.
	guide := "[\n{\n\"permissions\": [\n\"payin:create\"\n],\n\"constraints\": {\n\"platform\": {\n\"platform_id\": \"" + plt +
		"\"\n},\n\"merchant\": {\n\"merchant_id\": \"" + mid + "\"\n},\n}\n}\n]"
	p := c.post("/portal/keys", url.Values{"csrf_token": {token}, "mode": {"advanced"}, "statements": {guide}})
	if p.status != http.StatusOK {
		t.Fatalf("advanced with the guide's example: status %d:\n%s", p.status, p.text())
	}
	want := `[{"permissions":["payin:create"],"constraints":{"platform":{"platform_id":"` + plt + `"},"merchant":{"merchant_id":"` + mid + `"}}}]`
	if got := createdStatements(t, p); got != want {
		t.Errorf("advanced statements %s, want %s", got, want)
	}

	// "Check statements" validates without creating.
	before := countKeys(t, e)
	p = c.post("/portal/keys", url.Values{"csrf_token": {token}, "mode": {"check"}, "statements": {guide}})
	if p.status != http.StatusOK || !strings.Contains(p.body, `id="statements-ok"`) {
		t.Errorf("check: status %d:\n%s", p.status, p.text())
	}
	mustContain(t, p, "Ignored 1 trailing comma")
	if countKeys(t, e) != before {
		t.Error("checking statements created a key")
	}

	// Errors point at the field, next to the textarea.
	for _, tc := range []struct {
		name, statements string
		status           int
		field, message   string
	}{
		{"unknown permission", `[{"permissions":["payin:create","payin:fly"],"constraints":{"platform":{"platform_id":"` + plt + `"}}}]`,
			400, "statements[0].permissions[1]", `unknown permission "payin:fly"`},
		{"unknown constraint", `[{"permissions":["payin:create"],"constraints":{"platform":{"platform_id":"` + plt + `"},"region":{}}}]`,
			400, "statements[0].constraints.region", "unknown constraint kind"},
		{"no platform", `[{"permissions":["payin:create"],"constraints":{}}]`,
			400, "statements[0].constraints.platform", "is required"},
		{"syntax", "[\n{\"permissions\": [\"payin:create\"]\n\"constraints\": {}}]",
			400, "statements", "line 3, column 1"},
		{"other platform", `[{"permissions":["payin:create"],"constraints":{"platform":{"platform_id":"sbx_plt_other"}}}]`,
			403, "statements[0].permissions[0]", "cannot grant payin:create"},
		{"unknown merchant", `[{"permissions":["payin:create"],"constraints":{"platform":{"platform_id":"` + plt + `"},"merchant":{"merchant_id":"sbx_mid_nope"}}}]`,
			400, "statements[0].constraints.merchant.merchant_id", "not found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := c.on(t)
			p := c.post("/portal/keys", url.Values{"csrf_token": {token}, "mode": {"advanced"}, "statements": {tc.statements}})
			if p.status != tc.status {
				t.Errorf("%s: status %d, want %d", tc.name, p.status, tc.status)
			}
			m := regexp.MustCompile(`(?s)<p class="error" id="statements-error"[^>]*>(.*?)</p>`).FindStringSubmatch(p.body)
			if m == nil {
				t.Errorf("%s: no error next to the textarea:\n%s", tc.name, p.text())
				return
			}
			shown := page{body: m[1]}.text()
			if !strings.Contains(shown, tc.field) || !strings.Contains(shown, tc.message) {
				t.Errorf("%s: error %q, want field %q and %q", tc.name, shown, tc.field, tc.message)
			}
			// The textarea keeps what the user typed, to fix it.
			if !strings.Contains(page{body: p.body}.text(), strings.Split(tc.statements, "\n")[0]) {
				t.Errorf("%s: the textarea lost the statements", tc.name)
			}
		})
	}
	if countKeys(t, e) != before {
		t.Error("a refused statement created a key")
	}
}

func countKeys(t *testing.T, e *env) int {
	t.Helper()
	l, err := e.store.ListAPIKeys(ivrpay.NewContextWithPrincipal(t.Context(), e.admin), ivrpay.Page{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return l.TotalResults
}

var configIDPattern = regexp.MustCompile(`id="config-id">([^<]+)<`)

func (c *client) createPayinConfig(token, merchantID, amount string) (page, string) {
	c.t.Helper()
	form := c.get("/portal/configs")
	idem := regexp.MustCompile(`name="idempotency_key" value="([^"]+)"`).FindStringSubmatch(form.body)
	if idem == nil {
		c.t.Fatalf("no idempotency key in the form:\n%s", form.text())
	}
	p := c.post("/portal/configs/payin", url.Values{"csrf_token": {token}, "merchant_id": {merchantID}, "amount": {amount},
		"idempotency_key": {idem[1]}, "metadata": {`{"integration":"twilio_ivr"}`}})
	m := configIDPattern.FindStringSubmatch(p.body)
	if m == nil {
		return p, ""
	}
	return p, m[1]
}

func TestPayinConfigAmountsInCents(t *testing.T) {
	t.Parallel()
	e := setup(t)
	c := e.newClient(t)
	token := c.signIn(e.admin.Secret)
	admin := ivrpay.NewContextWithPrincipal(t.Context(), e.admin)
	for amount, cents := range map[string]int64{"10.50": 1050, "$7": 700, "0.1": 10, "1234.99": 123499, " 19.99 ": 1999} {
		t.Run(amount, func(t *testing.T) {
			c := c.on(t)
			p, id := c.createPayinConfig(token, e.merchant.ID, amount)
			if id == "" {
				t.Fatalf("amount %q: no config created (status %d):\n%s", amount, p.status, p.text())
			}
			cfg, err := e.store.FindPayinConfig(admin, id)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Amount != cents {
				t.Errorf("amount %q: %d cents, want %d", amount, cfg.Amount, cents)
			}
			if string(cfg.Metadata) != `{"integration":"twilio_ivr"}` {
				t.Errorf("metadata %s", cfg.Metadata)
			}
		})
	}
	for _, bad := range []string{"1.999", "ten", "-5", "", "1e3", "0"} {
		t.Run(fmt.Sprintf("%q", bad), func(t *testing.T) {
			c := c.on(t)
			p, id := c.createPayinConfig(token, e.merchant.ID, bad)
			if id != "" || p.status != http.StatusBadRequest {
				t.Errorf("amount %q: status %d, config %q; want 400", bad, p.status, id)
			}
			mustContain(t, p, "amount")
		})
	}
	// The form's idempotency key makes a double submit return the same config.
	form := c.get("/portal/configs")
	idem := regexp.MustCompile(`name="idempotency_key" value="([^"]+)"`).FindStringSubmatch(form.body)[1]
	var ids []string
	for range 2 {
		p := c.post("/portal/configs/payin", url.Values{"csrf_token": {token}, "merchant_id": {e.merchant.ID}, "amount": {"5.00"}, "idempotency_key": {idem}})
		ids = append(ids, configIDPattern.FindStringSubmatch(p.body)[1])
	}
	if ids[0] != ids[1] {
		t.Errorf("double submit made two configs: %v", ids)
	}
}

// TestNoCardOrSecretInPages runs a test call with a typed card number and
// CVV, then crawls every page reachable by links and checks that neither the
// card number, the CVV field's value nor any key secret appears — except the
// secret on the one-time display that answers the key's creation.
func TestNoCardOrSecretInPages(t *testing.T) {
	t.Parallel()
	e := setup(t)
	c := e.newClient(t)
	token := c.signIn(e.admin.Secret)

	created := c.post("/portal/keys", url.Values{"csrf_token": {token}, "mode": {"preset"}, "preset": {"both"}, "merchant_id": {e.merchant.ID}})
	m := regexp.MustCompile(`id="secret" class="secret" value="([^"]+)"`).FindStringSubmatch(created.body)
	if m == nil {
		t.Fatalf("no secret shown on creation:\n%s", created.text())
	}
	newSecret := m[1]
	_, cfg := c.createPayinConfig(token, e.merchant.ID, "12.34")
	if cfg == "" {
		t.Fatal("no payin config")
	}
	const pan, cvv = "5555555555554444", "987"
	call := c.post("/portal/ivr/test-call", url.Values{"csrf_token": {token}, "config_id": {cfg}, "connector": {"ivrpay_sandbox"},
		"api_key": {newSecret}, "card": {"visa"}, "card_number": {"5555 5555 5555 4444"}, "expiry": {"12/39"}, "cvv": {cvv}, "postal_code": {"94107"}})
	if call.status != http.StatusOK {
		t.Fatalf("test call: status %d:\n%s", call.status, call.text())
	}
	mustContain(t, call, "success", "xxxxxxxxxxxx4444", "PayConnector_payin_id", "MASTERCARD")
	for _, input := range regexp.MustCompile(`<input[^>]*name="(?:cvv|card_number|api_key)"[^>]*>`).FindAllString(call.body, -1) {
		if strings.Contains(input, "value=") {
			t.Errorf("the re-rendered test call form echoes a field: %s", input)
		}
	}

	secrets := map[string]string{"card number": pan, "admin key": e.admin.Secret, "IVR key": e.ivrKey.Secret, "new key": newSecret}
	check := func(where string, body string) {
		for what, s := range secrets {
			if strings.Contains(body, s) {
				t.Errorf("%s shows the %s", where, what)
			}
		}
		if strings.Contains(body, `value="`+cvv+`"`) {
			t.Errorf("%s echoes the CVV", where)
		}
	}
	check("the test call's answer", call.body)

	// Crawl every page reachable by links, with each filter and page.
	links := regexp.MustCompile(`href="(/portal/[^"]*)"`)
	seen := map[string]bool{}
	queue := []string{"/portal/", "/portal/ivr?config=" + cfg, "/portal/payins?source=IVR"}
	for len(queue) > 0 && len(seen) < 300 {
		path := queue[0]
		queue = queue[1:]
		path = strings.ReplaceAll(path, "&amp;", "&")
		if seen[path] || strings.HasPrefix(path, "/portal/static/") {
			continue
		}
		seen[path] = true
		p := c.get(path)
		if p.status != http.StatusOK {
			t.Errorf("GET %s: status %d", path, p.status)
		}
		check("GET "+path, p.body)
		for _, l := range links.FindAllStringSubmatch(p.body, -1) {
			queue = append(queue, l[1])
		}
	}
	for _, must := range []string{"/portal/keys", "/portal/payins", "/portal/merchants", "/portal/payment-methods", "/portal/webhooks"} {
		if !seen[must] {
			t.Errorf("the crawl never reached %s", must)
		}
	}
	var payinPages int
	for path := range seen {
		if strings.HasPrefix(path, "/portal/payins/") {
			payinPages++
		}
	}
	if payinPages == 0 {
		t.Error("the crawl reached no payin detail page")
	}
}

func TestIVRSetupPage(t *testing.T) {
	t.Parallel()
	e := setup(t)
	c := e.newClient(t)
	token := c.signIn(e.admin.Secret)
	_, cfg := c.createPayinConfig(token, e.merchant.ID, "10.00")
	p := c.get("/portal/ivr?config=" + cfg + "&connector=my_connector")
	mustContain(t, p, "enabled", "my_connector", "api_key", "the IVR key you created", e.srv.URL+"/vendor/twilio/pay_generic",
		`paymentConnector=&#34;my_connector&#34;`, `chargeAmount=&#34;10.00&#34;`, `name=&#34;payin_config_id&#34; value=&#34;`+cfg,
		"Visa, Master Card, American Express, Discover, JCB, Diners Club", "Reusable", "Attestation of Compliance", "LIVE mode")
	// Telnyx's and SignalWire's settings, and the config's pay step in their markups.
	mustContain(t, p, e.srv.URL+"/vendor/telnyx/pay_generic", "<code>basic</code>",
		strings.Replace(e.srv.URL, "://", "://api_key:YOUR_IVR_KEY@", 1)+"/vendor/signalwire/pay",
		`transactionType=&#34;charge&#34;`, `paymentConnectorUrl=&#34;`, `&#34;charge_amount&#34;: &#34;10.00&#34;`)
	// The recent list offers the config.
	mustContain(t, c.get("/portal/ivr"), `<option value="`+cfg+`">`, "ivrpay_sandbox")

	// A platform without IVR is told whom to ask.
	off := setupWith(t, envOptions{ivrEnabled: false})
	oc := off.newClient(t)
	oc.signIn(off.admin.Secret)
	mustContain(t, oc.get("/portal/ivr"), "not enabled", "ivrpay admin platform enable-ivr "+off.platform.ID, "Platform Success Manager")
}

// TestIVRTestCallEachProvider: the test call plays Twilio's, Telnyx's or
// SignalWire's side against the platform's own endpoint, and the payin it
// makes records that provider.
func TestIVRTestCallEachProvider(t *testing.T) {
	t.Parallel()
	e := setup(t)
	c := e.newClient(t)
	token := c.signIn(e.admin.Secret)
	for _, provider := range ivrpay.IVRProviders {
		t.Run(string(provider), func(t *testing.T) {
			_, cfg := c.createPayinConfig(token, e.merchant.ID, "10.00")
			call := c.post("/portal/ivr/test-call", url.Values{"csrf_token": {token}, "config_id": {cfg}, "connector": {"ivrpay_sandbox"},
				"provider": {string(provider)}, "api_key": {e.ivrKey.Secret}, "card": {"visa"}, "expiry": {"12/39"}, "postal_code": {"94107"}})
			if call.status != http.StatusOK {
				t.Fatalf("test call: status %d:\n%s", call.status, call.text())
			}
			m := regexp.MustCompile(`id="call-payin">([^<]+)<`).FindStringSubmatch(call.body)
			if m == nil || !strings.Contains(call.body, `id="call-result">success<`) {
				t.Fatalf("test call answered:\n%s", call.text())
			}
			p, err := e.store.FindPayin(ivrpay.NewContextWithPrincipal(t.Context(), e.admin), m[1])
			if err != nil {
				t.Fatal(err)
			}
			if p.IVR == nil || p.IVR.Provider != provider || p.PayinConfigID != cfg {
				t.Fatalf("payin %s ivr %+v, want provider %s", p.ID, p.IVR, provider)
			}
		})
	}
	_, cfg := c.createPayinConfig(token, e.merchant.ID, "10.00")
	bad := c.post("/portal/ivr/test-call", url.Values{"csrf_token": {token}, "config_id": {cfg}, "provider": {"vonage"}})
	if bad.status != http.StatusBadRequest || !strings.Contains(bad.body, "Choose Twilio, Telnyx or SignalWire") {
		t.Errorf("unknown provider: status %d\n%s", bad.status, bad.text())
	}
}

func TestWebhookEndpoints(t *testing.T) {
	t.Parallel()
	e := setup(t)
	c := e.newClient(t)
	token := c.signIn(e.admin.Secret)
	p := c.post("/portal/webhooks", url.Values{"csrf_token": {token}, "url": {"http://127.0.0.1:9/hook"}, "events": {"payin.succeeded", "payin.failed"}})
	if p.status != http.StatusOK {
		t.Fatalf("create endpoint: status %d:\n%s", p.status, p.text())
	}
	secret := regexp.MustCompile(`value="(whsec_[^"]+)"`).FindStringSubmatch(p.body)
	if secret == nil {
		t.Fatalf("no signing secret shown:\n%s", p.text())
	}
	list := c.get("/portal/webhooks")
	mustContain(t, list, "http://127.0.0.1:9/hook", "payin.succeeded, payin.failed")
	if strings.Contains(list.body, secret[1]) {
		t.Error("the endpoint list shows the signing secret")
	}
	id := regexp.MustCompile(`href="/portal/webhooks/([^"]+)"`).FindStringSubmatch(list.body)[1]
	detail := c.get("/portal/webhooks/" + id)
	mustContain(t, detail, "Recent deliveries")
	if strings.Contains(detail.body, secret[1]) {
		t.Error("the endpoint page shows the signing secret")
	}
	// Rotating the secret: refused without the form's token; with it, a new
	// secret shown once, and the page says until when the old one signs.
	if p := c.post("/portal/webhooks/"+id+"/rotate-secret", url.Values{}); p.status != http.StatusForbidden {
		t.Errorf("rotate without csrf_token: status %d, want 403", p.status)
	}
	rotated := c.post("/portal/webhooks/"+id+"/rotate-secret", url.Values{"csrf_token": {token}})
	if rotated.status != http.StatusOK {
		t.Fatalf("rotate: status %d:\n%s", rotated.status, rotated.text())
	}
	newSecret := regexp.MustCompile(`value="(whsec_[^"]+)"`).FindStringSubmatch(rotated.body)
	if newSecret == nil || newSecret[1] == secret[1] {
		t.Fatalf("rotate showed no new signing secret:\n%s", rotated.text())
	}
	mustContain(t, rotated, "signed with both this secret and the one it")
	detail = c.get("/portal/webhooks/" + id)
	mustContain(t, detail, "Previous secret", "also signs until")
	if strings.Contains(detail.body, newSecret[1]) {
		t.Error("the endpoint page shows the new signing secret")
	}
	bad := c.post("/portal/webhooks", url.Values{"csrf_token": {token}, "url": {"ftp://example.com"}})
	if bad.status != http.StatusBadRequest {
		t.Errorf("bad URL: status %d", bad.status)
	}
	if p := c.post("/portal/webhooks/"+id+"/delete", url.Values{"csrf_token": {token}}); p.status != http.StatusOK {
		t.Errorf("delete: status %d", p.status)
	} else {
		mustContain(t, p, "deleted")
	}
}

// TestWebhookEndpointPatterns: the form offers every pattern of
// ivrpay.EventPatterns beside the event types; a checked pattern is posted
// and stored as itself, and a pattern the API refuses is refused here too,
// naming the element, with nothing created.
func TestWebhookEndpointPatterns(t *testing.T) {
	t.Parallel()
	e := setup(t)
	c := e.newClient(t)
	token := c.signIn(e.admin.Secret)
	admin := ivrpay.NewContextWithPrincipal(t.Context(), e.admin)
	endpoints := func(t *testing.T) []*ivrpay.WebhookEndpoint {
		t.Helper()
		l, err := e.store.ListWebhookEndpoints(admin, ivrpay.Page{Limit: ivrpay.MaxPageLimit})
		if err != nil {
			t.Fatal(err)
		}
		return l.Results
	}

	form := c.get("/portal/webhooks")
	for _, v := range append(slices.Clone(ivrpay.EventPatterns), ivrpay.EventTypes...) {
		mustContain(t, form, `name="events" value="`+v+`"`)
	}

	hrefID := regexp.MustCompile(`href="/portal/webhooks/([^"]+)"`)
	for _, tc := range []struct {
		name   string
		events []string
	}{
		{"a family", []string{"chargeback.*"}},
		{"every event", []string{"*"}},
		{"a family and a type of another", []string{"refund.*", "chargeback.lost"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := c.on(t)
			p := c.post("/portal/webhooks", url.Values{"csrf_token": {token}, "url": {"http://127.0.0.1:9/" + url.PathEscape(tc.name)}, "events": tc.events})
			if p.status != http.StatusOK {
				t.Fatalf("create: status %d:\n%s", p.status, p.text())
			}
			m := hrefID.FindStringSubmatch(p.body)
			if m == nil {
				t.Fatalf("no endpoint link on the created page:\n%s", p.text())
			}
			got, err := e.store.FindWebhookEndpoint(admin, m[1])
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got.Events, tc.events) {
				t.Errorf("endpoint events %q, want %q as posted", got.Events, tc.events)
			}
			mustContain(t, c.get("/portal/webhooks/"+got.ID), strings.Join(tc.events, ", "))
		})
	}

	for _, tc := range []struct {
		name, field string
		events      []string
	}{
		{"a partial family", "events[0]", []string{"charge*"}},
		{"a doubled star", "events[0]", []string{"chargeback.**"}},
		{"an unknown family after a good one", "events[1]", []string{"chargeback.*", "nosuch.*"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := c.on(t)
			before := len(endpoints(t))
			p := c.post("/portal/webhooks", url.Values{"csrf_token": {token}, "url": {"http://127.0.0.1:9/refused"}, "events": tc.events})
			if p.status != http.StatusBadRequest {
				t.Fatalf("status %d, want 400:\n%s", p.status, p.text())
			}
			mustContain(t, p, tc.field+": pattern", "http://127.0.0.1:9/refused")
			// The form comes back with what was checked still checked.
			for _, ev := range tc.events {
				if slices.Contains(ivrpay.EventPatterns, ev) {
					mustContain(t, p, `value="`+ev+`" checked`)
				}
			}
			if n := len(endpoints(t)); n != before {
				t.Errorf("%d endpoints after a refused create, want %d", n, before)
			}
		})
	}
}
