package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ivrpay/ivrpay"
	"github.com/ivrpay/ivrpay/httpapi"
	"github.com/ivrpay/ivrpay/loadtest"
	"github.com/ivrpay/ivrpay/payments/paymentstest"
	"github.com/ivrpay/ivrpay/processor/stripe/stripetest"
	"github.com/ivrpay/ivrpay/sqlstore"
	"github.com/ivrpay/ivrpay/vault"
)

// TestVaultRotationUnderLoad rotates the vault key of a running deployment
// whose platform charges through a Stripe account (the replaying fake), so
// that every charge decrypts the account's secret and stores the card:
// `ivrpay loadtest` drives `ivrpay serve` while `ivrpay admin vault rotate`
// runs, and then every server restarts. The load ends with no failed
// charge; the rotation re-encrypted the cards and the secret and retired
// the old key; after the restart every stored card is charged again, and a
// connector charge made before the rotation replays its first answer (its
// card fingerprint did not change). On PostgreSQL, two servers with a key
// file each share the database and only one host's file takes part in the
// rotation: the other server learns the key from the database.
func TestVaultRotationUnderLoad(t *testing.T) {
	t.Parallel()
	bin := buildIvrpay(t)
	for _, engine := range paymentstest.Engines(t) {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			rotationUnderLoad(t, bin, engine)
		})
	}
}

func rotationUnderLoad(t *testing.T, bin, engine string) {
	ctx := context.Background()
	fake := stripetest.NewFake(t)
	dsn := paymentstest.DSN(t, engine)
	key, err := vault.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	hosts := 1
	if engine == sqlstore.EnginePostgres {
		hosts = 2 // SQLite serves one process
	}
	// Each host has its own key file, all with the same key.
	installs := make([]installation, hosts)
	for i := range installs {
		installs[i] = installationOn(t, bin, dsn)
		if err := vault.WriteKeyFile(installs[i].vaultKey, key); err != nil {
			t.Fatal(err)
		}
	}
	start := func(i int) *serveProcess { return installs[i].serve(t, nil, "--mode", "sandbox") }
	servers := []*serveProcess{start(0)}
	adminKey, platformID := servers[0].bootstrap(t, "admin api_key"), servers[0].bootstrap(t, "platform_id")
	for i := 1; i < hosts; i++ {
		servers = append(servers, start(i))
	}
	baseURLs := func() []string {
		var out []string
		for _, s := range servers {
			out = append(out, s.baseURL)
		}
		return out
	}
	// The admin commands run on the first host, with its key file.
	admin := func(args ...string) (string, string) {
		t.Helper()
		code, stdout, stderr := installs[0].admin(t, "sandbox", args...)
		if code != 0 {
			t.Fatalf("admin %v: exit %d\n%s", args, code, stderr)
		}
		return stdout, stderr
	}
	secretFile := filepath.Join(t.TempDir(), "stripe.key")
	if err := os.WriteFile(secretFile, []byte("sk_test_51IvrpayRotationSecret"), 0o600); err != nil {
		t.Fatal(err)
	}
	admin("processor", "add", "--name", "stripe-fake", "--kind", "stripe", "--secret-key-file", secretFile, "--api-base", fake.URL)
	admin("platform", "set-processor", platformID, "stripe-fake")

	target, err := loadtest.Prepare(ctx, loadtest.NewHTTPClient(16), baseURLs(), adminKey, 1000)
	if err != nil {
		t.Fatal(err)
	}
	// A charge before the rotation, whose answer a retry must get again
	// after it; it also shows that the platform now charges through Stripe.
	cfg, err := target.AdminClient().CreatePayinConfig(ctx, ivrpay.PayinConfigCreate{MerchantID: target.MerchantID,
		IdempotencyKey: "before-rotation", Amount: "1000", CurrencyCode: "USD"})
	if err != nil {
		t.Fatal(err)
	}
	before := chargeBody(cfg.ID, "CA-before-rotation", "10.00")
	_, firstAnswer, err := target.SendCharge(ctx, before)
	if err != nil {
		t.Fatal(err)
	}
	var first connectorAnswer
	if json.Unmarshal(firstAnswer, &first); first.ChargeID == nil {
		t.Fatalf("charge before the rotation: %s", firstAnswer)
	}
	if p, err := target.AdminClient().GetPayin(ctx, *first.ChargeID); err != nil || p.Processor == nil || p.Processor.Kind != ivrpay.ProcessorKindStripe {
		t.Fatalf("the charge before the rotation did not go to Stripe: %+v, %v", p, err)
	}

	load := exec.Command(bin, "loadtest", "--base-url", strings.Join(baseURLs(), ","), "--api-key", adminKey,
		"--rate", "40", "--duration", "12s", "--json", "--retry-fraction", "0.1", "--duplicate-fraction", "0.05")
	var loadOut, loadErr bytes.Buffer
	load.Stdout, load.Stderr = &loadOut, &loadErr
	if err := load.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second)
	out, progress := admin("vault", "rotate")
	loadExit := load.Wait()
	t.Logf("vault rotate:\n%s%s", progress, out)
	var rotated vault.RotateResult
	if err := json.Unmarshal([]byte(out), &rotated); err != nil {
		t.Fatalf("vault rotate printed %q: %v", out, err)
	}
	oldID := vaultKeyID(t, key)
	if rotated.KeyID == oldID || len(rotated.Retired) != 1 || rotated.Retired[0] != oldID || rotated.Processes != hosts ||
		rotated.Reencrypted["payment_methods"] == 0 || rotated.Reencrypted["processor_accounts"] != 1 {
		t.Fatalf("vault rotate = %+v; want key %s retired, %d processes, the cards and the secret re-encrypted", rotated, oldID, hosts)
	}
	var report loadtest.Report
	if err := json.Unmarshal(loadOut.Bytes(), &report); err != nil {
		t.Fatalf("loadtest (%v) printed no report: %v\n%s", loadExit, err, loadErr.String())
	}
	if loadExit != nil || report.Charged == 0 || report.Charged != report.Calls || !report.OK() {
		t.Fatalf("loadtest across the rotation (exit %v): %d calls, %d charged, outcomes %v, %d mismatches, audit %+v\nserver log:\n%s",
			loadExit, report.Calls, report.Charged, report.Outcomes, report.Mismatches, report.Audit, servers[0].logTail())
	}

	// Every host's key file now holds the new key alone, the old one as a retired copy.
	for i, inst := range installs {
		f := inst.vaultKey
		waitUntil(t, fmt.Sprintf("host %d's key file to drop the old key", i), func() bool {
			keys, _, err := vault.ReadKeyRing(f)
			return err == nil && len(keys) == 1 && vaultKeyID(t, keys[0]) == rotated.KeyID
		})
		if retired, _ := filepath.Glob(f + vault.RetiredSuffix + "*"); len(retired) != 1 {
			t.Fatalf("host %d: retired copies %v", i, retired)
		}
	}

	for i, s := range servers {
		s.kill()
		servers[i] = start(i)
	}
	target.BaseURLs = baseURLs()
	_, replayed, err := target.SendCharge(ctx, before)
	if err != nil || !bytes.Equal(replayed, firstAnswer) {
		t.Fatalf("the charge made before the rotation replays %s (%v), want its first answer %s", replayed, err, firstAnswer)
	}
	chargeEveryStoredCard(t, ctx, target)
	if logs := servers[0].logTail(); strings.Contains(logs, "sk_test_51IvrpayRotationSecret") {
		t.Fatal("a server logged the processor secret")
	}
}

// chargeEveryStoredCard charges each stored card of the deployment with a
// payin config of its own, through the servers in turn.
func chargeEveryStoredCard(t *testing.T, ctx context.Context, target *loadtest.Target) {
	t.Helper()
	var ids []string
	for startKey := ""; ; {
		var page ivrpay.List[ivrpay.PaymentMethod]
		path := "/v1/payment_methods?limit=1000"
		if startKey != "" {
			path += "&start_key=" + startKey
		}
		if err := target.AdminClient().Do(ctx, "GET", path, nil, &page); err != nil {
			t.Fatal(err)
		}
		for _, pm := range page.Results {
			if pm.Status == ivrpay.PaymentMethodStatusActive {
				ids = append(ids, pm.ID)
			}
		}
		if len(page.Results) < 1000 || page.LastKey == "" {
			break
		}
		startKey = page.LastKey
	}
	if len(ids) < 50 {
		t.Fatalf("only %d stored cards; the load should have stored more", len(ids))
	}
	work := make(chan string)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failed []string
	for range 8 {
		wg.Go(func() {
			for id := range work {
				client := target.AdminClient()
				cfg, err := client.CreatePayinConfig(ctx, ivrpay.PayinConfigCreate{MerchantID: target.MerchantID,
					IdempotencyKey: "after-rotation-" + id, Amount: "700", CurrencyCode: "USD"})
				var p *ivrpay.Payin
				if err == nil {
					p, err = (&httpapi.Client{BaseURL: client.BaseURL, APIKey: client.APIKey, HTTP: client.HTTP}).ChargePaymentMethod(ctx, id, cfg.ID)
				}
				if err != nil || p.Status == ivrpay.PayinStatusFailed || p.Status == ivrpay.PayinStatusCreated {
					mu.Lock()
					failed = append(failed, fmt.Sprintf("%s: %v %v", id, err, p))
					mu.Unlock()
				}
			}
		})
	}
	for _, id := range ids {
		work <- id
	}
	close(work)
	wg.Wait()
	if len(failed) > 0 {
		t.Fatalf("%d of %d stored cards could not be charged after the rotation, e.g. %s", len(failed), len(ids), failed[0])
	}
	t.Logf("charged all %d stored cards after the rotation and the restart", len(ids))
}

// vaultKeyID is the id the vault gives a key in its ciphertexts.
func vaultKeyID(t *testing.T, key []byte) string {
	t.Helper()
	v, err := vault.New(key)
	if err != nil {
		t.Fatal(err)
	}
	return v.KeyID()
}
