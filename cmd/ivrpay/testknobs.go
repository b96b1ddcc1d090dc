package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/ivrpay/ivrpay"
)

// connectorLeaseEnv shortens the connector's transaction lease (30 s) in a
// sandbox, so that the crash test's retries take over a killed server's
// attempts within seconds. It is a test-only knob: a lease shorter than the
// processor's answer lets a retry run beside a live attempt.
const connectorLeaseEnv = "IVRPAY_CONNECTOR_LEASE"

// testConnectorLease returns the lease IVRPAY_CONNECTOR_LEASE asks for in
// sandbox mode, saying so on stderr, or 0 (the store's default).
func testConnectorLease(mode ivrpay.Mode, stderr io.Writer) time.Duration {
	v := os.Getenv(connectorLeaseEnv)
	if v == "" {
		return 0
	}
	d, err := time.ParseDuration(v)
	switch {
	case mode != ivrpay.ModeSandbox:
		fmt.Fprintf(stderr, "ivrpay: ignoring %s in %s mode (it is a test-only setting)\n", connectorLeaseEnv, mode)
		return 0
	case err != nil || d <= 0:
		fmt.Fprintf(stderr, "ivrpay: ignoring %s=%q: not a positive duration\n", connectorLeaseEnv, v)
		return 0
	}
	fmt.Fprintf(stderr, "ivrpay: connector lease %s from %s (test-only setting)\n", d, connectorLeaseEnv)
	return d
}

// holdProcessorEventsEnv, set to 1 in a sandbox, makes serve store the
// processor events it receives without applying them (no worker applies
// them either), so that the crash test can kill it between storing an
// event and applying it. It is a test-only knob and is ignored in production.
const holdProcessorEventsEnv = "IVRPAY_TEST_HOLD_PROCESSOR_EVENTS"

// testHoldProcessorEvents reports whether IVRPAY_TEST_HOLD_PROCESSOR_EVENTS
// asks for it in sandbox mode, saying so on stderr.
func testHoldProcessorEvents(mode ivrpay.Mode, stderr io.Writer) bool {
	if os.Getenv(holdProcessorEventsEnv) != "1" {
		return false
	}
	if mode != ivrpay.ModeSandbox {
		fmt.Fprintf(stderr, "ivrpay: ignoring %s in %s mode (it is a test-only setting)\n", holdProcessorEventsEnv, mode)
		return false
	}
	fmt.Fprintf(stderr, "ivrpay: processor events are stored and never applied (%s, a test-only setting)\n", holdProcessorEventsEnv)
	return true
}
