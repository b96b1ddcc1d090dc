package payments

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ivrpay/ivrpay"
)

// route returns the processor account of a merchant's payments, refusing
// (an ECONFLICT that says how to fix it) when no account serves the
// merchant or its processor lacks one of ops. read is the merchant's route
// when the store read it already (nil: the router reads it).
func (s *Service) route(ctx context.Context, platformID, merchantID string, read *ivrpay.ProcessorRoute, ops ...string) (ivrpay.ProcessorAccountRef, ivrpay.Processor, error) {
	var account ivrpay.ProcessorAccountRef
	var proc ivrpay.Processor
	var err error
	if r, ok := s.router.(RouteReader); ok && read != nil {
		account, proc, err = r.RouteOf(ctx, merchantID, *read)
	} else {
		account, proc, err = s.router.Route(ctx, platformID, merchantID)
	}
	var none *ivrpay.ProcessorNotConfiguredError
	if errors.As(err, &none) {
		return account, nil, &ivrpay.Error{Code: ivrpay.ECONFLICT, Message: none.Error()}
	} else if err != nil {
		return account, nil, err
	}
	for _, op := range ops {
		if err := proc.Capabilities().Check(proc.Kind(), op); err != nil {
			return account, nil, err
		}
	}
	return account, proc, nil
}

// paymentOps are the capabilities a payment of processing mode needs
// beyond a charge captured at once.
func paymentOps(mode string) []string {
	if mode == ivrpay.ProcessingModeAuthorize {
		return []string{ivrpay.OpAuthorizeOnly}
	}
	return nil
}

// notConfigured is the connector's answer to a refusal of route:
// PROCESSOR_NOT_CONFIGURED with its message; nil for other errors.
func notConfigured(err error) *ivrpay.ConnectorError {
	if ivrpay.ErrorCode(err) != ivrpay.ECONFLICT {
		return nil
	}
	return &ivrpay.ConnectorError{Code: ivrpay.ConnProcessorNotConfigured, Message: ivrpay.ErrorMessage(err)}
}

// SandboxAccount is the name of the built-in sandbox processor account.
const SandboxAccount = "sandbox"

// SandboxRouter sends every payment to the built-in sandbox processor: the
// routing of a sandbox deployment whose merchants have no processor account.
type SandboxRouter struct {
	Processor ivrpay.Processor
}

// Route returns the built-in sandbox account.
func (r SandboxRouter) Route(ctx context.Context, platformID, merchantID string) (ivrpay.ProcessorAccountRef, ivrpay.Processor, error) {
	return ivrpay.ProcessorAccountRef{Name: SandboxAccount, Kind: r.Processor.Kind()}, r.Processor, nil
}

// Account returns the sandbox processor for the sandbox account.
func (r SandboxRouter) Account(ctx context.Context, name string) (ivrpay.Processor, error) {
	if name != SandboxAccount {
		return nil, fmt.Errorf("processor account %q does not exist", name)
	}
	return r.Processor, nil
}

// AccountStore is where AccountRouter finds accounts and routes.
type AccountStore interface {
	ProcessorRoute(ctx context.Context, platformID, merchantID string) (ivrpay.ProcessorRoute, error)
	FindProcessorAccount(ctx context.Context, name string) (*ivrpay.ProcessorAccount, error)
}

// AccountRouter routes payments to the operator's processor accounts: a
// merchant's own account, else its platform's default, else (sandbox only)
// the built-in sandbox processor. Adapters are made once per account and kept.
type AccountRouter struct {
	Store AccountStore
	Vault ivrpay.Vault
	// Sandbox is the built-in processor of merchants without an account;
	// nil in production, which has none.
	Sandbox ivrpay.Processor
	// Open makes the adapter of an account from its decrypted secret.
	Open func(a *ivrpay.ProcessorAccount, secret string) (ivrpay.Processor, error)

	mu       sync.Mutex
	adapters map[string]openAdapter
}

type openAdapter struct {
	created   time.Time // tells a re-added account of the same name from the old one
	processor ivrpay.Processor
}

// Route returns the account that serves a merchant.
func (r *AccountRouter) Route(ctx context.Context, platformID, merchantID string) (ivrpay.ProcessorAccountRef, ivrpay.Processor, error) {
	route, err := r.Store.ProcessorRoute(ctx, platformID, merchantID)
	if err != nil {
		return ivrpay.ProcessorAccountRef{}, nil, err
	}
	return r.RouteOf(ctx, merchantID, route)
}

// RouteOf returns the account of a route read with a payin config.
func (r *AccountRouter) RouteOf(ctx context.Context, merchantID string, route ivrpay.ProcessorRoute) (ivrpay.ProcessorAccountRef, ivrpay.Processor, error) {
	if route.Account == "" {
		if r.Sandbox == nil {
			return ivrpay.ProcessorAccountRef{}, nil, &ivrpay.ProcessorNotConfiguredError{MerchantID: merchantID}
		}
		return ivrpay.ProcessorAccountRef{Name: SandboxAccount, Kind: r.Sandbox.Kind()}, r.Sandbox, nil
	}
	p, err := r.Account(ctx, route.Account)
	if err != nil {
		return ivrpay.ProcessorAccountRef{}, nil, err
	}
	return ivrpay.ProcessorAccountRef{Name: route.Account, Kind: p.Kind(), AccountRef: route.AccountRef}, p, nil
}

// Account returns the adapter of the named account.
func (r *AccountRouter) Account(ctx context.Context, name string) (ivrpay.Processor, error) {
	if name == SandboxAccount && r.Sandbox != nil {
		return r.Sandbox, nil
	}
	a, err := r.Store.FindProcessorAccount(ctx, name)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if open, ok := r.adapters[name]; ok && open.created.Equal(a.CreatedAt) {
		return open.processor, nil
	}
	secret, err := r.Vault.Decrypt(a.SecretCiphertext)
	if err != nil {
		return nil, fmt.Errorf("processor account %s: vault: %w", name, err)
	}
	p, err := r.Open(a, secret)
	if err != nil {
		// Nothing can be sent with this account (a secret stored before
		// secrets were checked, a credential of the other mode): refused
		// before any card data leaves, like a merchant without an account.
		return nil, ivrpay.Errorf(ivrpay.ECONFLICT, "processor account %s cannot be used: %v; the operator adds a working account (ivrpay admin processor add) and routes to it (ivrpay admin platform set-processor or merchant set-processor)", name, err)
	}
	if r.adapters == nil {
		r.adapters = map[string]openAdapter{}
	}
	r.adapters[name] = openAdapter{created: a.CreatedAt, processor: p}
	return p, nil
}

// EventsSecrets returns the kind of the named account and the secrets its
// events may be signed with (ivrpay.ProcessorEventSecrets): the current
// events secret, then the one it replaced while that is still accepted.
func (r *AccountRouter) EventsSecrets(ctx context.Context, name string) (kind string, secrets []string, err error) {
	a, err := r.Store.FindProcessorAccount(ctx, name)
	if err != nil {
		return "", nil, err
	}
	if a.EventsSecretCiphertext == "" {
		return "", nil, ivrpay.Errorf(ivrpay.ENOTFOUND, "processor account %s has no events secret (ivrpay admin processor set-events-secret %s --events-secret-file F)", name, name)
	}
	current, err := r.Vault.Decrypt(a.EventsSecretCiphertext)
	if err != nil {
		return "", nil, fmt.Errorf("processor account %s: events secret: vault: %w", name, err)
	}
	secrets = []string{current}
	if a.PreviousEventsSecretCiphertext != "" && time.Now().Before(a.PreviousEventsSecretUntil) {
		previous, err := r.Vault.Decrypt(a.PreviousEventsSecretCiphertext)
		if err != nil {
			return "", nil, fmt.Errorf("processor account %s: previous events secret: vault: %w", name, err)
		}
		secrets = append(secrets, previous)
	}
	return a.Kind, secrets, nil
}
