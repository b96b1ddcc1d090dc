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
// settlement and webhook delivery. Both are safe to run in several processes
// on one database.
type backgroundWorkers struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// startWorkers starts settlement (PROCESSING → SUCCEEDED after settleAfter)
// and the webhook delivery worker. In sandbox, deliveries may go to loopback
// and private addresses; in production only to public ones.
func startWorkers(ctx context.Context, store *sqlstore.Store, pay *payments.Service, logger *slog.Logger, mode ivrpay.Mode, settleAfter time.Duration) *backgroundWorkers {
	ctx, cancel := context.WithCancel(ctx)
	w := &backgroundWorkers{cancel: cancel}
	poll := min(max(settleAfter/4, 50*time.Millisecond), time.Second)
	w.wg.Add(3)
	go func() {
		defer w.wg.Done()
		pay.RunReconciler(ctx, time.Second)
	}()
	go func() {
		defer w.wg.Done()
		store.RunSettlement(ctx, settleAfter, poll)
	}()
	deliverer := &webhook.Worker{Outbox: store, AllowPrivate: mode == ivrpay.ModeSandbox, Logger: logger,
		Schedule: testWebhookSchedule(mode, logger)}
	go func() {
		defer w.wg.Done()
		deliverer.Run(ctx)
	}()
	return w
}

// stop ends both loops and waits for them; a webhook attempt in flight is
// finished and recorded first (within the worker's timeout).
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
