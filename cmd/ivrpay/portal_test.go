package main

import (
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestServeMountsPortal runs `ivrpay serve` in process and checks its wiring
// of the portal: /portal is served, the connector fields show the base URL,
// and the test call reaches the server's own connector over loopback.
func TestServeMountsPortal(t *testing.T) {
	t.Parallel()
	srv := serveInProcess(t, "--base-url", "https://ivr.example.com/")
	base := srv.baseURL
	keyRE := func(label string) string { return srv.bootstrap(t, label) }
	admin, ivrKey, merchant := keyRE("admin api_key"), keyRE("ivr api_key"), keyRE("merchant_id")

	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 60 * time.Second}
	get := func(path string) (int, string) {
		resp, err := c.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	post := func(path string, form url.Values) (int, string) {
		resp, err := c.PostForm(base+path, form)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	csrf := func(body string) string {
		m := regexp.MustCompile(`name="csrf_token" value="([^"]+)"`).FindStringSubmatch(body)
		if m == nil {
			t.Fatalf("no csrf_token:\n%s", body)
		}
		return html.UnescapeString(m[1])
	}

	status, body := get("/portal")
	if status != http.StatusOK || !strings.Contains(body, `name="api_key"`) {
		t.Fatalf("GET /portal: %d\n%s", status, body)
	}
	status, body = post("/portal/signin", url.Values{"csrf_token": {csrf(body)}, "api_key": {admin}})
	if status != http.StatusOK {
		t.Fatalf("sign-in: %d", status)
	}
	token := csrf(body)
	_, body = get("/portal/ivr")
	if !strings.Contains(body, "https://ivr.example.com/vendor/twilio/pay_generic") {
		t.Errorf("the connector's Endpoint URL is not the base URL's:\n%s", body)
	}
	_, body = get("/portal/configs")
	idem := regexp.MustCompile(`name="idempotency_key" value="([^"]+)"`).FindStringSubmatch(body)[1]
	_, body = post("/portal/configs/payin", url.Values{"csrf_token": {token}, "merchant_id": {merchant}, "amount": {"3.00"}, "idempotency_key": {idem}})
	m := regexp.MustCompile(`id="config-id">([^<]+)<`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no config created:\n%s", body)
	}
	status, body = post("/portal/ivr/test-call", url.Values{"csrf_token": {token}, "config_id": {m[1]}, "api_key": {ivrKey},
		"card": {"visa"}, "expiry": {"12/39"}, "postal_code": {"94107"}})
	if status != http.StatusOK || !strings.Contains(body, `id="call-result">success<`) {
		t.Errorf("test call through the loopback connector: %d\n%s", status, body)
	}
}
