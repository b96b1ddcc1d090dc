package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	twilioclient "github.com/twilio/twilio-go/client"

	"github.com/ivrpay/ivrpay/twilio"
)

// nodeGateway behaves like the community Node simulators of a Generic Pay
// Connector: express-basic-auth with its own user and password (a bare 401
// otherwise), and express.json(), which reads {} unless the Content-Type
// says JSON. It records what it saw.
type nodeGateway struct {
	*httptest.Server
	mu           sync.Mutex
	contentTypes []string
	users        []string
	bodies       []map[string]any
}

func newNodeGateway(t *testing.T, user, password string) *nodeGateway {
	t.Helper()
	g := &nodeGateway{}
	g.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, _ := r.BasicAuth()
		g.mu.Lock()
		g.contentTypes = append(g.contentTypes, r.Header.Get("Content-Type"))
		g.users = append(g.users, u)
		g.mu.Unlock()
		if u != user || p != password {
			w.WriteHeader(http.StatusUnauthorized) // express-basic-auth: no body
			return
		}
		body := map[string]any{}
		if strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
			_ = json.NewDecoder(r.Body).Decode(&body)
		}
		g.mu.Lock()
		g.bodies = append(g.bodies, body)
		g.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if body["transaction_id"] == nil {
			_, _ = io.WriteString(w, `{"charge_id":null,"error_code":"invalid001","error_message":"no transaction_id"}`)
			return
		}
		_, _ = io.WriteString(w, `{"charge_id":"ch_node_1","error_code":null,"error_message":null}`)
	}))
	t.Cleanup(g.Close)
	return g
}

func (g *nodeGateway) seen() (contentTypes, users []string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.contentTypes...), append([]string(nil), g.users...)
}

func TestSimulateInterop(t *testing.T) {
	t.Parallel()
	caller := []string{"--card", "4111111111111111", "--exp", "12/99", "--cvv", "123", "--postal-code", "94111",
		"--amount", "10.00", "--payin-config-id", "cfg_1"}
	withCreds := func(g *nodeGateway, creds string) string {
		return strings.Replace(g.URL, "http://", "http://"+creds+"@", 1) + "/charge"
	}
	tests := []struct {
		name            string
		args            func(g *nodeGateway) []string
		code            int
		wantContentType string
		wantUser        string
		stdout, stderr  string // substrings
	}{
		{
			name: "--content-type and --username reach an express.json() gateway",
			args: func(g *nodeGateway) []string {
				return []string{"--endpoint", g.URL + "/charge", "--username", "foo", "--api-key", "bar", "--content-type", "application/json"}
			},
			wantContentType: "application/json", wantUser: "foo", stdout: `"PaymentConfirmationCode": "ch_node_1"`,
		},
		{
			name: "without --content-type express.json() reads {}, as with Twilio",
			args: func(g *nodeGateway) []string {
				return []string{"--endpoint", g.URL + "/charge", "--username", "foo", "--api-key", "bar"}
			},
			code: 1, wantUser: "foo", stdout: `"ConnectorError": "invalid001"`,
		},
		{
			name: "credentials in --endpoint",
			args: func(g *nodeGateway) []string {
				return []string{"--endpoint", withCreds(g, "foo:bar"), "--content-type", "application/json"}
			},
			wantContentType: "application/json", wantUser: "foo", stdout: `"Result": "success"`,
		},
		{
			name: "the username defaults to api_key",
			args: func(g *nodeGateway) []string {
				return []string{"--endpoint", g.URL + "/charge", "--api-key", "bar"}
			},
			code: 1, wantUser: "api_key", stderr: "HTTP 401 from the connector",
		},
		{
			name: "a 401 is reported as a 401",
			args: func(g *nodeGateway) []string {
				return []string{"--endpoint", withCreds(g, "foo:wrong"), "--content-type", "application/json"}
			},
			code: 1, wantContentType: "application/json", wantUser: "foo",
			stdout: `"PaymentError": "HTTP 401 from the connector"`, stderr: "HTTP 401 from the connector",
		},
		{
			name: "URL password and --api-key disagree",
			args: func(g *nodeGateway) []string {
				return []string{"--endpoint", withCreds(g, "foo:bar"), "--api-key", "other"}
			},
			code: 1, stderr: "differs",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := newNodeGateway(t, "foo", "bar")
			code, stdout, stderr := runCLI(runSimulate, append(tt.args(g), caller...)...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tt.code, stdout, stderr)
			}
			if !strings.Contains(stdout, tt.stdout) || !strings.Contains(stderr, tt.stderr) {
				t.Errorf("stdout %s\nstderr %s\nwant %q and %q", stdout, stderr, tt.stdout, tt.stderr)
			}
			if strings.Contains(stdout+stderr, "malformed") {
				t.Errorf("reported as a malformed response:\n%s%s", stdout, stderr)
			}
			if strings.Contains(stdout+stderr, ":bar@") || strings.Contains(stdout+stderr, "4111111111111111") {
				t.Errorf("a password or the card was printed:\n%s%s", stdout, stderr)
			}
			cts, users := g.seen()
			if tt.wantUser == "" {
				if len(users) != 0 {
					t.Errorf("%d requests sent, want none", len(users))
				}
				return
			}
			if len(users) != 1 || users[0] != tt.wantUser || cts[0] != tt.wantContentType {
				t.Errorf("gateway saw users %q, Content-Types %q; want %q and %q", users, cts, tt.wantUser, tt.wantContentType)
			}
		})
	}
}

func TestSimulateCallbackFlags(t *testing.T) {
	t.Parallel()
	const token = "0123456789abcdef0123456789abcdef"
	type hit struct {
		url, signature string
		body           []byte
		form           url.Values
	}
	var (
		mu   sync.Mutex
		hits []hit
	)
	hooks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		form, _ := url.ParseQuery(string(body))
		mu.Lock()
		hits = append(hits, hit{"http://" + r.Host + r.URL.RequestURI(), r.Header.Get(twilio.SignatureHeader), body, form})
		mu.Unlock()
	}))
	t.Cleanup(hooks.Close)
	stub := newConnectorStub(t, 0)
	twimlFile := writeTemp(t, "pay.xml", twilioGolden(t, "payin.twiml.golden"))
	code, stdout, stderr := runCLI(runSimulate, "--endpoint", stub.URL, "--api-key", "ivr_key", "--twiml", twimlFile,
		"--card", "4111111111111111", "--exp", "12/99", "--cvv", "123", "--postal-code", "94111",
		"--action", hooks.URL+"/done?x=1", "--status-callback", hooks.URL+"/status",
		"--account-sid", "AC99999999999999999999999999999999", "--auth-token", token)
	if code != 0 {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	if !strings.Contains(stderr, "status callback For=payment-card-number: HTTP 200") {
		t.Errorf("stderr lacks the status events:\n%s", stderr)
	}
	mu.Lock()
	defer mu.Unlock()
	var fors []string
	right, wrong := twilioclient.NewRequestValidator(token), twilioclient.NewRequestValidator("x"+token[1:])
	for _, h := range hits {
		fors = append(fors, h.form.Get("For"))
		if h.form.Get("AccountSid") != "AC99999999999999999999999999999999" || !strings.HasPrefix(h.form.Get("CallSid"), "CA") {
			t.Errorf("%s: AccountSid %q CallSid %q", h.url, h.form.Get("AccountSid"), h.form.Get("CallSid"))
		}
		if !right.ValidateBody(h.url, h.body, h.signature) || wrong.ValidateBody(h.url, h.body, h.signature) {
			t.Errorf("%s: twilio-go's validator does not accept the signature with the right token alone", h.url)
		}
	}
	if got := strings.Join(fors, ","); got != "payment-card-number,expiration-date,security-code,postal-code,payment-processing," {
		t.Errorf("callbacks For %q, want the 5 status events then the action", got)
	}
}

func writeTemp(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}
