// Package payments is ivrpay's payments service: it decides and orchestrates
// (authorizes the caller, runs the domain's rules, claims the connector
// transaction, reserves the config, calls the processor, records the outcome,
// reconciles unknown outcomes) and calls a Store to persist each step in one
// transaction. The connector and the REST API call the same methods, so a
// payin made over IVR and one made over REST go through the same code.
// docs/processors.md describes the states and who resolves what.
package payments

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/ivrpay/ivrpay"
)

// Defaults of Options.
const (
	// DefaultProcessorTimeout is the most one processor call may take, so
	// that the connector answers Twilio inside its 10 s.
	DefaultProcessorTimeout = 6 * time.Second
	// DefaultConnectorLease bounds how long a crashed attempt blocks its
	// transaction: after it, a retry takes the attempt over and resumes it.
	// It outlasts a live attempt's processor call.
	DefaultConnectorLease = 30 * time.Second
	// DefaultReconcileAfter is how long an unknown outcome waits before the reconciler asks.
	DefaultReconcileAfter = 2 * time.Minute
	// DefaultProcessorCheckAfter is how long a real account's payin or
	// refund stays PROCESSING without an event before its processor is
	// looked up (SPEC §4.2).
	DefaultProcessorCheckAfter = 30 * time.Minute
)

// Options configure a Service.
type Options struct {
	Mode   ivrpay.Mode
	Clock  ivrpay.Clock
	Logger *slog.Logger
	// ProcessorTimeout bounds one processor call (default 6 s).
	ProcessorTimeout time.Duration
	// ConnectorLease: see DefaultConnectorLease. Only tests shorten it.
	ConnectorLease time.Duration
	// ReconcileAfter: see DefaultReconcileAfter.
	ReconcileAfter time.Duration
	// RiskMetrics counts the risk rules' refusals and blocks (nil: none).
	RiskMetrics RiskMetrics
	// ProcessorCheckAfter: see DefaultProcessorCheckAfter.
	ProcessorCheckAfter time.Duration
	// SandboxConfirmations makes the built-in sandbox processor's events
	// (processor/sandbox.Confirmations); nil where there is no sandbox
	// processor (production).
	SandboxConfirmations func(due ivrpay.SandboxDue) []ivrpay.ProcessorEvent
	// SandboxDisputes makes the built-in sandbox processor's dispute events
	// (processor/sandbox.DisputeEvents: the triggers 5130 and 5131); nil
	// where there is no sandbox processor.
	SandboxDisputes func(due ivrpay.SandboxDisputeDue) []ivrpay.ProcessorEvent
	// HoldProcessorEvents stores received events without applying them:
	// a test-only setting that keeps events between stored and applied,
	// for the crash test to kill the process there.
	HoldProcessorEvents bool
}

// Router picks the processor account of a payment.
type Router interface {
	// Route returns the account that serves a merchant of a platform, or an
	// error naming the merchant when none does (ivrpay.ErrProcessorNotConfigured).
	Route(ctx context.Context, platformID, merchantID string) (ivrpay.ProcessorAccountRef, ivrpay.Processor, error)
	// Account returns the processor of the named account, for the
	// captures, voids, refunds and reconciliation of payins it made.
	Account(ctx context.Context, name string) (ivrpay.Processor, error)
}

// RouteReader is a Router that takes a route the store has already read
// (with a charge's payin config), instead of reading it again.
type RouteReader interface {
	Router
	// RouteOf is Route for a merchant whose route was read.
	RouteOf(ctx context.Context, merchantID string, route ivrpay.ProcessorRoute) (ivrpay.ProcessorAccountRef, ivrpay.Processor, error)
}

// Service is the payments service.
type Service struct {
	store     Store
	vault     ivrpay.Vault
	router    Router
	opts      Options
	pollEvery time.Duration
}

// New returns a Service over store, vault and router.
func New(store Store, vault ivrpay.Vault, router Router, opts Options) *Service {
	if opts.Clock == nil {
		opts.Clock = ivrpay.SystemClock{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Mode == "" {
		opts.Mode = ivrpay.ModeSandbox
	}
	if opts.ProcessorTimeout <= 0 {
		opts.ProcessorTimeout = DefaultProcessorTimeout
	}
	if opts.ConnectorLease <= 0 {
		opts.ConnectorLease = DefaultConnectorLease
	}
	if opts.ReconcileAfter <= 0 {
		opts.ReconcileAfter = DefaultReconcileAfter
	}
	if opts.ProcessorCheckAfter <= 0 {
		opts.ProcessorCheckAfter = DefaultProcessorCheckAfter
	}
	if opts.RiskMetrics == nil {
		opts.RiskMetrics = noRiskMetrics{}
	}
	return &Service{store: store, vault: vault, router: router, opts: opts, pollEvery: 20 * time.Millisecond}
}

var (
	_ ivrpay.ConnectorService      = (*Service)(nil)
	_ ivrpay.PayinService          = (*Service)(nil)
	_ ivrpay.PayinLifecycleService = (*Service)(nil)
)

func (s *Service) now() time.Time { return s.opts.Clock.Now().UTC() }

func (s *Service) newID(prefix string) string { return ivrpay.NewID(s.opts.Mode, prefix, s.now()) }

// FindPayin returns a payin the caller may read.
func (s *Service) FindPayin(ctx context.Context, id string) (*ivrpay.Payin, error) {
	return s.store.FindPayin(ctx, id)
}

// ListPayins lists the payins the caller may read.
func (s *Service) ListPayins(ctx context.Context, f ivrpay.PayinFilter) (*ivrpay.List[*ivrpay.Payin], error) {
	return s.store.ListPayins(ctx, f)
}

// FindRefund returns a refund the caller may read.
func (s *Service) FindRefund(ctx context.Context, id string) (*ivrpay.Refund, error) {
	return s.store.FindRefund(ctx, id)
}

// call runs one processor call with its own deadline, detached from the
// client: a caller who hangs up never cuts a call to the processor short.
func (s *Service) call(ctx context.Context, f func(ctx context.Context) (ivrpay.ProcessorResult, error)) (ivrpay.ProcessorResult, error) {
	return s.callWithin(ctx, s.opts.ProcessorTimeout, f)
}

// connectorMargin is the part of a voice provider's timeout left for the
// connector's own work and the answer's way back.
const connectorMargin = time.Second

// ivrProcessorTimeout bounds a processor call of a connector request from
// provider: ProcessorTimeout, shortened to leave connectorMargin of the
// provider's own timeout, so that Telnyx and SignalWire (5 s) get an answer,
// if only PAYMENT_PENDING, before they give up on the connector.
func (s *Service) ivrProcessorTimeout(provider ivrpay.IVRProvider) time.Duration {
	return min(s.opts.ProcessorTimeout, provider.ConnectorTimeout()-connectorMargin)
}

// ivrAnswerBy is when the connector must have answered req: its provider's
// timeout from its arrival, less connectorMargin.
func ivrAnswerBy(req ivrpay.IVRRequest) time.Time {
	return req.ReceivedAt.Add(req.Provider.ConnectorTimeout() - connectorMargin)
}

// callWithin is call with a deadline of its own (ProcessorTimeout when 0).
func (s *Service) callWithin(ctx context.Context, timeout time.Duration, f func(ctx context.Context) (ivrpay.ProcessorResult, error)) (ivrpay.ProcessorResult, error) {
	if timeout <= 0 {
		timeout = s.opts.ProcessorTimeout
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	res, err := f(ctx)
	if err != nil && !errors.Is(err, ivrpay.ErrOutcomeUnknown) {
		// An adapter that forgot to say so: an error is an unknown outcome.
		err = fmt.Errorf("%w: %w", ivrpay.ErrOutcomeUnknown, err)
	}
	if err == nil && !res.Approved {
		s.normalizeRefusal(&res)
	}
	return res, err
}

// normalizeRefusal replaces the processor's own text of a refusal, which
// can name the operator's account or key, with the normalized refusal_desc
// tenants see (SPEC §9); the text goes to the operator's log, with the
// processor's reference that the payin shows.
func (s *Service) normalizeRefusal(res *ivrpay.ProcessorResult) {
	desc := ivrpay.RefusalDescription(res.RefusalCode, res.ProcessorCode)
	if res.RefusalDesc != "" && res.RefusalDesc != desc {
		s.opts.Logger.Info("processor refusal", "refusal_code", res.RefusalCode, "processor_reference", res.Reference,
			"processor_detail", res.RefusalDesc)
	}
	res.RefusalDesc = desc
}

// encryptCard is a card's number as the store keeps it: vault ciphertext.
func (s *Service) encryptCard(pan string) (ciphertext string, err error) {
	if ciphertext, err = s.vault.Encrypt(pan); err != nil {
		return "", fmt.Errorf("vault: %w", err)
	}
	return ciphertext, nil
}
