package ivrpay

import (
	"slices"
	"testing"
)

// Permission evaluation (SPEC §1.1) as a function of values: a credential
// whose grants come from group#payment_component reaches only what its
// payer is paying.

const (
	permPlatform = "sbx_plt_a"
	permMerchant = "sbx_mid_m"
	permOther    = "sbx_mid_n"
	permSession  = "sbx_ses_alice"
	permBob      = "sbx_ses_bob"
	permConfig   = "sbx_cfg_alice"
)

// componentSession is OpenEMR's session: group#payment_component for one merchant.
func componentSession(id string, extra ...Statement) *APIKey {
	st := ruleStatement(permMerchant, PermissionPaymentComponent)
	return &APIKey{ID: id, PlatformID: permPlatform, Session: true, Statements: append([]Statement{st}, extra...)}
}

func TestAllowsPaymentComponent(t *testing.T) {
	t.Parallel()
	alices := Object{PlatformID: permPlatform, MerchantID: permMerchant, PayinConfigID: permConfig, CreatedBy: permSession}
	bobs := alices
	bobs.CreatedBy = permBob
	unrecorded := alices
	unrecorded.CreatedBy = "" // made before the creator was recorded
	otherMerchant := alices
	otherMerchant.MerchantID = permOther
	cfg := Object{PlatformID: permPlatform, MerchantID: permMerchant, PayinConfigID: permConfig}
	narrowed := ruleStatement(permMerchant, PermissionPaymentComponent)
	narrowed.Constraints.PayinConfig = &PayinConfigConstraint{PayinConfigID: permConfig}
	cases := []struct {
		name       string
		key        *APIKey
		permission string
		obj        Object
		want       bool
	}{
		{"a payin it made", componentSession(permSession), "payin:read", alices, true},
		{"another payer's payin", componentSession(permSession), "payin:read", bobs, false},
		{"a payin with no recorded creator", componentSession(permSession), "payin:read", unrecorded, false},
		{"a card it stored", componentSession(permSession), "payment_method:read", Object{PlatformID: permPlatform, MerchantID: permMerchant, CreatedBy: permSession}, true},
		{"another payer's card", componentSession(permSession), "payment_method:read", Object{PlatformID: permPlatform, MerchantID: permMerchant, CreatedBy: permBob}, false},
		{"its own payin of another merchant", componentSession(permSession), "payin:read", otherMerchant, false},
		{"a config of its merchant, by id", componentSession(permSession), "payin_config:read", cfg, true},
		{"making a payin on a config of its merchant", componentSession(permSession), "payin:create", cfg, true},
		{"a permission outside the group", componentSession(permSession), "refund:create", alices, false},
		{"a payin it made, config-narrowed", componentSession(permSession, narrowed), "payin:read", alices, true},
		{"mixed: payin:read by name on the merchant reaches every payer's payin", componentSession(permSession, ruleStatement(permMerchant, "payin:read")), "payin:read", bobs, true},
		{"mixed: a named grant of another permission changes nothing", componentSession(permSession, ruleStatement(permMerchant, "merchant:read")), "payin:read", bobs, false},
		{"mixed: group#payment_component beside a named grant in one statement", &APIKey{ID: permSession, PlatformID: permPlatform,
			Statements: []Statement{ruleStatement(permMerchant, PermissionPaymentComponent, "payin:read")}}, "payin:read", bobs, true},
		{"group#all", &APIKey{ID: permSession, PlatformID: permPlatform, Statements: AdminStatements(permPlatform)}, "payin:read", bobs, true},
		{"an API key with the group is held to the same rule", &APIKey{ID: "sbx_api_component", PlatformID: permPlatform,
			Statements: []Statement{ruleStatement(permMerchant, PermissionPaymentComponent)}}, "payin:read", alices, false},
		{"no key", nil, "payin:read", alices, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := Allows(c.key, c.permission, c.obj); got != c.want {
				t.Errorf("Allows(%s on %+v) = %v, want %v", c.permission, c.obj, got, c.want)
			}
		})
	}
}

func TestAuthorizeObjectHidesWhatAPayerMayNotRead(t *testing.T) {
	t.Parallel()
	bobs := Object{PlatformID: permPlatform, MerchantID: permMerchant, PayinConfigID: permConfig, CreatedBy: permBob}
	otherMerchant := Object{PlatformID: permPlatform, MerchantID: permOther}
	reader := &APIKey{ID: "sbx_api_reader", PlatformID: permPlatform, Statements: []Statement{ruleStatement(permMerchant, "payin:read", "payin_config:read")}}
	cases := []struct {
		name       string
		key        *APIKey
		permission string
		obj        Object
		want       string
	}{
		{"another payer's payin", componentSession(permSession), "payin:read", bobs, ENOTFOUND},
		{"another merchant's payin", componentSession(permSession), "payin:read", otherMerchant, ENOTFOUND},
		{"another merchant's config", componentSession(permSession), "payin_config:read", otherMerchant, ENOTFOUND},
		{"a platform-level payment method config", componentSession(permSession), "payment_method_config:read", Object{PlatformID: permPlatform}, ENOTFOUND},
		{"another platform's payin", componentSession(permSession), "payin:read", Object{PlatformID: "sbx_plt_b", MerchantID: permMerchant}, ENOTFOUND},
		{"a permission outside the group, another payer's payin", componentSession(permSession), "payin:update", bobs, ENOTFOUND},
		{"a permission outside the group, its own payin, is refused by name", componentSession(permSession), "payin:update",
			Object{PlatformID: permPlatform, MerchantID: permMerchant, CreatedBy: permSession}, EFORBIDDEN},
		{"a key with the group and a named grant is refused by name outside the group", componentSession(permSession, ruleStatement(permMerchant, "refund:create")),
			"payin:update", bobs, EFORBIDDEN},
		{"a merchant-constrained key on another merchant", reader, "payin:read", otherMerchant, EFORBIDDEN},
		{"mixed: a named grant for another merchant, the group's for this one", componentSession(permSession, ruleStatement(permOther, "payin:read")), "payin:read", bobs, ENOTFOUND},
		{"mixed: a named grant for one merchant, a third merchant's payin", componentSession(permSession, ruleStatement(permOther, "payin:read")), "payin:read",
			Object{PlatformID: permPlatform, MerchantID: "sbx_mid_third"}, EFORBIDDEN},
		{"its own payin", componentSession(permSession), "payin:read", Object{PlatformID: permPlatform, MerchantID: permMerchant, CreatedBy: permSession}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := AuthorizeObject(c.key, c.permission, "payin", "sbx_pyi_x", c.obj)
			if got := ErrorCode(err); got != c.want {
				t.Errorf("AuthorizeObject(%s) = %v (code %q), want code %q", c.permission, err, got, c.want)
			}
		})
	}
}

func TestScopeForPaymentComponent(t *testing.T) {
	t.Parallel()
	narrowed := ruleStatement(permMerchant, PermissionPaymentComponent)
	narrowed.Constraints.PayinConfig = &PayinConfigConstraint{PayinConfigID: permConfig}
	cases := []struct {
		name       string
		key        *APIKey
		permission string
		want       []ObjectFilter
		all, empty bool
	}{
		{"payins it made, of its merchant", componentSession(permSession), "payin:read",
			[]ObjectFilter{{MerchantID: permMerchant, CreatedBy: permSession}}, false, false},
		{"cards it stored, of its merchant", componentSession(permSession), "payment_method:read",
			[]ObjectFilter{{MerchantID: permMerchant, CreatedBy: permSession}}, false, false},
		{"configs: none listed without a config constraint, but the permission is held", componentSession(permSession), "payin_config:read", nil, false, false},
		{"configs: the one its constraint names", &APIKey{ID: permSession, PlatformID: permPlatform, Statements: []Statement{narrowed}}, "payin_config:read",
			[]ObjectFilter{{MerchantID: permMerchant, PayinConfigID: permConfig}}, false, false},
		{"payins of its config, made by it", &APIKey{ID: permSession, PlatformID: permPlatform, Statements: []Statement{narrowed}}, "payin:read",
			[]ObjectFilter{{MerchantID: permMerchant, PayinConfigID: permConfig, CreatedBy: permSession}}, false, false},
		{"a platform-wide group reaches what it made, not everything", &APIKey{ID: permSession, PlatformID: permPlatform,
			Statements: []Statement{ruleStatement("", PermissionPaymentComponent)}}, "payin:read", []ObjectFilter{{CreatedBy: permSession}}, false, false},
		{"mixed: a named platform-wide grant reaches everything", componentSession(permSession, ruleStatement("", "payin:read")), "payin:read", nil, true, false},
		{"outside the group", componentSession(permSession), "refund:read", nil, false, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := ScopeFor(c.key, c.permission)
			if s.All != c.all || s.Empty() != c.empty || !slices.Equal(s.Filters, c.want) {
				t.Errorf("ScopeFor(%s) = all %v empty %v filters %+v; want all %v empty %v filters %+v", c.permission, s.All, s.Empty(), s.Filters, c.all, c.empty, c.want)
			}
		})
	}
}

// TestCheckGrantKeepsTheGroupsLimit: a permission held only through
// group#payment_component (which reaches only what its holder made) passes
// on only as that group, never by name.
func TestCheckGrantKeepsTheGroupsLimit(t *testing.T) {
	t.Parallel()
	creator := []Statement{ruleStatement("", "api_key:create"), ruleStatement(permMerchant, PermissionPaymentComponent)}
	cases := []struct {
		name string
		new  Statement
		ok   bool
	}{
		{"the group itself", ruleStatement(permMerchant, PermissionPaymentComponent), true},
		{"a member by name", ruleStatement(permMerchant, "payin:read"), false},
		{"another member by name", ruleStatement(permMerchant, "payment_method:read"), false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := CheckGrant(creator, []Statement{c.new})
			if (err == nil) != c.ok {
				t.Errorf("CheckGrant(%v) = %v, want ok %v", c.new.Permissions, err, c.ok)
			}
		})
	}
	// A creator that holds payin:read by name may still grant it by name.
	if err := CheckGrant([]Statement{ruleStatement(permMerchant, "payin:read")}, []Statement{ruleStatement(permMerchant, "payin:read")}); err != nil {
		t.Errorf("a named grant passed on by name: %v", err)
	}
}

// TestCheckStoredChargeOnlyItsOwnCard: a payer's browser charges only a card
// it stored; any other is not found, before anything else is said of it.
func TestCheckStoredChargeOnlyItsOwnCard(t *testing.T) {
	t.Parallel()
	cfg := &PayinConfig{ID: "sbx_cfg_bob", PlatformID: permPlatform, MerchantID: permMerchant, Amount: 1000}
	card := func(createdBy, merchant string) *PaymentMethod {
		return &PaymentMethod{ID: "sbx_mtd_x", PlatformID: permPlatform, MerchantID: OptString(merchant), Status: PaymentMethodStatusActive,
			Card: &Card{Brand: "VISA", Last4: "1111", ExpMonth: 12, ExpYear: ruleNow.Year() + 2}, CreatedBy: createdBy}
	}
	ivr := ruleKey(ruleStatement("", "payin:create"))
	cases := []struct {
		name string
		key  *APIKey
		pm   *PaymentMethod
		want string
	}{
		{"its own card", componentSession(permBob), card(permBob, permMerchant), ""},
		{"Alice's card for Bob's bill", componentSession(permBob), card(permSession, permMerchant), ENOTFOUND},
		{"a card stored before creators were recorded", componentSession(permBob), card("", permMerchant), ENOTFOUND},
		{"another merchant's card", componentSession(permBob), card(permBob, permOther), ENOTFOUND},
		{"an IVR key lacks payment_method:read", ivr, card(ivr.ID, permMerchant), EFORBIDDEN},
		{"the platform admin", &APIKey{ID: "sbx_api_admin", PlatformID: permPlatform, Statements: AdminStatements(permPlatform)}, card(permSession, permMerchant), ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := CheckStoredCharge(c.key, c.pm, cfg, ruleNow)
			if got := ErrorCode(err); got != c.want {
				t.Errorf("CheckStoredCharge = %v (code %q), want code %q", err, got, c.want)
			}
		})
	}
}
