package payments

import (
	"context"
	"fmt"

	"github.com/ivrpay/ivrpay"
)

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
