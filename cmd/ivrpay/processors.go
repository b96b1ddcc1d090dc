package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"

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

// processorFlags are the flags of `admin processor add`.
type processorFlags struct {
	kind, secretKeyFile, apiKeyFile, merchantAccount, apiBase, accountRef string
}

func (f *processorFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.kind, "kind", "", "processor add: stripe or adyen")
	fs.StringVar(&f.secretKeyFile, "secret-key-file", "", "processor add --kind stripe: file holding the Stripe secret key (sk_live_…/sk_test_… or rk_…)")
	fs.StringVar(&f.apiKeyFile, "api-key-file", "", "processor add --kind adyen: file holding the Adyen API key")
	fs.StringVar(&f.merchantAccount, "merchant-account", "", "processor add --kind adyen: the Adyen (MOTO) merchant account")
	fs.StringVar(&f.apiBase, "api-base", "", "processor add: another API endpoint (stripe-mock, a local fake)")
	fs.StringVar(&f.accountRef, "account-ref", "", "merchant set-processor: the merchant's Stripe connected account (acct_…) or Adyen merchant account")
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
	raw, err := readSecretFile(flagName, file, mode)
	if err != nil {
		return nil, err
	}
	secret := strings.TrimSpace(string(raw))
	if secret == "" {
		return nil, fmt.Errorf("%s %s is empty", flagName, file)
	}
	if err := checkSecretShape(a.Kind, secret); err != nil {
		return nil, fmt.Errorf("%s %s: %w", flagName, file, err)
	}
	if err := checkCredentialMode(&a, secret, mode); err != nil {
		return nil, err
	}
	if a.SecretCiphertext, err = v.Encrypt(secret); err != nil {
		return nil, fmt.Errorf("vault: %w", err)
	}
	if err := store.CreateProcessorAccount(ctx, a); err != nil {
		return nil, err
	}
	return store.FindProcessorAccount(ctx, name)
}

// errNoProcessorAccount is production's refusal to start without a processor.
var errNoProcessorAccount = errors.New("no processor account: production has no built-in processor; add one with ivrpay admin processor add --name NAME --kind stripe --secret-key-file F (or --kind adyen --api-key-file F --merchant-account M), then route platforms to it with ivrpay admin platform set-processor PLATFORM_ID NAME")
