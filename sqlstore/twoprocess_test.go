package sqlstore_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ivrpay/ivrpay"
	"github.com/ivrpay/ivrpay/payments/paymentstest"
	"github.com/ivrpay/ivrpay/sqlstore"
	"github.com/ivrpay/ivrpay/vault"
)

// TestTwoProcessesShareOnePostgres proves the connector's idempotency (docs/connector.md) across processes: two
// `ivrpay serve` processes on one PostgreSQL database answer 30 identical
// connector requests with one payin and identical bytes, and let exactly one
// of 20 racing transactions use a payin config. Nothing but the database is
// shared between them.
func TestTwoProcessesShareOnePostgres(t *testing.T) {
	forEngine(t, func(t *testing.T, engine string) {
		b, servers := twoServers(t, engine)
		s := b.s
		identicalCfg := b.payinConfig(t, 1000)
		raceCfg := b.payinConfig(t, 1000)

		t.Run("30 identical requests", func(t *testing.T) {
			body := connectorBody(identicalCfg.ID, "CA-2proc-identical")
			answers := fire(t, 30, func(i int) (string, []byte) { return servers[i%2], body }, b.ivrKey.Secret)
			for i, a := range answers {
				if !bytes.Equal(a, answers[0]) {
					t.Fatalf("answer %d (server %d) = %s\nanswer 0 = %s", i, i%2, a, answers[0])
				}
			}
			var res connectorAnswer
			if err := json.Unmarshal(answers[0], &res); err != nil {
				t.Fatal(err)
			}
			if res.ChargeID == nil || res.ErrorCode != nil {
				t.Fatalf("answer = %s, want a charge", answers[0])
			}
			if got := count(t, s.DB(), `SELECT COUNT(*) FROM payins WHERE payin_config_id = $1`, identicalCfg.ID); got != 1 {
				t.Fatalf("%d payins for 30 identical requests on two servers, want 1", got)
			}
			if p, err := s.FindPayin(b.adminCtx, *res.ChargeID); err != nil || p.Source != ivrpay.PayinSourceIVR {
				t.Fatalf("payin %s: %+v, %v", *res.ChargeID, p, err)
			}
		})

		t.Run("20 racing transactions", func(t *testing.T) {
			answers := fire(t, 20, func(i int) (string, []byte) {
				return servers[i%2], connectorBody(raceCfg.ID, fmt.Sprintf("CA-2proc-race-%02d", i))
			}, b.ivrKey.Secret)
			succeeded := 0
			for i, a := range answers {
				var res connectorAnswer
				if err := json.Unmarshal(a, &res); err != nil {
					t.Fatalf("answer %d: %v: %s", i, err, a)
				}
				switch {
				case res.ChargeID != nil && res.ErrorCode == nil:
					succeeded++
				case res.ChargeID == nil && res.ErrorCode != nil && *res.ErrorCode == ivrpay.ConnConfigAlreadyUsed:
				default:
					t.Fatalf("answer %d = %s, want a charge or %s", i, a, ivrpay.ConnConfigAlreadyUsed)
				}
			}
			if succeeded != 1 {
				t.Fatalf("%d of 20 racing transactions succeeded, want 1", succeeded)
			}
			if got := count(t, s.DB(), paymentstest.LivePayins, raceCfg.ID); got != 1 {
				t.Fatalf("%d live payins for the raced config, want 1", got)
			}
		})
	})
}

// twoServers skips the test unless engine is PostgreSQL; otherwise it makes
// a fresh database, starts two `ivrpay serve` processes of the built binary
// on it, with one vault key file, and returns the bundle set up on the
// database (with the servers' vault key, so that card fingerprints match)
// and the servers' addresses.
func twoServers(t *testing.T, engine string) (*bundle, []string) {
	t.Helper()
	if engine != sqlstore.EnginePostgres {
		t.Skip("several server processes share a database only on PostgreSQL")
	}
	bin := buildIvrpay(t)
	dsn := paymentstest.DSN(t, engine)
	keyFile := filepath.Join(t.TempDir(), "vault.key")
	v, err := vault.New(paymentstest.WriteVaultKey(t, keyFile))
	if err != nil {
		t.Fatal(err)
	}
	opts := paymentstest.Options(t)
	opts.Vault = v
	b := setupOn(t, openDSN(t, dsn, opts), engine, opts)
	return b, []string{startServer(t, bin, dsn, keyFile), startServer(t, bin, dsn, keyFile)}
}

// connectorAnswer is the Twilio-shaped connector response.
type connectorAnswer struct {
	ChargeID  *string `json:"charge_id"`
	ErrorCode *string `json:"error_code"`
}

// connectorBody is a charge as Twilio sends it: every value a string.
func connectorBody(cfgID, txID string) []byte {
	b, _ := json.Marshal(map[string]any{
		"method": "charge", "transaction_id": txID, "cardnumber": visaOK, "cvv": goodCVV,
		"expiry_month": expiryMonth, "expiry_year": expiryYear, "postal_code": goodPostal,
		"amount": "10.00", "currency_code": "usd", "description": "test",
		"parameters": map[string]string{ivrpay.ParamPayinConfigID: cfgID},
	})
	return b
}

// fire sends n connector requests at once; target gives the server address and
// body of request i. It returns the response bodies, all of which must be 200.
func fire(t *testing.T, n int, target func(i int) (string, []byte), secret string) [][]byte {
	t.Helper()
	client := &http.Client{Timeout: 60 * time.Second}
	answers := make([][]byte, n)
	errs := make([]error, n)
	paymentstest.AllAtOnce(n, func(i int) {
		addr, body := target(i)
		req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/vendor/twilio/pay_generic", bytes.NewReader(body))
		if err != nil {
			errs[i] = err
			return
		}
		req.SetBasicAuth("api_key", secret)
		resp, err := client.Do(req)
		if err != nil {
			errs[i] = err
			return
		}
		defer resp.Body.Close()
		answers[i], errs[i] = io.ReadAll(resp.Body)
		if errs[i] == nil && resp.StatusCode != http.StatusOK {
			errs[i] = fmt.Errorf("status %d: %s", resp.StatusCode, answers[i])
		}
	})
	for i, err := range errs {
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	return answers
}

// buildIvrpay builds cmd/ivrpay from the module root into a temp directory,
// or skips the test when the command does not build yet.
func buildIvrpay(t *testing.T) string {
	t.Helper()
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(os.Getenv("GOROOT"), "bin", "go")
	}
	bin := filepath.Join(t.TempDir(), "ivrpay")
	cmd := exec.Command(goBin, "build", "-o", bin, "./cmd/ivrpay")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cmd/ivrpay does not build: %v\n%s", err, out)
	}
	return bin
}

// moduleRoot walks up from the working directory to the directory of go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found above the working directory")
		}
		dir = parent
	}
}

var listeningLine = regexp.MustCompile(`msg=listening addr=(\S+)`)

// startServer starts `ivrpay serve` on a free port and returns its address
// once it logs that it listens. The process is killed at cleanup.
func startServer(t *testing.T, bin, dsn, keyFile string) string {
	t.Helper()
	cmd := exec.Command(bin, "serve", "--addr", "127.0.0.1:0", "--db", dsn, "--vault-key-file", keyFile, "--mode", "sandbox")
	cmd.Dir = t.TempDir()
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "IVRPAY_") { // no flag from the environment
			env = append(env, kv)
		}
	}
	cmd.Env = env
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	var log paymentstest.LockedBuffer
	addrc := make(chan string, 1)
	go func() {
		defer close(exited)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			log.Write([]byte(line + "\n"))
			if m := listeningLine.FindStringSubmatch(line); m != nil {
				select {
				case addrc <- m[1]:
				default:
				}
			}
		}
		io.Copy(io.Discard, stderr)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		cmd.Wait()
		if t.Failed() {
			t.Logf("ivrpay serve (pid %d) log:\n%s", cmd.Process.Pid, log.Bytes())
		}
	})
	select {
	case addr := <-addrc:
		return addr
	case <-exited:
		cmd.Wait()
		t.Fatalf("ivrpay serve exited before listening (%v):\n%s", cmd.ProcessState, log.Bytes())
	case <-time.After(60 * time.Second):
		t.Fatalf("ivrpay serve did not log that it listens within a minute:\n%s", log.Bytes())
	}
	return ""
}
