package ivrpay

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// The pure rules of the payments service, tested as functions of values.

var ruleNow = time.Date(2026, 3, 15, 10, 0, 0, 0, time.UTC)

func ruleKey(statements ...Statement) *APIKey {
	return &APIKey{ID: "sbx_api_key", PlatformID: "sbx_plt_a", Statements: statements}
}

func ruleStatement(merchantID string, permissions ...string) Statement {
	st := Statement{Permissions: permissions, Constraints: Constraints{Platform: &PlatformConstraint{PlatformID: "sbx_plt_a"}}}
	if merchantID != "" {
		st.Constraints.Merchant = &MerchantConstraint{MerchantID: merchantID}
	}
	return st
}

func ruleCharge(mutate ...func(*IVRRequest)) IVRRequest {
	r := IVRRequest{Method: IVRMethodCharge, TransactionID: "CA1", CardNumber: "4111111111111111", CVV: "123", ExpiryMonth: "12",
		ExpiryYear: "30", PostalCode: "94111", Amount: ParseIVRAmount(true, "10.00"), CurrencyCode: "usd",
		Parameters: map[string]string{ParamPayinConfigID: "sbx_cfg_3Mv4ao07pnbt8jCj9kCDjK6KmLx"}}
	for _, m := range mutate {
		m(&r)
	}
	return r
}

func TestCheckIVRPlatform(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		platform Platform
		code     string
	}{
		{"enabled, 2024-10-16", Platform{ID: "p", IVRPayments: true, MinAPIVersion: APIVersion20241016}, ""},
		{"enabled, 2023-12-01", Platform{ID: "p", IVRPayments: true, MinAPIVersion: APIVersion20231201}, ""},
		{"not enabled", Platform{ID: "p", MinAPIVersion: APIVersion20241016}, ConnIVRNotEnabled},
		{"old version", Platform{ID: "p", IVRPayments: true, MinAPIVersion: APIVersion20230101}, ConnUnsupportedAPIVersion},
		{"flag before version", Platform{ID: "p", MinAPIVersion: APIVersion20230101}, ConnIVRNotEnabled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := CheckIVRPlatform(&tc.platform)
			if (got == nil) != (tc.code == "") || (got != nil && got.Code != tc.code) {
				t.Fatalf("CheckIVRPlatform = %v, want %q", got, tc.code)
			}
		})
	}
}

func TestCheckIVRConfigParam(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		method string
		params map[string]string
		code   string
		param  string
	}{
		{"charge with payin config", IVRMethodCharge, map[string]string{ParamPayinConfigID: "sbx_cfg_x"}, "", ParamPayinConfigID},
		{"tokenize with pm config", IVRMethodTokenize, map[string]string{ParamPaymentMethodConfigID: "sbx_pmc_x"}, "", ParamPaymentMethodConfigID},
		{"tokenize with the guide's alias", IVRMethodTokenize, map[string]string{ParamPaymentMethodIDAlias: "sbx_pmc_x"}, "", ParamPaymentMethodIDAlias},
		{"charge without a config", IVRMethodCharge, map[string]string{}, ConnMissingConfigID, ""},
		{"tokenize without a config", IVRMethodTokenize, nil, ConnMissingConfigID, ""},
		{"charge with a pm config", IVRMethodCharge, map[string]string{ParamPaymentMethodConfigID: "sbx_pmc_x"}, ConnConfigMethodMismatch, ""},
		{"charge naming a pm config id", IVRMethodCharge, map[string]string{ParamPayinConfigID: "pmc_x"}, ConnConfigMethodMismatch, ""},
		{"tokenize with a payin config", IVRMethodTokenize, map[string]string{ParamPayinConfigID: "sbx_cfg_x"}, ConnConfigMethodMismatch, ""},
		{"tokenize naming a payin config id", IVRMethodTokenize, map[string]string{ParamPaymentMethodConfigID: "cfg_x"}, ConnConfigMethodMismatch, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ref, got := CheckIVRConfigParam(IVRRequest{Method: tc.method, Parameters: tc.params})
			if (got == nil) != (tc.code == "") || (got != nil && got.Code != tc.code) {
				t.Fatalf("CheckIVRConfigParam = %v, want %q", got, tc.code)
			}
			if got == nil && ref.Param != tc.param {
				t.Fatalf("param %q, want %q", ref.Param, tc.param)
			}
		})
	}
}

// TestCheckIVRCharge walks the ladder of checks 4 to 10 in order: each row
// breaks one thing, and earlier checks win over later ones.
func TestCheckIVRCharge(t *testing.T) {
	t.Parallel()
	cfg := func(mutate ...func(*PayinConfig)) *PayinConfig {
		c := &PayinConfig{ID: "sbx_cfg_3Mv4ao07pnbt8jCj9kCDjK6KmLx", PlatformID: "sbx_plt_a", MerchantID: "sbx_mid_m", Amount: 1000}
		for _, m := range mutate {
			m(c)
		}
		return c
	}
	payer := ruleKey(ruleStatement("", "payin:create"))
	for _, tc := range []struct {
		name   string
		key    *APIKey
		cfg    *PayinConfig
		req    IVRRequest
		code   string
		inText string
	}{
		{"approved path", payer, cfg(), ruleCharge(), "", ""},
		{"no such config", payer, nil, ruleCharge(), ConnConfigNotFound, "not found on platform sbx_plt_a"},
		{"another platform's config", payer, cfg(func(c *PayinConfig) { c.PlatformID = "sbx_plt_b" }), ruleCharge(), ConnConfigNotFound, ""},
		{"a card number as config id is not echoed", payer, nil, ruleCharge(func(r *IVRRequest) { r.Parameters[ParamPayinConfigID] = "4111111111111111" }),
			ConnConfigNotFound, "(a value that is not an ivrpay config id)"},
		{"key without payin:create", ruleKey(ruleStatement("", "payment_method:create")), cfg(), ruleCharge(), ConnForbidden, "payin:create for merchant sbx_mid_m"},
		{"key of another merchant", ruleKey(ruleStatement("sbx_mid_other", "payin:create")), cfg(), ruleCharge(), ConnForbidden, ""},
		{"ACH", payer, cfg(), ruleCharge(func(r *IVRRequest) { r.ACH = true }), ConnUnsupportedPaymentMethod, ""},
		{"EUR", payer, cfg(), ruleCharge(func(r *IVRRequest) { r.CurrencyCode = "EUR" }), ConnUnsupportedCurrency, "currency EUR"},
		{"no amount", payer, cfg(), ruleCharge(func(r *IVRRequest) { r.Amount = ParseIVRAmount(false, "") }), ConnInvalidAmount, "10.00"},
		{"three decimals", payer, cfg(), ruleCharge(func(r *IVRRequest) { r.Amount = ParseIVRAmount(true, "10.000") }), ConnInvalidAmount, ""},
		{"other amount", payer, cfg(), ruleCharge(func(r *IVRRequest) { r.Amount = ParseIVRAmount(true, "10.50") }), ConnAmountMismatch,
			"amount 10.50 does not match payin config amount 10.00"},
		{"amount written differently", payer, cfg(), ruleCharge(func(r *IVRRequest) { r.Amount = ParseIVRAmount(true, "10") }), "", ""},
		{"Luhn", payer, cfg(), ruleCharge(func(r *IVRRequest) { r.CardNumber = "4111111111111112" }), ConnInvalidCardNumber, ""},
		{"UnionPay", payer, cfg(), ruleCharge(func(r *IVRRequest) { r.CardNumber = "6200000000000005" }), ConnUnsupportedCardBrand, ""},
		{"month 13", payer, cfg(), ruleCharge(func(r *IVRRequest) { r.ExpiryMonth = "13" }), ConnInvalidExpirationDate, ""},
		{"expired", payer, cfg(), ruleCharge(func(r *IVRRequest) { r.ExpiryMonth, r.ExpiryYear = "02", "26" }), ConnExpiredCard, "02/2026"},
		{"CVV of 2 digits", payer, cfg(), ruleCharge(func(r *IVRRequest) { r.CVV = "12" }), ConnInvalidCardSecurityCode, "3 digits"},
		{"no postal code anywhere", payer, cfg(), ruleCharge(func(r *IVRRequest) { r.PostalCode = "" }), ConnMissingPostalCode, ""},
		{"postal code from the config", payer, cfg(func(c *PayinConfig) { c.BillingContact = &BillingContact{PostalCode: "30305"} }),
			ruleCharge(func(r *IVRRequest) { r.PostalCode = "" }), "", ""},
		{"config already used", payer, cfg(func(c *PayinConfig) { c.Payin = &PayinRef{PayinID: "sbx_pyi_x"} }), ruleCharge(), ConnConfigAlreadyUsed, "sbx_pyi_x"},
		{"card checks before single use", payer, cfg(func(c *PayinConfig) { c.Payin = &PayinRef{PayinID: "sbx_pyi_x"} }),
			ruleCharge(func(r *IVRRequest) { r.CardNumber = "4111111111111112" }), ConnInvalidCardNumber, ""},
		{"permission before card checks", ruleKey(), cfg(), ruleCharge(func(r *IVRRequest) { r.CardNumber = "1" }), ConnForbidden, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			entry, got := CheckIVRCharge(tc.key, tc.cfg, tc.req.Parameters[ParamPayinConfigID], tc.req, ruleNow)
			if (got == nil) != (tc.code == "") || (got != nil && got.Code != tc.code) {
				t.Fatalf("CheckIVRCharge = %v, want %q", got, tc.code)
			}
			if got != nil && !strings.Contains(got.Message, tc.inText) {
				t.Fatalf("message %q does not contain %q", got.Message, tc.inText)
			}
			if got == nil && (entry.PAN != tc.req.CardNumber || entry.PostalCode == "") {
				t.Fatalf("entry %+v", entry)
			}
		})
	}
}

func TestPlanVoidOrRefund(t *testing.T) {
	t.Parallel()
	payin := func(status string, captured, refundable int64) *Payin {
		return &Payin{ID: "p", Status: status, AuthorizedAmount: 1000, CapturedAmount: captured, RefundableAmount: refundable}
	}
	// disputed is a settled payin with one chargeback in each status.
	disputed := func(statuses ...string) *Payin {
		p := payin(PayinStatusSucceeded, 1000, 1000)
		for i, st := range statuses {
			p.Chargebacks = append(p.Chargebacks, PayinChargeback{ID: fmt.Sprint("chb_", i), Status: st, Amount: 1000})
		}
		return p
	}
	// A refund is refused (without a field: no part of the request is
	// wrong) while a chargeback takes or may still take the money back.
	for _, st := range ChargebackStatuses {
		refused := slices.Contains([]string{ChargebackStatusDisputeActionRequired, ChargebackStatusChargebackProcessing,
			ChargebackStatusProvisionalWin, ChargebackStatusLost}, st)
		t.Run("refund with a chargeback "+st, func(t *testing.T) {
			// As the store reads it: a refusing chargeback makes the
			// refundable amount 0, and the refusal must still be the
			// chargeback's, not "already fully refunded".
			p := disputed(st)
			p.SetRefundable()
			plan, err := PlanVoidOrRefund(p, "", 300)
			if !refused {
				if err != nil || plan.Kind != VoidOrRefundTypeRefund || plan.Amount != 300 {
					t.Fatalf("plan %+v, %v; want a refund of 300", plan, err)
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) || e.Code != ECONFLICT || e.Field != "" || !strings.Contains(e.Message, "chb_0 is "+st) {
				t.Fatalf("err = %v, want a conflict naming chargeback chb_0 and its status", err)
			}
		})
	}
	for _, tc := range []struct {
		name       string
		p          *Payin
		kind       string
		amount     int64
		wantKind   string
		wantAmount int64
		conflict   string // the field of the conflict, or "-" for none
	}{
		{"void while PROCESSING", payin(PayinStatusProcessing, 1000, 0), "", 0, VoidOrRefundTypeVoid, 1000, "-"},
		{"void an AUTHORIZED payin", payin(PayinStatusAuthorized, 0, 0), VoidOrRefundTypeVoid, 0, VoidOrRefundTypeVoid, 1000, "-"},
		{"no partial void", payin(PayinStatusProcessing, 1000, 0), "", 400, "", 0, "amount"},
		{"no refund before settlement", payin(PayinStatusProcessing, 1000, 0), VoidOrRefundTypeRefund, 0, "", 0, "type"},
		{"refund once SUCCEEDED", payin(PayinStatusSucceeded, 1000, 1000), "", 0, VoidOrRefundTypeRefund, 1000, "-"},
		{"partial refund", payin(PayinStatusSucceeded, 1000, 1000), "", 300, VoidOrRefundTypeRefund, 300, "-"},
		{"no void after settlement", payin(PayinStatusSucceeded, 1000, 1000), VoidOrRefundTypeVoid, 0, "", 0, "type"},
		{"never more than refundable", payin(PayinStatusSucceeded, 1000, 200), "", 300, "", 0, "amount"},
		{"fully refunded", payin(PayinStatusSucceeded, 1000, 0), "", 0, "", 0, ""},
		{"CREATED", payin(PayinStatusCreated, 0, 0), "", 0, "", 0, ""},
		{"FAILED", payin(PayinStatusFailed, 0, 0), "", 0, "", 0, ""},
		{"CANCELED", payin(PayinStatusCanceled, 0, 0), "", 0, "", 0, ""},
		{"void after settlement of a disputed payin", disputed(ChargebackStatusLost), VoidOrRefundTypeVoid, 0, "", 0, "type"},
		{"refund beside a won dispute and a lost one", disputed(ChargebackStatusWon, ChargebackStatusLost), "", 300, "", 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			plan, err := PlanVoidOrRefund(tc.p, tc.kind, tc.amount)
			if tc.conflict == "-" {
				if err != nil || plan.Kind != tc.wantKind || plan.Amount != tc.wantAmount || plan.Status != tc.p.Status {
					t.Fatalf("plan %+v, %v; want %s of %d", plan, err, tc.wantKind, tc.wantAmount)
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) || e.Code != ECONFLICT || e.Field != tc.conflict {
				t.Fatalf("err = %v, want a conflict on field %q", err, tc.conflict)
			}
		})
	}
}

// TestPlanVoidOrRefundFullyRefundedAndDisputed: a payin both fully refunded
// and disputed is refused with the chargeback's message, the reason its
// non_refundable_reason_code gives.
func TestPlanVoidOrRefundFullyRefundedAndDisputed(t *testing.T) {
	t.Parallel()
	p := &Payin{ID: "p", Status: PayinStatusSucceeded, CapturedAmount: 1000, RefundedAmount: 1000,
		Chargebacks: []PayinChargeback{{ID: "chb_1", Status: ChargebackStatusLost, Amount: 1000}}}
	p.SetRefundable()
	_, err := PlanVoidOrRefund(p, "", 0)
	if p.NonRefundableReasonCode != NonRefundableHasChargebacks || ErrorCode(err) != ECONFLICT || !strings.Contains(ErrorMessage(err), "chb_1 is LOST") {
		t.Fatalf("reason %q, refusal %v; want HAS_CHARGEBACKS and the chargeback's refusal", p.NonRefundableReasonCode, err)
	}
}

// TestVoidOfASettledPayinWithNothingRefundable: a void of a settled payin
// says it cannot be voided and, when nothing of it is refundable, why,
// instead of pointing to a refund of 0.00.
func TestVoidOfASettledPayinWithNothingRefundable(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		refunded int64
		cb       []PayinChargeback
		want     string
	}{
		{"disputed", 0, []PayinChargeback{{ID: "chb_1", Status: ChargebackStatusLost, Amount: 1000}}, "nothing of it can be refunded (HAS_CHARGEBACKS)"},
		{"fully refunded", 1000, nil, "nothing of it can be refunded (FULLY_REFUNDED)"},
		{"refundable", 400, nil, "use a refund instead (type REFUND, or no type) for all or part of its refundable amount 6.00"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &Payin{ID: "p", Status: PayinStatusSucceeded, CapturedAmount: 1000, RefundedAmount: tc.refunded, Chargebacks: tc.cb}
			p.SetRefundable()
			_, err := PlanVoidOrRefund(p, VoidOrRefundTypeVoid, 0)
			var e *Error
			if !errors.As(err, &e) || e.Code != ECONFLICT || e.Field != "type" || !strings.Contains(e.Message, "can no longer be voided") ||
				!strings.Contains(e.Message, tc.want) {
				t.Fatalf("err = %v, want a conflict on type saying %q", err, tc.want)
			}
		})
	}
}

// TestSetRefundable: refundable_amount and non_refundable_reason_code for
// each status, refunds and chargebacks.
func TestSetRefundable(t *testing.T) {
	t.Parallel()
	cb := func(statuses ...string) []PayinChargeback {
		var out []PayinChargeback
		for i, st := range statuses {
			out = append(out, PayinChargeback{ID: fmt.Sprint("chb_", i), Status: st, Amount: 1000})
		}
		return out
	}
	for _, tc := range []struct {
		name        string
		status      string
		captured    int64
		refunded    int64
		chargebacks []PayinChargeback
		refundable  int64
		reason      OptString
	}{
		{"created", PayinStatusCreated, 0, 0, nil, 0, NonRefundableInSettlementWindow},
		{"processing", PayinStatusProcessing, 1000, 0, nil, 0, NonRefundableInSettlementWindow},
		{"authorized", PayinStatusAuthorized, 0, 0, nil, 0, NonRefundableInSettlementWindow},
		{"failed", PayinStatusFailed, 0, 0, nil, 0, NonRefundableFailed},
		{"canceled", PayinStatusCanceled, 0, 0, nil, 0, NonRefundableVoided},
		{"succeeded", PayinStatusSucceeded, 1000, 0, nil, 1000, ""},
		{"partly refunded", PayinStatusSucceeded, 1000, 300, nil, 700, ""},
		{"fully refunded", PayinStatusSucceeded, 1000, 1000, nil, 0, NonRefundableFullyRefunded},
		{"inquiry", PayinStatusSucceeded, 1000, 300, cb(ChargebackStatusInquiryActionRequired), 700, ""},
		{"won", PayinStatusSucceeded, 1000, 0, cb(ChargebackStatusWon), 1000, ""},
		{"dispute", PayinStatusSucceeded, 1000, 300, cb(ChargebackStatusDisputeActionRequired), 0, NonRefundableHasChargebacks},
		{"won and provisional win", PayinStatusSucceeded, 1000, 0, cb(ChargebackStatusWon, ChargebackStatusProvisionalWin), 0, NonRefundableHasChargebacks},
		{"fully refunded and lost", PayinStatusSucceeded, 1000, 1000, cb(ChargebackStatusLost), 0, NonRefundableHasChargebacks},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &Payin{Status: tc.status, CapturedAmount: tc.captured, RefundedAmount: tc.refunded, Chargebacks: tc.chargebacks,
				RefundableAmount: 12345, NonRefundableReasonCode: "stale"}
			p.SetRefundable()
			if p.RefundableAmount != tc.refundable || p.NonRefundableReasonCode != tc.reason {
				t.Fatalf("refundable %d (%q), want %d (%q)", p.RefundableAmount, p.NonRefundableReasonCode, tc.refundable, tc.reason)
			}
		})
	}
}

func TestPlanCapture(t *testing.T) {
	t.Parallel()
	authorized := &Payin{ID: "p", Status: PayinStatusAuthorized, AuthorizedAmount: 1000}
	for _, tc := range []struct {
		name   string
		p      *Payin
		amount int64
		want   int64
		code   string
	}{
		{"all", authorized, 0, 1000, ""},
		{"part", authorized, 600, 600, ""},
		{"more than authorized", authorized, 1001, 0, ECONFLICT},
		{"not AUTHORIZED", &Payin{ID: "p", Status: PayinStatusProcessing, AuthorizedAmount: 1000}, 0, 0, ECONFLICT},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := PlanCapture(tc.p, tc.amount)
			if ErrorCode(err) != tc.code || got != tc.want {
				t.Fatalf("PlanCapture = %d, %v; want %d, %q", got, err, tc.want, tc.code)
			}
		})
	}
	if err := CheckCaptureVersion(APIVersion20231201); ErrorCode(err) != EINVALID {
		t.Fatalf("capture at 2023-12-01: %v", err)
	}
}

func TestPaymentMethodStatusAfterDecline(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ code, want string }{
		{RefusalInsufficientFunds, PaymentMethodStatusActive},
		{RefusalProcessingError, PaymentMethodStatusActive},
		{RefusalDeclined, PaymentMethodStatusFailed},
		{RefusalExpiredCard, PaymentMethodStatusFailed},
		{RefusalRiskDecline, PaymentMethodStatusFailed},
	} {
		t.Run(tc.code, func(t *testing.T) {
			if got := PaymentMethodStatusAfterDecline(tc.code); got != tc.want {
				t.Fatalf("got %s, want %s", got, tc.want)
			}
		})
	}
}

func TestTruncateNeverSplitsACharacter(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"abcdef", 3, "abc…"},
		{"ééé", 3, "é…"}, // é is 2 bytes: 3 bytes would split the second
		{"€uro", 2, "…"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got := Truncate(tc.in, tc.n)
			if got != tc.want || !utf8.ValidString(got) {
				t.Fatalf("Truncate(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
			}
		})
	}
}

func TestIDHasKind(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		id, prefix string
		want       bool
	}{
		{"sbx_cfg_x", PrefixPayinConfig, true}, {"cfg_x", PrefixPayinConfig, true}, {"sbx_pmc_x", PrefixPayinConfig, false},
		{"pmc_x", PrefixPaymentMethodConfig, true}, {"4111111111111111", PrefixPayinConfig, false},
	} {
		t.Run(tc.id, func(t *testing.T) {
			if IDHasKind(tc.id, tc.prefix) != tc.want {
				t.Fatalf("IDHasKind(%q, %q) = %v", tc.id, tc.prefix, !tc.want)
			}
		})
	}
}
