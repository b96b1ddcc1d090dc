package main

import (
	"context"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/ivrpay/ivrpay"
	"github.com/ivrpay/ivrpay/payments"
	"github.com/ivrpay/ivrpay/sqlstore"
	"github.com/ivrpay/ivrpay/webhook"
)

// backgroundWorkers are the loops `ivrpay serve` runs beside the HTTP server:
// the reconciler, the processor events inbox, the sandbox processor's
// confirmations, the look-up fallback, the card-answer look-ups, webhook
// delivery and the cleanups.
// All are safe to run in several processes on one database.
type backgroundWorkers struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// workerPassTimeout bounds one worker pass that stop lets finish: a
// reconciler or look-up pass asks processors (each call cut at 6 s).
const workerPassTimeout = 20 * time.Second

// lookupPoll is how often the look-up fallback looks for payins and refunds
// that stayed PROCESSING for --processor-check-after.
const lookupPoll = 5 * time.Second

// workerPass is one loop of startWorkers: pass, run every every; failed
// is the log message of a pass that fails.
type workerPass struct {
	every  time.Duration
	pass   func(context.Context) error
	failed string
}

// startWorkers starts the reconciler, the inbox worker (stored processor
// events not applied yet, or waiting for their object), the sandbox
// processor's confirmations (its payins and refunds PROCESSING for
// settleAfter; in sandbox only: no timer settles a real account's), the
// look-up fallback, the card-answer pass, the webhook delivery worker and
// the cleanups. In sandbox, deliveries may go to loopback and private
// addresses; in production only to public ones. They run until stop, not
// until the server's context ends, so that SIGTERM stops them only once
// they reach a safe point.
func startWorkers(store *sqlstore.Store, pay *payments.Service, logger *slog.Logger, mode ivrpay.Mode, settleAfter time.Duration) *backgroundWorkers {
	ctx, cancel := context.WithCancel(context.Background())
	w := &backgroundWorkers{cancel: cancel}
	poll := min(max(settleAfter/4, 50*time.Millisecond), time.Second)
	passes := []workerPass{
		{time.Second, func(ctx context.Context) error { _, err := pay.ReconcileDue(ctx); return err }, "reconciler pass failed"},
		{poll, func(ctx context.Context) error { _, err := pay.ApplyDueProcessorEvents(ctx); return err }, "processor events pass failed"},
		{lookupPoll, func(ctx context.Context) error { _, err := pay.LookUpProcessingDue(ctx); return err }, "processor look-up pass failed"},
		// The card network's answer of payins an event approved without it.
		{lookupPoll, func(ctx context.Context) error { _, err := pay.FillCardAnswersDue(ctx); return err }, "card answer look-up pass failed"},
		// Risk counters and blocks expire by themselves; this deletes them once they have.
		{time.Minute, func(ctx context.Context) error { return store.PruneRisk(ctx, time.Now()) }, "risk prune pass failed"},
		// Expired sessions already answer 401; this deletes their rows.
		{time.Minute, func(ctx context.Context) error { _, err := store.DeleteExpiredSessions(ctx); return err }, "expired session cleanup failed"},
	}
	if mode == ivrpay.ModeSandbox {
		passes = append(passes, workerPass{poll, func(ctx context.Context) error { _, err := pay.ConfirmSandboxDue(ctx, settleAfter); return err }, "sandbox confirmation pass failed"})
	}
	for _, p := range passes {
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			runPasses(ctx, p.every, p.pass, logger, p.failed)
		}()
	}
	deliverer := &webhook.Worker{Outbox: store, AllowPrivate: mode == ivrpay.ModeSandbox, Logger: logger,
		Schedule: testWebhookSchedule(mode, logger)}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		// A claimed delivery is attempted and recorded even when ctx ends.
		deliverer.Run(ctx)
	}()
	return w
}

// runPasses runs pass every poll until ctx ends. A pass that has begun is
// not cut short by ctx (only by workerPassTimeout): the processor call of a
// payin being reconciled gets its answer and the answer is recorded, rather
// than leaving the payin leased until another process takes it over.
func runPasses(ctx context.Context, poll time.Duration, pass func(context.Context) error, logger *slog.Logger, failed string) {
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), workerPassTimeout)
		err := pass(pctx)
		cancel()
		if err != nil {
			logger.Error(failed, "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// stop ends the loops after the passes they are in and waits for them; a
// webhook attempt in flight is finished and recorded first (within the
// worker's timeout).
func (w *backgroundWorkers) stop() {
	w.cancel()
	w.wg.Wait()
}

// webhookScheduleEnv replaces the webhook retry schedule in a sandbox (a
// comma-separated list of delays, the first for the first attempt), so that
// tests of the built binary see retries within seconds. It is a test-only
// knob and is ignored in production.
const webhookScheduleEnv = "IVRPAY_WEBHOOK_SCHEDULE"

// testWebhookSchedule returns the schedule IVRPAY_WEBHOOK_SCHEDULE asks for
// in sandbox mode, or nil (webhook.DefaultSchedule).
func testWebhookSchedule(mode ivrpay.Mode, logger *slog.Logger) []time.Duration {
	v := os.Getenv(webhookScheduleEnv)
	if v == "" {
		return nil
	}
	if mode != ivrpay.ModeSandbox {
		logger.Warn("ignoring a test-only setting outside sandbox", "env", webhookScheduleEnv)
		return nil
	}
	var schedule []time.Duration
	for _, part := range strings.Split(v, ",") {
		d, err := time.ParseDuration(strings.TrimSpace(part))
		if err != nil || d < 0 {
			logger.Warn("ignoring a malformed test-only setting", "env", webhookScheduleEnv, "value", v)
			return nil
		}
		schedule = append(schedule, d)
	}
	logger.Warn("webhook retry schedule from a test-only setting", "env", webhookScheduleEnv, "schedule", v)
	return schedule
}
