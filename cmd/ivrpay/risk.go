package main

import (
	"flag"
	"fmt"
	"strconv"
	"strings"

	"github.com/ivrpay/ivrpay"
)

// riskFlags are the flags of `ivrpay admin platform set-risk` (SPEC §11).
// A flag not given keeps the platform's current value.
type riskFlags struct {
	cardDeclines, configAttempts, callerDeclines string
	merchantBreaker                              string
	requireCVC, requireAVS                       bool
}

func (f *riskFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.cardDeclines, "card-declines", "", "platform set-risk: declines of one card in 1h that block it for 1h (N or N/1h, 1 to 10; default 3)")
	fs.StringVar(&f.configAttempts, "config-attempts", "", "platform set-risk: declined attempts that lock a payin config (1 to 20; default 5)")
	fs.StringVar(&f.callerDeclines, "caller-declines", "", "platform set-risk: different cards declined for one caller in 1h that block it for 1h (N or N/1h, 1 to 20; default 3)")
	fs.StringVar(&f.merchantBreaker, "merchant-breaker", "", "platform set-risk: on|off, pause a merchant's IVR charges after 20+ declines in 10m at 50%+ (default on)")
	fs.BoolVar(&f.requireCVC, "require-cvc-match", false, "platform set-risk: void approvals whose CVC result is N (--require-cvc-match=false turns it off)")
	fs.BoolVar(&f.requireAVS, "require-avs-match", false, "platform set-risk: void approvals whose AVS result is N (--require-avs-match=false turns it off)")
}

// apply returns cur changed by the flags given on fs.
func (f *riskFlags) apply(fs *flag.FlagSet, cur ivrpay.RiskSettings) (ivrpay.RiskSettings, error) {
	var err error
	fs.Visit(func(fl *flag.Flag) {
		if err != nil {
			return
		}
		switch fl.Name {
		case "card-declines":
			cur.CardDeclines, err = perHour(fl.Name, f.cardDeclines)
		case "config-attempts":
			cur.ConfigAttempts, err = count(fl.Name, f.configAttempts)
		case "caller-declines":
			cur.CallerDeclines, err = perHour(fl.Name, f.callerDeclines)
		case "merchant-breaker":
			switch f.merchantBreaker {
			case "on":
				cur.MerchantBreaker = true
			case "off":
				cur.MerchantBreaker = false
			default:
				err = fmt.Errorf("--merchant-breaker: %q is neither on nor off", f.merchantBreaker)
			}
		case "require-cvc-match":
			cur.RequireCVCMatch = f.requireCVC
		case "require-avs-match":
			cur.RequireAVSMatch = f.requireAVS
		}
	})
	return cur, err
}

// perHour reads N or N/1h: the rules count over one hour, so no other window is accepted.
func perHour(name, v string) (int, error) {
	n, window, found := strings.Cut(v, "/")
	if found && window != "1h" {
		return 0, fmt.Errorf("--%s: the window is 1h (SPEC §11); write N or N/1h, not %q", name, v)
	}
	return count(name, n)
}

func count(name, v string) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, fmt.Errorf("--%s: %q is not a whole number", name, v)
	}
	return n, nil
}
