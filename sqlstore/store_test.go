package sqlstore_test

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/ivrpay/ivrpay"
	"github.com/ivrpay/ivrpay/payments/paymentstest"
	"github.com/ivrpay/ivrpay/sqlstore"
)

func TestPlatforms(t *testing.T) {
	forEngine(t, func(t *testing.T, engine string) {
		s := paymentstest.Open(t, engine, paymentstest.Options(t))
		ctx := boundedContext(t)

		empty, err := s.Empty(ctx)
		if err != nil || !empty {
			t.Fatalf("Empty() on a new database = %v, %v; want true", empty, err)
		}
		_, _, err = s.CreatePlatform(ctx, "", false)
		wantCode(t, err, ivrpay.EINVALID)

		p, admin, err := s.CreatePlatform(ctx, "Acme", false)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(p.ID, "sbx_plt_") || p.Name != "Acme" || p.IVRPayments || p.MinAPIVersion != ivrpay.APIVersion20241016 {
			t.Fatalf("new platform = %+v; want sbx_plt_ id, IVR off, minimum API version 2024-10-16", p)
		}
		if admin.PlatformID != p.ID || admin.Secret == "" || admin.Platform == nil || admin.Platform.ID != p.ID {
			t.Fatalf("admin key = %+v; want a secret and the platform", admin)
		}
		if want := ivrpay.AdminStatements(p.ID); !jsonEqual(admin.Statements, want) {
			t.Fatalf("admin statements = %s, want %s", mustJSON(admin.Statements), mustJSON(want))
		}
		if empty, err := s.Empty(ctx); err != nil || empty {
			t.Fatalf("Empty() after CreatePlatform = %v, %v; want false", empty, err)
		}

		for _, enabled := range []bool{true, false, true} {
			t.Run(fmt.Sprint("enabled=", enabled), func(t *testing.T) {
				got, err := s.SetPlatformIVR(ctx, p.ID, enabled)
				if err != nil {
					t.Fatal(err)
				}
				found, err := s.FindPlatform(ctx, p.ID)
				if err != nil {
					t.Fatal(err)
				}
				if got.IVRPayments != enabled || found.IVRPayments != enabled {
					t.Fatalf("after SetPlatformIVR(%v): returned %v, stored %v", enabled, got.IVRPayments, found.IVRPayments)
				}
				// The authenticated key sees the platform as it is now.
				if k := authenticate(t, s, admin.Secret); k.Platform.IVRPayments != enabled {
					t.Fatalf("Authenticate after SetPlatformIVR(%v) loaded ivr_payments %v", enabled, k.Platform.IVRPayments)
				}
			})
		}
		_, err = s.SetPlatformIVR(ctx, "sbx_plt_doesnotexist", true)
		wantCode(t, err, ivrpay.ENOTFOUND)

		for _, tc := range []struct {
			version ivrpay.APIVersion
			code    string
		}{
			{ivrpay.APIVersion20231201, ""},
			{ivrpay.APIVersion20230101, ""},
			{ivrpay.APIVersion20241016, ""},
			{"2022-01-01", ivrpay.EINVALID},
			{"latest", ivrpay.EINVALID},
			{"", ivrpay.EINVALID},
		} {
			t.Run(string(tc.version), func(t *testing.T) {
				got, err := s.SetPlatformMinAPIVersion(ctx, p.ID, tc.version)
				if tc.code != "" {
					wantCode(t, err, tc.code)
					if ivrpay.ErrorField(err) == "" && !strings.Contains(ivrpay.ErrorMessage(err), "version") {
						t.Errorf("error for version %q does not say what is wrong: %v", tc.version, err)
					}
					return
				}
				if err != nil {
					t.Fatalf("SetPlatformMinAPIVersion(%s): %v", tc.version, err)
				}
				found, _ := s.FindPlatform(ctx, p.ID)
				if got.MinAPIVersion != tc.version || found.MinAPIVersion != tc.version {
					t.Fatalf("min API version = %s (stored %s), want %s", got.MinAPIVersion, found.MinAPIVersion, tc.version)
				}
			})
		}
		// A refused version leaves the stored one alone.
		if found, _ := s.FindPlatform(ctx, p.ID); found.MinAPIVersion != ivrpay.APIVersion20241016 {
			t.Fatalf("after refused versions, min API version = %s", found.MinAPIVersion)
		}
		_, err = s.SetPlatformMinAPIVersion(ctx, "sbx_plt_doesnotexist", ivrpay.APIVersion20231201)
		wantCode(t, err, ivrpay.ENOTFOUND)
	})
}

func TestMerchants(t *testing.T) {
	forEngine(t, func(t *testing.T, engine string) {
		t.Run("sandbox merchants are ACTIVE at once", func(t *testing.T) {
			t.Parallel()
			b := setup(t, engine)
			m, err := b.s.CreateMerchant(b.adminCtx, ivrpay.MerchantCreate{Name: "Second Shop", DBAName: "2nd", Email: "shop@example.com"})
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(m.ID, "sbx_mid_") || m.Status != ivrpay.MerchantStatusActive || m.PlatformID != b.platform.ID {
				t.Fatalf("merchant = %+v", m)
			}
			found, err := b.s.FindMerchant(b.adminCtx, m.ID)
			if err != nil {
				t.Fatal(err)
			}
			if found.Name != "Second Shop" || found.DBAName != "2nd" || found.Email != "shop@example.com" || found.Status != ivrpay.MerchantStatusActive {
				t.Fatalf("found merchant = %+v", found)
			}
			_, err = b.s.CreateMerchant(b.adminCtx, ivrpay.MerchantCreate{})
			wantCode(t, err, ivrpay.EINVALID)
			// The IVR key cannot create merchants.
			_, err = b.s.CreateMerchant(b.ivrCtx, ivrpay.MerchantCreate{Name: "Nope"})
			wantCode(t, err, ivrpay.EFORBIDDEN)
			if !strings.Contains(ivrpay.ErrorMessage(err), "merchant:create") {
				t.Errorf("403 does not name merchant:create: %v", err)
			}
		})
		t.Run("production merchants wait for the operator", func(t *testing.T) {
			t.Parallel()
			b := setup(t, engine, func(o *paymentstest.Config) { o.Mode = ivrpay.ModeProduction })
			if strings.HasPrefix(b.platform.ID, "sbx_") || !strings.HasPrefix(b.admin.ID, "api_") || !strings.HasPrefix(b.ivrKey.MaskedSecret, "apikey_") {
				t.Fatalf("production ids carry a sandbox prefix: %s %s %s", b.platform.ID, b.admin.ID, b.ivrKey.MaskedSecret)
			}
			m := b.merchant
			if m.Status != ivrpay.MerchantStatusPending || !strings.HasPrefix(m.ID, "mid_") {
				t.Fatalf("production merchant = %+v, want PENDING with a mid_ id", m)
			}
			in := ivrpay.PayinConfigCreate{MerchantID: m.ID, IdempotencyKey: "pending-1", Amount: "1000", CurrencyCode: "USD"}
			_, err := b.s.CreatePayinConfig(b.adminCtx, in)
			wantCode(t, err, ivrpay.EINVALID)
			if ivrpay.ErrorField(err) != "merchant_id" {
				t.Errorf("payin config for a PENDING merchant: field = %q, want merchant_id", ivrpay.ErrorField(err))
			}
			got, err := b.s.ActivateMerchant(boundedContext(t), m.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.Status != ivrpay.MerchantStatusActive {
				t.Fatalf("ActivateMerchant: status %s", got.Status)
			}
			// The refused request did not use up its idempotency key.
			cfg, err := b.s.CreatePayinConfig(b.adminCtx, in)
			if err != nil {
				t.Fatalf("payin config after activation: %v", err)
			}
			if !strings.HasPrefix(cfg.ID, "cfg_") {
				t.Fatalf("production config id %s", cfg.ID)
			}
			_, err = b.s.ActivateMerchant(boundedContext(t), "mid_doesnotexist")
			wantCode(t, err, ivrpay.ENOTFOUND)
		})
	})
}

var (
	sandboxSecret = regexp.MustCompile(`^sbx_apikey_[0-9a-f]{64}$`)
	sandboxMasked = regexp.MustCompile(`^sbx_apikey_[0-9a-f]{8}\*\*\*\*[0-9a-f]{8}$`)
)

func TestAPIKeys(t *testing.T) {
	forEngine(t, func(t *testing.T, engine string) {
		b := setup(t, engine)
		s, ctx := b.s, boundedContext(t)

		statements, err := ivrpay.ParseStatements(json.RawMessage(fmt.Sprintf(
			`[{"permissions":["payin:create","payin:read"],"constraints":{"platform":{"platform_id":%q},"merchant":{"merchant_id":%q}}}]`,
			b.platform.ID, b.merchant.ID)))
		if err != nil {
			t.Fatal(err)
		}
		k, err := s.CreateAPIKey(b.adminCtx, statements)
		if err != nil {
			t.Fatal(err)
		}
		secret := k.Secret
		if !sandboxSecret.MatchString(secret) {
			t.Fatalf("secret %q does not look like sbx_apikey_ + 64 hex", secret)
		}
		hexPart := strings.TrimPrefix(secret, "sbx_apikey_")
		if !sandboxMasked.MatchString(k.MaskedSecret) || k.MaskedSecret != "sbx_apikey_"+hexPart[:8]+"****"+hexPart[56:] {
			t.Fatalf("masked secret %q does not show the first and last 8 hex characters of the secret", k.MaskedSecret)
		}
		if k.Status != ivrpay.APIKeyStatusEnabled || k.PlatformID != b.platform.ID || !strings.HasPrefix(k.ID, "sbx_api_") {
			t.Fatalf("new key = %+v", k)
		}
		if !jsonEqual(k.Statements, statements) {
			t.Fatalf("statements = %s, want %s", mustJSON(k.Statements), mustJSON(statements))
		}

		// The secret is shown once: never by Find or List.
		found, err := s.FindAPIKey(b.adminCtx, k.ID)
		if err != nil {
			t.Fatal(err)
		}
		if found.Secret != "" || found.MaskedSecret != k.MaskedSecret || !jsonEqual(found.Statements, statements) {
			t.Fatalf("FindAPIKey = %+v; want no secret, the same mask and statements", found)
		}
		list, err := s.ListAPIKeys(b.adminCtx, ivrpay.Page{})
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, lk := range list.Results {
			if lk.Secret != "" {
				t.Fatalf("ListAPIKeys returned the secret of %s", lk.ID)
			}
			ids = append(ids, lk.ID)
		}
		if want := []string{b.admin.ID, b.ivrKey.ID, k.ID}; !sameSet(ids, want) || list.TotalResults != 3 {
			t.Fatalf("ListAPIKeys = %v (total %d), want %v", ids, list.TotalResults, want)
		}

		// Authenticate by secret, with the platform loaded.
		got := authenticate(t, s, secret)
		if got.ID != k.ID || got.Platform.ID != b.platform.ID || got.Secret != "" {
			t.Fatalf("Authenticate = %+v", got)
		}
		for _, bad := range []string{"", "sbx_apikey_", secret + "0", strings.ToUpper(secret), k.MaskedSecret, k.ID} {
			t.Run(fmt.Sprintf("%q", bad), func(t *testing.T) {
				_, err := s.Authenticate(ctx, bad)
				wantCode(t, err, ivrpay.EUNAUTHORIZED)
			})
		}

		// Disabled keys do not authenticate; enabled again they do.
		if dk, err := s.SetAPIKeyStatus(b.adminCtx, k.ID, ivrpay.APIKeyStatusDisabled); err != nil || dk.Status != ivrpay.APIKeyStatusDisabled || dk.Secret != "" {
			t.Fatalf("disable: %+v, %v", dk, err)
		}
		_, err = s.Authenticate(ctx, secret)
		wantCode(t, err, ivrpay.EUNAUTHORIZED)
		if _, err := s.SetAPIKeyStatus(b.adminCtx, k.ID, ivrpay.APIKeyStatusEnabled); err != nil {
			t.Fatal(err)
		}
		authenticate(t, s, secret)
		// The operator's disable too.
		if dk, err := s.DisableAPIKey(ctx, k.ID); err != nil || dk.Status != ivrpay.APIKeyStatusDisabled {
			t.Fatalf("DisableAPIKey: %+v, %v", dk, err)
		}
		_, err = s.Authenticate(ctx, secret)
		wantCode(t, err, ivrpay.EUNAUTHORIZED)
		_, err = s.DisableAPIKey(ctx, "sbx_api_doesnotexist")
		wantCode(t, err, ivrpay.ENOTFOUND)

		// Deleted keys neither authenticate nor show.
		k2 := createKey(t, s, b.adminCtx, platformStatement(b.platform.ID, "", "payin:read"))
		k2secret := k2.Secret
		if err := s.DeleteAPIKey(b.adminCtx, k2.ID); err != nil {
			t.Fatal(err)
		}
		_, err = s.Authenticate(ctx, k2secret)
		wantCode(t, err, ivrpay.EUNAUTHORIZED)
		_, err = s.FindAPIKey(b.adminCtx, k2.ID)
		wantCode(t, err, ivrpay.ENOTFOUND)
		list, err = s.ListAPIKeys(b.adminCtx, ivrpay.Page{})
		if err != nil {
			t.Fatal(err)
		}
		for _, lk := range list.Results {
			if lk.ID == k2.ID {
				t.Fatalf("ListAPIKeys shows deleted key %s", k2.ID)
			}
		}
		_, err = s.SetAPIKeyStatus(b.adminCtx, k2.ID, ivrpay.APIKeyStatusEnabled)
		wantCode(t, err, ivrpay.ENOTFOUND)
		if _, err := s.Authenticate(ctx, k2secret); ivrpay.ErrorCode(err) != ivrpay.EUNAUTHORIZED {
			t.Fatalf("a deleted key authenticates again after an enable attempt: %v", err)
		}

		// Only hashes are stored: no secret appears in api_keys, nor in any
		// other table.
		if n := count(t, s.DB(), `SELECT COUNT(*) FROM api_keys WHERE platform_id = $1`, b.platform.ID); n != 4 {
			t.Fatalf("%d api_keys rows, want 4 (admin, IVR, created, deleted)", n)
		}
		for table := range allColumns(t, s) {
			dump := tableDump(t, s, table)
			for _, sec := range []string{b.admin.Secret, b.ivrKey.Secret, secret, k2secret} {
				if strings.Contains(dump, strings.TrimPrefix(sec, "sbx_apikey_")) {
					t.Fatalf("table %s holds a key secret in the clear", table)
				}
			}
		}
	})
}

func TestAPIKeyEscalation(t *testing.T) {
	forEngine(t, func(t *testing.T, engine string) {
		b := setup(t, engine)
		other := setupOn(t, b.s, engine, b.opts)
		m2, err := b.s.CreateMerchant(b.adminCtx, ivrpay.MerchantCreate{Name: "Other Shop"})
		if err != nil {
			t.Fatal(err)
		}
		// keyAdmin may mint keys (a platform-level permission) but holds
		// payin permissions for one merchant only.
		keyAdmin := createKey(t, b.s, b.adminCtx,
			platformStatement(b.platform.ID, "", "api_key:create", "api_key:update"),
			platformStatement(b.platform.ID, b.merchant.ID, "payin:create", "payin:read"))
		keyAdminCtx := ivrpay.NewContextWithPrincipal(boundedContext(t), keyAdmin)
		merchantOnly := createKey(t, b.s, b.adminCtx, platformStatement(b.platform.ID, b.merchant.ID, "api_key:create", "payin:create"))
		merchantOnlyCtx := ivrpay.NewContextWithPrincipal(boundedContext(t), merchantOnly)
		for _, tc := range []struct {
			name       string
			ctx        context.Context
			statements []ivrpay.Statement
			code       string
		}{
			{"admin mints an IVR key", b.adminCtx, []ivrpay.Statement{platformStatement(b.platform.ID, "", "payin:create")}, ""},
			{"admin mints a merchant key", b.adminCtx, []ivrpay.Statement{platformStatement(b.platform.ID, m2.ID, "group#all")}, ""},
			{"admin cannot mint for another platform", b.adminCtx, []ivrpay.Statement{platformStatement(other.platform.ID, "", "payin:create")}, ivrpay.EFORBIDDEN},
			{"merchant of another platform", b.adminCtx, []ivrpay.Statement{platformStatement(b.platform.ID, other.merchant.ID, "payin:create")}, ivrpay.EINVALID},
			{"IVR key cannot mint keys", b.ivrCtx, []ivrpay.Statement{platformStatement(b.platform.ID, "", "payin:create")}, ivrpay.EFORBIDDEN},
			{"merchant key repeats its constraint", keyAdminCtx, []ivrpay.Statement{platformStatement(b.platform.ID, b.merchant.ID, "payin:create")}, ""},
			{"merchant key cannot drop its constraint", keyAdminCtx, []ivrpay.Statement{platformStatement(b.platform.ID, "", "payin:create")}, ivrpay.EFORBIDDEN},
			{"merchant key cannot switch merchant", keyAdminCtx, []ivrpay.Statement{platformStatement(b.platform.ID, m2.ID, "payin:create")}, ivrpay.EFORBIDDEN},
			{"merchant key cannot grant what it lacks", keyAdminCtx, []ivrpay.Statement{platformStatement(b.platform.ID, b.merchant.ID, "refund:create")}, ivrpay.EFORBIDDEN},
			{"merchant key cannot grant group#all", keyAdminCtx, []ivrpay.Statement{platformStatement(b.platform.ID, b.merchant.ID, "group#all")}, ivrpay.EFORBIDDEN},
			{"key admin passes on its platform-level permission", keyAdminCtx, []ivrpay.Statement{platformStatement(b.platform.ID, "", "api_key:create")}, ""},
			{"key admin cannot mix in a merchant permission without the merchant", keyAdminCtx, []ivrpay.Statement{platformStatement(b.platform.ID, "", "api_key:create", "payin:read")}, ivrpay.EFORBIDDEN},
			// API keys are platform-level objects: a merchant-constrained api_key:create grants nothing.
			{"merchant-constrained api_key:create", merchantOnlyCtx, []ivrpay.Statement{platformStatement(b.platform.ID, b.merchant.ID, "payin:create")}, ivrpay.EFORBIDDEN},
		} {
			t.Run(tc.name, func(t *testing.T) {
				k, err := b.s.CreateAPIKey(tc.ctx, tc.statements)
				if tc.code == "" {
					if err != nil {
						t.Errorf("%s: %v", tc.name, err)
					} else if k.Secret == "" {
						t.Errorf("%s: no secret", tc.name)
					}
					return
				}
				if ivrpay.ErrorCode(err) != tc.code {
					t.Errorf("%s: error %v, want code %s", tc.name, err, tc.code)
				}
			})
		}
		// A key cannot change a key that holds more than it does.
		_, err = b.s.SetAPIKeyStatus(keyAdminCtx, b.admin.ID, ivrpay.APIKeyStatusDisabled)
		wantCode(t, err, ivrpay.EFORBIDDEN)
		// Another platform's key is not found.
		_, err = b.s.FindAPIKey(other.adminCtx, b.admin.ID)
		wantCode(t, err, ivrpay.ENOTFOUND)
		err = b.s.DeleteAPIKey(other.adminCtx, b.ivrKey.ID)
		wantCode(t, err, ivrpay.ENOTFOUND)
		authenticate(t, b.s, b.ivrKey.Secret)
	})
}

func TestPayinConfigIdempotency(t *testing.T) {
	forEngine(t, func(t *testing.T, engine string) {
		b := setup(t, engine)
		s := b.s
		valid := func(key string) ivrpay.PayinConfigCreate {
			return ivrpay.PayinConfigCreate{MerchantID: b.merchant.ID, IdempotencyKey: key, Amount: "1999", CurrencyCode: "USD",
				BillingContact: &ivrpay.BillingContact{Name: "Ada", PostalCode: "94111"}, Metadata: json.RawMessage(`{"order": "A-7"}`)}
		}

		first, err := s.CreatePayinConfig(b.adminCtx, valid("same"))
		if err != nil {
			t.Fatal(err)
		}
		if first.Amount != 1999 || first.MerchantID != b.merchant.ID || first.Merchant.Name != "Acme Shop" || first.Payin != nil ||
			first.ProcessingMode != ivrpay.ProcessingModeAuthorizeAndCapture || first.BillingContact == nil || first.BillingContact.PostalCode != "94111" {
			t.Fatalf("config = %+v", first)
		}
		again, err := s.CreatePayinConfig(b.adminCtx, valid("same"))
		if err != nil || again.ID != first.ID {
			t.Fatalf("same key, same body: %v, %v; want config %s", again, err, first.ID)
		}
		// The same body written differently (JSON spacing, the default mode spelled out) is the same request.
		same := valid("same")
		same.Metadata = json.RawMessage(`{"order":"A-7"}`)
		same.ProcessingMode = ivrpay.ProcessingModeAuthorizeAndCapture
		if again, err := s.CreatePayinConfig(b.adminCtx, same); err != nil || again.ID != first.ID {
			t.Fatalf("same key, equivalent body: %v, %v; want config %s", again, err, first.ID)
		}
		for name, change := range map[string]func(*ivrpay.PayinConfigCreate){
			"amount":   func(c *ivrpay.PayinConfigCreate) { c.Amount = "2000" },
			"metadata": func(c *ivrpay.PayinConfigCreate) { c.Metadata = json.RawMessage(`{"order":"A-8"}`) },
			"billing":  func(c *ivrpay.PayinConfigCreate) { c.BillingContact = nil },
			"mode":     func(c *ivrpay.PayinConfigCreate) { c.ProcessingMode = ivrpay.ProcessingModeAuthorize },
		} {
			t.Run(name, func(t *testing.T) {
				in := valid("same")
				change(&in)
				_, err := s.CreatePayinConfig(b.adminCtx, in)
				if ivrpay.ErrorCode(err) != ivrpay.ECONFLICT {
					t.Errorf("same key, different %s: %v; want %s", name, err, ivrpay.ECONFLICT)
				}
			})
		}

		// A 400 does not use up its key.
		for name, change := range map[string]func(*ivrpay.PayinConfigCreate){
			"zero amount":      func(c *ivrpay.PayinConfigCreate) { c.Amount = "0" },
			"decimal amount":   func(c *ivrpay.PayinConfigCreate) { c.Amount = "10.5" },
			"currency":         func(c *ivrpay.PayinConfigCreate) { c.CurrencyCode = "EUR" },
			"metadata":         func(c *ivrpay.PayinConfigCreate) { c.Metadata = json.RawMessage(`[1]`) },
			"unknown merchant": func(c *ivrpay.PayinConfigCreate) { c.MerchantID = "sbx_mid_doesnotexist" },
			"processing mode":  func(c *ivrpay.PayinConfigCreate) { c.ProcessingMode = "LATER" },
			"billing country":  func(c *ivrpay.PayinConfigCreate) { c.BillingContact = &ivrpay.BillingContact{Country: "USA"} },
			"long postal code": func(c *ivrpay.PayinConfigCreate) {
				c.BillingContact = &ivrpay.BillingContact{PostalCode: strings.Repeat("9", 16)}
			},
			"missing currency":  func(c *ivrpay.PayinConfigCreate) { c.CurrencyCode = "" },
			"too large amount":  func(c *ivrpay.PayinConfigCreate) { c.Amount = "100000001" },
			"non-number amount": func(c *ivrpay.PayinConfigCreate) { c.Amount = "ten" },
		} {
			t.Run(name, func(t *testing.T) {
				key := "after-400-" + strings.ReplaceAll(name, " ", "-")
				bad := valid(key)
				change(&bad)
				_, err := s.CreatePayinConfig(b.adminCtx, bad)
				if ivrpay.ErrorCode(err) != ivrpay.EINVALID {
					t.Errorf("%s: %v; want %s", name, err, ivrpay.EINVALID)
					return
				}
				cfg, err := s.CreatePayinConfig(b.adminCtx, valid(key))
				if err != nil {
					t.Errorf("%s: the valid request after a 400 with the same key: %v", name, err)
				} else if cfg.ID == first.ID {
					t.Errorf("%s: got the config of another key", name)
				}
			})
		}
		// A 403 does not use it up either, and the IVR key cannot create configs at all.
		_, err = s.CreatePayinConfig(b.ivrCtx, valid("after-403"))
		wantCode(t, err, ivrpay.EFORBIDDEN)
		if !strings.Contains(ivrpay.ErrorMessage(err), "payin_config:create") {
			t.Errorf("403 does not name payin_config:create: %v", err)
		}
		if _, err := s.CreatePayinConfig(b.adminCtx, valid("after-403")); err != nil {
			t.Fatal(err)
		}

		// Keys are scoped to the platform.
		other := setupOn(t, s, engine, b.opts)
		oc, err := s.CreatePayinConfig(other.adminCtx, ivrpay.PayinConfigCreate{MerchantID: other.merchant.ID, IdempotencyKey: "same", Amount: "5", CurrencyCode: "USD"})
		if err != nil || oc.ID == first.ID {
			t.Fatalf("same key on another platform: %v, %v", oc, err)
		}
		_, err = s.FindPayinConfig(other.adminCtx, first.ID)
		wantCode(t, err, ivrpay.ENOTFOUND)

		// Concurrent creations with one key make one config.
		sameIDAtOnce(t, 10, func() (string, error) {
			c, err := s.CreatePayinConfig(b.adminCtx, valid("concurrent"))
			if err != nil {
				return "", err
			}
			return c.ID, nil
		})
		if got := count(t, s.DB(), `SELECT COUNT(*) FROM payin_configs WHERE idempotency_key LIKE '%concurrent'`); got != 1 {
			t.Fatalf("%d payin configs for one idempotency key", got)
		}
	})
}

// sameIDAtOnce runs create n times at the same moment and fails the test
// unless every call succeeds with the same id: an idempotency key used
// concurrently makes one object.
func sameIDAtOnce(t testing.TB, n int, create func() (id string, err error)) {
	t.Helper()
	ids := make([]string, n)
	errs := make([]error, n)
	paymentstest.AllAtOnce(n, func(i int) { ids[i], errs[i] = create() })
	for i := range n {
		if errs[i] != nil || ids[i] != ids[0] {
			t.Fatalf("concurrent create %d: id %s, err %v; want id %s", i, ids[i], errs[i], ids[0])
		}
	}
}

func TestPaymentMethodConfigIdempotency(t *testing.T) {
	forEngine(t, func(t *testing.T, engine string) {
		b := setup(t, engine)
		s := b.s
		valid := func(key string) ivrpay.PaymentMethodConfigCreate {
			return ivrpay.PaymentMethodConfigCreate{PlatformID: b.platform.ID, IdempotencyKey: key, MerchantID: b.merchant.ID,
				BillingContact: &ivrpay.BillingContact{Name: "Ada"}, Metadata: json.RawMessage(`{"customer":"c-1"}`)}
		}
		first, err := s.CreatePaymentMethodConfig(b.adminCtx, valid("same"))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(first.ID, "sbx_pmc_") || first.PaymentMethod != nil || first.MerchantID != b.merchant.ID {
			t.Fatalf("config = %+v", first)
		}
		if again, err := s.CreatePaymentMethodConfig(b.adminCtx, valid("same")); err != nil || again.ID != first.ID {
			t.Fatalf("same key, same body: %v, %v", again, err)
		}
		// Keys are scoped: the same key on a platform-level config is another config.
		pl := valid("same")
		pl.MerchantID = ""
		if c, err := s.CreatePaymentMethodConfig(b.adminCtx, pl); err != nil || c.ID == first.ID || c.IdempotencyKey != "same" {
			t.Fatalf("same key, platform-level: %+v, %v; want a config of its own", c, err)
		}
		for name, change := range map[string]func(*ivrpay.PaymentMethodConfigCreate){
			"metadata": func(c *ivrpay.PaymentMethodConfigCreate) { c.Metadata = nil },
			"billing":  func(c *ivrpay.PaymentMethodConfigCreate) { c.BillingContact = &ivrpay.BillingContact{Name: "Bob"} },
		} {
			t.Run(name, func(t *testing.T) {
				in := valid("same")
				change(&in)
				_, err := s.CreatePaymentMethodConfig(b.adminCtx, in)
				if ivrpay.ErrorCode(err) != ivrpay.ECONFLICT {
					t.Errorf("same key, different %s: %v; want %s", name, err, ivrpay.ECONFLICT)
				}
			})
		}
		for name, change := range map[string]func(*ivrpay.PaymentMethodConfigCreate){
			"metadata":         func(c *ivrpay.PaymentMethodConfigCreate) { c.Metadata = json.RawMessage(`"x"`) },
			"unknown merchant": func(c *ivrpay.PaymentMethodConfigCreate) { c.MerchantID = "sbx_mid_doesnotexist" },
			"billing country":  func(c *ivrpay.PaymentMethodConfigCreate) { c.BillingContact = &ivrpay.BillingContact{Country: "us"} },
			"long key":         func(c *ivrpay.PaymentMethodConfigCreate) { c.IdempotencyKey += strings.Repeat("k", 256) },
		} {
			t.Run(name, func(t *testing.T) {
				key := "after-400-" + strings.ReplaceAll(name, " ", "-")
				bad := valid(key)
				change(&bad)
				_, err := s.CreatePaymentMethodConfig(b.adminCtx, bad)
				if ivrpay.ErrorCode(err) != ivrpay.EINVALID {
					t.Errorf("%s: %v; want %s", name, err, ivrpay.EINVALID)
					return
				}
				if _, err := s.CreatePaymentMethodConfig(b.adminCtx, valid(key)); err != nil {
					t.Errorf("%s: the valid request after a 400 with the same key: %v", name, err)
				}
			})
		}
		_, err = s.CreatePaymentMethodConfig(b.ivrCtx, valid("ivr"))
		wantCode(t, err, ivrpay.EFORBIDDEN)

		sameIDAtOnce(t, 10, func() (string, error) {
			c, err := s.CreatePaymentMethodConfig(b.adminCtx, valid("concurrent"))
			if err != nil {
				return "", err
			}
			return c.ID, nil
		})
		if got := count(t, s.DB(), `SELECT COUNT(*) FROM payment_method_configs WHERE idempotency_key LIKE '%concurrent'`); got != 1 {
			t.Fatalf("%d payment method configs for one idempotency key", got)
		}
	})
}

func TestCursorPagination(t *testing.T) {
	forEngine(t, func(t *testing.T, engine string) {
		b := setup(t, engine)
		want := []string{b.merchant.ID}
		for i := range 7 {
			m, err := b.s.CreateMerchant(b.adminCtx, ivrpay.MerchantCreate{Name: fmt.Sprintf("Shop %d", i)})
			if err != nil {
				t.Fatal(err)
			}
			want = append(want, m.ID)
		}
		// Another platform's merchants never show.
		setupOn(t, b.s, engine, b.opts)

		for _, limit := range []int{1, 3, 8, 100} {
			t.Run(fmt.Sprint("limit=", limit), func(t *testing.T) {
				var got []string
				page := ivrpay.Page{Limit: limit}
				for pages := 0; ; pages++ {
					if pages > len(want)+1 {
						t.Fatalf("limit %d: pagination does not end", limit)
					}
					l, err := b.s.ListMerchants(b.adminCtx, page)
					if err != nil {
						t.Fatal(err)
					}
					if l.TotalResults != len(want) {
						t.Fatalf("limit %d: total_results = %d, want %d", limit, l.TotalResults, len(want))
					}
					if len(l.Results) > limit {
						t.Fatalf("limit %d: page of %d", limit, len(l.Results))
					}
					if len(l.Results) == 0 {
						if l.LastKey != "" {
							t.Fatalf("limit %d: empty page with last_key %q", limit, l.LastKey)
						}
						break
					}
					if l.LastKey != l.Results[len(l.Results)-1].ID {
						t.Fatalf("limit %d: last_key %q is not the last id of the page", limit, l.LastKey)
					}
					for _, m := range l.Results {
						got = append(got, m.ID)
					}
					if len(l.Results) < limit {
						break
					}
					page.StartKey = l.LastKey
				}
				if !slices.IsSorted(got) || len(slices.Compact(slices.Clone(got))) != len(got) {
					t.Fatalf("limit %d: ids not strictly increasing: %v", limit, got)
				}
				if !sameSet(got, want) {
					t.Fatalf("limit %d: paged ids %v, want %v", limit, got, want)
				}
			})
		}
		if limit3 := pageSizes(t, b, 3); !slices.Equal(limit3, []int{3, 3, 2}) {
			t.Fatalf("page sizes with limit 3 = %v, want [3 3 2]", limit3)
		}
	})
}

func pageSizes(t *testing.T, b *bundle, limit int) []int {
	t.Helper()
	var sizes []int
	page := ivrpay.Page{Limit: limit}
	for {
		l, err := b.s.ListMerchants(b.adminCtx, page)
		if err != nil {
			t.Fatal(err)
		}
		if len(l.Results) == 0 {
			return sizes
		}
		sizes = append(sizes, len(l.Results))
		page.StartKey = l.LastKey
	}
}

func TestListScoping(t *testing.T) {
	forEngine(t, func(t *testing.T, engine string) {
		b := setup(t, engine)
		s := b.s
		m1 := b.merchant
		m2, err := s.CreateMerchant(b.adminCtx, ivrpay.MerchantCreate{Name: "Second Shop"})
		if err != nil {
			t.Fatal(err)
		}
		payinOf := map[string]string{}
		for i, m := range []*ivrpay.Merchant{m1, m2, m1} {
			cfg, err := s.CreatePayinConfig(b.adminCtx, ivrpay.PayinConfigCreate{MerchantID: m.ID, IdempotencyKey: fmt.Sprint("scoping-", i), Amount: "1000", CurrencyCode: "USD"})
			if err != nil {
				t.Fatal(err)
			}
			res := process(t, b.pay, b.ivrCtx, chargeReq(cfg.ID, fmt.Sprint("scoping-tx-", i), visaOK, 1000))
			mustSucceed(t, res)
			payinOf[res.ID] = m.ID
		}
		other := setupOn(t, s, engine, b.opts)
		ocfg := other.payinConfig(t, 1000)
		ores := process(t, other.pay, other.ivrCtx, chargeReq(ocfg.ID, "other-tx", visaOK, 1000))
		mustSucceed(t, ores)

		m1Key := createKey(t, s, b.adminCtx, platformStatement(b.platform.ID, m1.ID, "payin:read", "merchant:read", "payin_config:read", "payment_method:read"))
		m1Ctx := ivrpay.NewContextWithPrincipal(boundedContext(t), m1Key)

		payins, err := s.ListPayins(m1Ctx, ivrpay.PayinFilter{})
		if err != nil {
			t.Fatal(err)
		}
		if payins.TotalResults != 2 || len(payins.Results) != 2 {
			t.Fatalf("merchant key lists %d payins (total %d), want 2", len(payins.Results), payins.TotalResults)
		}
		for _, p := range payins.Results {
			if p.MerchantID != m1.ID {
				t.Fatalf("merchant key lists payin %s of merchant %s", p.ID, p.MerchantID)
			}
		}
		// Filtering by the excluded merchant gives nothing, not its payins.
		if l, err := s.ListPayins(m1Ctx, ivrpay.PayinFilter{MerchantID: m2.ID}); err != nil || len(l.Results) != 0 {
			t.Fatalf("merchant key filtering on another merchant: %v, %v", l, err)
		}
		all, err := s.ListPayins(b.adminCtx, ivrpay.PayinFilter{})
		if err != nil {
			t.Fatal(err)
		}
		if all.TotalResults != 3 {
			t.Fatalf("admin lists %d payins, want 3 (none of the other platform)", all.TotalResults)
		}
		for _, f := range []ivrpay.PayinFilter{{Source: ivrpay.PayinSourceIVR}, {Status: ivrpay.PayinStatusProcessing}, {MerchantID: m2.ID}} {
			t.Run(fmt.Sprintf("%+v", f), func(t *testing.T) {
				l, err := s.ListPayins(b.adminCtx, f)
				if err != nil {
					t.Fatal(err)
				}
				wantN := 3
				if f.MerchantID != "" {
					wantN = 1
				}
				if l.TotalResults != wantN {
					t.Fatalf("filter %+v: %d payins, want %d", f, l.TotalResults, wantN)
				}
			})
		}
		for _, f := range []ivrpay.PayinFilter{{Status: ivrpay.PayinStatusFailed}, {Source: ivrpay.PayinSourceAPIDirect}} {
			t.Run(fmt.Sprintf("%+v", f), func(t *testing.T) {
				if l, err := s.ListPayins(b.adminCtx, f); err != nil || l.TotalResults != 0 {
					t.Fatalf("filter %+v: %v, %v; want none", f, l, err)
				}
			})
		}
		for _, f := range []ivrpay.PayinFilter{{Status: "DONE"}, {Source: "PHONE"}} {
			t.Run(fmt.Sprintf("%+v", f), func(t *testing.T) {
				_, err := s.ListPayins(b.adminCtx, f)
				wantCode(t, err, ivrpay.EINVALID)
			})
		}

		merchants, err := s.ListMerchants(m1Ctx, ivrpay.Page{})
		if err != nil {
			t.Fatal(err)
		}
		if len(merchants.Results) != 1 || merchants.Results[0].ID != m1.ID || merchants.TotalResults != 1 {
			t.Fatalf("merchant key lists merchants %v", merchants.Results)
		}

		// Without the read permission: 403 naming it.
		for name, call := range map[string]func() error{
			"payin:read":          func() error { _, err := s.ListPayins(b.ivrCtx, ivrpay.PayinFilter{}); return err },
			"merchant:read":       func() error { _, err := s.ListMerchants(b.ivrCtx, ivrpay.Page{}); return err },
			"payment_method:read": func() error { _, err := s.ListPaymentMethods(b.ivrCtx, ivrpay.Page{}); return err },
			"api_key:read":        func() error { _, err := s.ListAPIKeys(b.ivrCtx, ivrpay.Page{}); return err },
		} {
			t.Run(name, func(t *testing.T) {
				err := call()
				if ivrpay.ErrorCode(err) != ivrpay.EFORBIDDEN || !strings.Contains(ivrpay.ErrorMessage(err), name) {
					t.Errorf("list without %s: %v; want a 403 naming it", name, err)
				}
			})
		}
		// A merchant key never lists platform-level objects.
		_, err = s.ListAPIKeys(m1Ctx, ivrpay.Page{})
		wantCode(t, err, ivrpay.EFORBIDDEN)

		// Single reads: another platform's object is not found; an excluded merchant's is forbidden.
		var m2Payin string
		for id, m := range payinOf {
			if m == m2.ID {
				m2Payin = id
			}
		}
		_, err = s.FindPayin(m1Ctx, m2Payin)
		wantCode(t, err, ivrpay.EFORBIDDEN)
		if msg := ivrpay.ErrorMessage(err); !strings.Contains(msg, "payin:read") || !strings.Contains(msg, m2.ID) {
			t.Errorf("403 %q does not name payin:read and the merchant", msg)
		}
		_, err = s.FindPayin(m1Ctx, ores.ID)
		wantCode(t, err, ivrpay.ENOTFOUND)
		_, err = s.FindPayin(b.adminCtx, ores.ID)
		wantCode(t, err, ivrpay.ENOTFOUND)
		_, err = s.FindPayin(b.adminCtx, "sbx_pyi_doesnotexist")
		wantCode(t, err, ivrpay.ENOTFOUND)
		_, err = s.FindMerchant(m1Ctx, m2.ID)
		wantCode(t, err, ivrpay.EFORBIDDEN)
		_, err = s.FindMerchant(m1Ctx, other.merchant.ID)
		wantCode(t, err, ivrpay.ENOTFOUND)
		_, err = s.FindPayinConfig(m1Ctx, ocfg.ID)
		wantCode(t, err, ivrpay.ENOTFOUND)
		for id, m := range payinOf {
			p, err := s.FindPayin(m1Ctx, id)
			if m == m1.ID && (err != nil || p.ID != id) {
				t.Errorf("merchant key reading its own payin %s: %v", id, err)
			}
		}
		// An IVR key can pay but not read.
		_, err = s.FindPayin(b.ivrCtx, m2Payin)
		wantCode(t, err, ivrpay.EFORBIDDEN)
	})
}

// tableDump returns every row of table as text, for "is this string
// stored anywhere" checks.
func tableDump(t *testing.T, s *sqlstore.Store, table string) string {
	t.Helper()
	var sb strings.Builder
	_, rows := paymentstest.ReadRows(t, s.DB(), `SELECT * FROM `+table)
	for _, vals := range rows {
		for _, v := range vals {
			switch x := v.(type) {
			case []byte:
				sb.Write(x)
			default:
				fmt.Fprint(&sb, x)
			}
			sb.WriteByte('\x00')
		}
		sb.WriteByte('\n')
	}
	return sb.String()
}

func jsonEqual(a, b any) bool { return mustJSON(a) == mustJSON(b) }

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func sameSet(a, b []string) bool {
	x, y := slices.Clone(a), slices.Clone(b)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(x, y)
}
