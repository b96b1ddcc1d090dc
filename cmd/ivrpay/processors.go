package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/ivrpay/ivrpay"
	"github.com/ivrpay/ivrpay/processor/adyen"
	"github.com/ivrpay/ivrpay/processor/stripe"
	"github.com/ivrpay/ivrpay/sqlstore"
)

// openProcessor returns the function that makes an account's adapter in
// mode: live credentials are refused in sandbox and test ones in production.
func openProcessor(mode ivrpay.Mode) func(a *ivrpay.ProcessorAccount, secret string) (ivrpay.Processor, error) {
	production := mode == ivrpay.ModeProduction
	return func(a *ivrpay.ProcessorAccount, secret string) (ivrpay.Processor, error) {
		if err := checkCredentialMode(a, secret, mode); err != nil {
			return nil, err
		}
		switch a.Kind {
		case ivrpay.ProcessorKindStripe:
			return stripe.New(stripe.Config{SecretKey: secret, APIBase: a.APIBase})
		case ivrpay.ProcessorKindAdyen:
			return adyen.New(adyen.Config{APIKey: secret, MerchantAccount: a.MerchantAccount, APIBase: a.APIBase, Live: production,
				AmountTriggers: !production})
		}
		return nil, fmt.Errorf("unknown processor kind %q", a.Kind)
	}
}

// checkCredentialMode refuses a credential that does not fit the mode
// (Stripe by its key's prefix, Adyen by its endpoint) and, in production,
// an API base that is not https.
func checkCredentialMode(a *ivrpay.ProcessorAccount, secret string, mode ivrpay.Mode) error {
	production := mode == ivrpay.ModeProduction
	switch a.Kind {
	case ivrpay.ProcessorKindStripe:
		if err := stripe.CheckAPIBase(a.APIBase, production); err != nil {
			return err
		}
		return stripe.CheckKeyMode(secret, production)
	case ivrpay.ProcessorKindAdyen:
		return adyen.CheckEndpointMode(a.APIBase, production)
	}
	return nil
}

// checkSecretShape refuses a secret that cannot be the kind's credential
// (SPEC §9): a key file with a second line or a stray character would
// otherwise be stored and fail every payment.
func checkSecretShape(kind, secret string) error {
	switch kind {
	case ivrpay.ProcessorKindStripe:
		return stripe.CheckSecretKey(secret)
	case ivrpay.ProcessorKindAdyen:
		return adyen.CheckAPIKey(secret)
	}
	return nil
}

// checkEventsSecretShape refuses an events secret that cannot be the
// kind's (SPEC §4.2): Stripe's endpoint signing secret, Adyen's hex HMAC key.
func checkEventsSecretShape(kind, secret string) error {
	switch kind {
	case ivrpay.ProcessorKindStripe:
		return stripe.CheckEventsSecret(secret)
	case ivrpay.ProcessorKindAdyen:
		return adyen.CheckHMACKey(secret)
	}
	return fmt.Errorf("a %s account has no events", kind)
}

// processorFlags are the flags of `admin processor add` and
// `admin processor set-events-secret`.
type processorFlags struct {
	kind, secretKeyFile, apiKeyFile, merchantAccount, apiBase, accountRef, eventsSecretFile string
	forgetPrevious                                                                          bool
}

func (f *processorFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.kind, "kind", "", "processor add: stripe or adyen")
	fs.StringVar(&f.secretKeyFile, "secret-key-file", "", "processor add --kind stripe: file holding the Stripe secret key (sk_live_…/sk_test_… or rk_…)")
	fs.StringVar(&f.apiKeyFile, "api-key-file", "", "processor add --kind adyen: file holding the Adyen API key")
	fs.StringVar(&f.merchantAccount, "merchant-account", "", "processor add --kind adyen: the Adyen (MOTO) merchant account")
	fs.StringVar(&f.apiBase, "api-base", "", "processor add: another API endpoint (stripe-mock, a local fake)")
	fs.StringVar(&f.accountRef, "account-ref", "", "merchant set-processor: the merchant's Stripe connected account (acct_…) or Adyen merchant account")
	fs.StringVar(&f.eventsSecretFile, "events-secret-file", "", "processor add, processor set-events-secret: file holding the secret that signs the account's events (Stripe: the webhook endpoint's signing secret whsec_…; Adyen: the webhook's HMAC key)")
	fs.BoolVar(&f.forgetPrevious, "forget-previous", false, "processor set-events-secret: stop accepting the replaced events secret at once (it leaked), instead of for "+previousAcceptedText)
}

// previousAcceptedText says how long a replaced events secret is accepted.
var previousAcceptedText = fmt.Sprintf("%d days", int(ivrpay.PreviousEventsSecretAccepted.Hours()/24))

// readKeyFile reads a one-line secret of an account from its file (not
// readable by others in production) and checks its shape; the secret is
// never printed, and no error quotes it.
func readKeyFile(flagName, file string, mode ivrpay.Mode, check func(string) error) (string, error) {
	raw, err := readSecretFile(flagName, file, mode)
	if err != nil {
		return "", err
	}
	secret := strings.TrimSpace(string(raw))
	if secret == "" {
		return "", fmt.Errorf("%s %s is empty", flagName, file)
	}
	if err := check(secret); err != nil {
		return "", fmt.Errorf("%s %s: %w", flagName, file, err)
	}
	return secret, nil
}

// eventsSecretCiphertext reads, checks and encrypts the events secret of a
// kind's account from --events-secret-file.
func eventsSecretCiphertext(v ivrpay.Vault, mode ivrpay.Mode, kind, file string) (string, error) {
	secret, err := readKeyFile("--events-secret-file", file, mode, func(s string) error { return checkEventsSecretShape(kind, s) })
	if err != nil {
		return "", err
	}
	ct, err := v.Encrypt(secret)
	if err != nil {
		return "", fmt.Errorf("vault: %w", err)
	}
	return ct, nil
}

// setEventsSecret replaces an account's events secret; the replaced one is
// still accepted for ivrpay.PreviousEventsSecretAccepted unless
// f.forgetPrevious.
func setEventsSecret(ctx context.Context, store *sqlstore.Store, v ivrpay.Vault, mode ivrpay.Mode, name string, f processorFlags) (any, error) {
	if f.eventsSecretFile == "" {
		return nil, errors.New("--events-secret-file is required (a file, so the secret stays out of the shell history)")
	}
	a, err := store.FindProcessorAccount(ctx, name)
	if err != nil {
		return nil, err
	}
	ct, err := eventsSecretCiphertext(v, mode, a.Kind, f.eventsSecretFile)
	if err != nil {
		return nil, err
	}
	until := time.Now().Add(ivrpay.PreviousEventsSecretAccepted)
	if f.forgetPrevious {
		until = time.Time{}
	}
	return store.SetProcessorEventsSecret(ctx, name, ct, until)
}

// addProcessorAccount reads the secret from its file, checks it fits the
// mode, encrypts it with the vault key and stores the account. The secret is
// never printed.
func addProcessorAccount(ctx context.Context, store *sqlstore.Store, v ivrpay.Vault, mode ivrpay.Mode, name string, f processorFlags) (any, error) {
	a := ivrpay.ProcessorAccount{Name: name, Kind: f.kind, MerchantAccount: f.merchantAccount, APIBase: f.apiBase}
	if err := a.Validate(); err != nil {
		return nil, err
	}
	file, flagName := f.secretKeyFile, "--secret-key-file"
	if a.Kind == ivrpay.ProcessorKindAdyen {
		file, flagName = f.apiKeyFile, "--api-key-file"
	}
	if file == "" {
		return nil, fmt.Errorf("%s is required for a %s account (a file, so the secret stays out of the shell history)", flagName, a.Kind)
	}
	secret, err := readKeyFile(flagName, file, mode, func(s string) error { return checkSecretShape(a.Kind, s) })
	if err != nil {
		return nil, err
	}
	if err := checkCredentialMode(&a, secret, mode); err != nil {
		return nil, err
	}
	if a.SecretCiphertext, err = v.Encrypt(secret); err != nil {
		return nil, fmt.Errorf("vault: %w", err)
	}
	if f.eventsSecretFile != "" {
		if a.EventsSecretCiphertext, err = eventsSecretCiphertext(v, mode, a.Kind, f.eventsSecretFile); err != nil {
			return nil, err
		}
	}
	if err := store.CreateProcessorAccount(ctx, a); err != nil {
		return nil, err
	}
	return store.FindProcessorAccount(ctx, name)
}

// errNoProcessorAccount is production's refusal to start without a processor.
var errNoProcessorAccount = errors.New("no processor account: production has no built-in processor; add one with ivrpay admin processor add --name NAME --kind stripe --secret-key-file F (or --kind adyen --api-key-file F --merchant-account M), then route platforms to it with ivrpay admin platform set-processor PLATFORM_ID NAME")
