// Command ivrpay is the payments platform API whose headline feature is card
// payments over the phone. See `ivrpay help`.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// usage is the top-level help. Every serve flag and every admin command is
// listed (TestUsageListsEveryCommand checks it against serve -h and admin
// -h); the other commands show their common forms and say where the rest is.
const usage = `ivrpay — card payments over the phone (Twilio, Telnyx and SignalWire pay connectors), Rainforest-style API

Usage:
  ivrpay serve     [--addr 127.0.0.1:8080] [--db ivrpay.db | --db postgres://…] [--mode sandbox|production]
                   [--base-url URL] [--vault-key-file FILE] [--tls-cert F --tls-key F | --behind-proxy]
                   [--metrics-addr ADDR] [--reconcile-after 2m] [--processor-check-after 30m]
                   [--session-secret-file F] [--drain-delay D]
                   [--sandbox-settle-after 60s] [--sandbox-processor-latency D]   (ivrpay serve -h)
  ivrpay admin     [--db …] [--mode …] [--vault-key-file F] COMMAND, one of:   (ivrpay admin -h)
                   platform create --name N [--enable-ivr] | platform enable-ivr ID | platform disable-ivr ID
                   platform set-min-api-version ID VERSION | platform set-processor ID ACCOUNT
                   platform set-risk ID [--card-declines N/1h] [--config-attempts N] [--caller-declines N/1h]
                     [--merchant-breaker on|off] [--require-cvc-match] [--require-avs-match]
                   merchant activate ID | merchant set-processor ID ACCOUNT [--account-ref REF]
                   risk list [--platform P] | risk clear KIND VALUE
                   processor add --name N --kind stripe|adyen … [--events-secret-file F] | processor list
                   processor set-events-secret NAME --events-secret-file F [--forget-previous]
                   processor remove NAME
                   events list [--unmatched | --failed | --stale] [--limit N] | events retry ACCOUNT EVENT_ID
                   key disable ID | vault rotate
                   audit [--actor A] [--platform P] [--action X] [--outcome O] [--since 24h] [--limit N] [--json]
  ivrpay twiml     --amount 10.00 --payin-config-id ID --connector NAME | --payment-method-config-id ID --connector NAME
                   [--provider twilio|telnyx|signalwire] [--format …]   (ivrpay twiml -h)
  ivrpay twiml check FILE [--provider P] [--amount A]
  ivrpay simulate  --endpoint URL --api-key KEY (--twiml FILE | twiml flags) --card N --exp MM/YY --cvv C --postal-code Z
                   [--provider telnyx|signalwire] [--username U] [--content-type T] [--status-callback URL]
                   [--account-sid AC…] [--auth-token T]   (ivrpay simulate -h)
  ivrpay twilio-emulator --auth-token T --connector NAME=URL [--addr 127.0.0.1:8089] [--account-sid AC…]
                   Twilio's Payments REST resource (agent-assisted payments) and a keypad, locally
  ivrpay demo      [--keep]   the whole story on a throw-away database
  ivrpay loadtest  --base-url URL --api-key ADMIN_KEY [--rate R | --concurrency C] --duration D   (ivrpay loadtest -h)

Every flag can also be set as an environment variable IVRPAY_<NAME> (e.g. IVRPAY_DB, IVRPAY_VAULT_KEY_FILE).
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "serve":
		return runServe(ctx, args[1:], stdout, stderr)
	case "admin":
		return runAdmin(ctx, args[1:], stdout, stderr)
	case "twiml":
		return runTwiML(ctx, args[1:], stdout, stderr)
	case "simulate":
		return runSimulate(ctx, args[1:], stdout, stderr)
	case "twilio-emulator":
		return runTwilioEmulator(ctx, args[1:], stdout, stderr)
	case "demo":
		return runDemo(ctx, args[1:], stdout, stderr)
	case "loadtest":
		return runLoadtest(ctx, args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "ivrpay: unknown command %q\n\n%s", args[0], usage)
	return 2
}
