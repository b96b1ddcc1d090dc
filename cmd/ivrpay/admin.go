package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ivrpay/ivrpay"
	"github.com/ivrpay/ivrpay/sqlstore"
)

const adminUsage = `Usage: ivrpay admin [--db FILE|URL] [--mode sandbox|production] [--vault-key-file F] COMMAND
  platform create --name N [--enable-ivr]    prints JSON with platform_id and an admin api_key
  platform enable-ivr ID | platform disable-ivr ID
  platform set-min-api-version ID VERSION    (2023-01-01, 2023-12-01 or 2024-10-16)
  merchant activate ID
  merchant set-processor ID ACCOUNT [--account-ref REF]
                                             routes the merchant's payments to a processor account
  platform set-processor ID ACCOUNT          the default processor account of the platform's merchants
  platform set-risk ID [--card-declines N/1h] [--config-attempts N] [--caller-declines N/1h]
                    [--merchant-breaker on|off] [--require-cvc-match] [--require-avs-match]
                                             the platform's risk thresholds and switches (docs/risk.md)
  risk list [--platform P]                   active risk blocks (a card is its fingerprint and last 4)
  risk clear KIND VALUE                      lifts a block (KIND card, config, caller or merchant); audited
  processor add --name N --kind stripe --secret-key-file F [--api-base URL] [--events-secret-file F]
  processor add --name N --kind adyen --api-key-file F --merchant-account M [--api-base URL] [--events-secret-file F]
                                             --events-secret-file: the secret that signs the account's events
                                             (Stripe whsec_…, Adyen's HMAC key; docs/processors.md)
  processor set-events-secret NAME --events-secret-file F [--forget-previous]
                                             replaces the events secret; the replaced one is still accepted
                                             for 7 days unless --forget-previous
  processor list                             JSON, never a secret (events_secret_set says whether one is set)
  processor remove NAME                      refused while a platform, merchant or payin uses it
  events list [--unmatched | --failed | --stale] [--limit N]
                                             JSON: the processor events inbox, newest first; --unmatched: events no
                                             payin or refund matched; --failed: events whose application failed with
                                             an error 10 times (the note holds the last error; they changed nothing):
                                             fix the cause, then retry them; --stale: a real account's payins and
                                             refunds PROCESSING for over 24 h (no event came, no look-up settled them)
  events retry ACCOUNT EVENT_ID              puts a FAILED event back to PENDING, due now: the next inbox pass of a
                                             serve process applies it (audited)
  key disable ID
  vault rotate                               adds a new vault key that every serve process learns, then re-encrypts
                                             every stored secret under it and retires the old key (while serving)
  audit [--actor A] [--platform P] [--action X] [--outcome O] [--since 24h|TIME] [--limit N] [--json]
                                             who did what, when, from where, with what outcome
`

func runAdmin(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("admin", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, adminUsage) }
	var sc storeConfig
	sc.register(fs)
	name := fs.String("name", "", "platform name (platform create), account name (processor add)")
	enableIVR := fs.Bool("enable-ivr", false, "enable IVR payments on the new platform (platform create)")
	var af ivrpay.AuditFilter
	fs.StringVar(&af.Actor, "actor", "", "audit: only events by this actor (an API key id, operator or anonymous)")
	fs.StringVar(&af.PlatformID, "platform", "", "audit: only events of this platform")
	fs.StringVar(&af.Action, "action", "", "audit: only this action (e.g. api_key.create), or a family with a trailing dot (payin.)")
	fs.StringVar(&af.Outcome, "outcome", "", "audit: only this outcome (success, denied, failed, or a payin status)")
	since := fs.String("since", "", "audit: only events since a time (RFC 3339) or a duration ago (e.g. 24h)")
	fs.IntVar(&af.Limit, "limit", 100, "audit, events list: at most this many events, newest first")
	unmatched := fs.Bool("unmatched", false, "events list: only the processor events that matched no payin or refund")
	failed := fs.Bool("failed", false, "events list: only the processor events whose application kept failing (FAILED)")
	stale := fs.Bool("stale", false, "events list: a real account's payins and refunds PROCESSING for over 24 h, instead of events")
	asJSON := fs.Bool("json", false, "audit: print JSON lines instead of a table")
	var pf processorFlags
	pf.register(fs)
	var rf riskFlags
	rf.register(fs)
	if err := parseFlags(fs, args); err != nil {
		return 2
	}
	cmd := strings.Join(fs.Args(), " ")
	arg := func(i int) string { return fs.Arg(i) }
	store, v, mode, err := sc.open(ctx, newLogger(sc.mode, io.Discard), stderr, "")
	if err != nil {
		fmt.Fprintf(stderr, "ivrpay admin: %v\n", err)
		return 1
	}
	defer store.Close()
	host, _ := os.Hostname()
	ctx = ivrpay.NewContextWithClientAddress(ctx, "cli:"+os.Getenv("USER")+"@"+host)
	var out any
	switch {
	case cmd == "audit":
		if af.Since, err = parseSince(*since, time.Now()); err != nil {
			fmt.Fprintf(stderr, "ivrpay admin audit: --since: %v\n", err)
			return 2
		}
		events, err := store.ListAudit(ctx, af)
		if err != nil {
			return adminFail(stderr, err)
		}
		printAudit(stdout, events, *asJSON)
		return 0
	case fs.NArg() == 2 && arg(0) == "platform" && arg(1) == "create":
		p, key, err := store.CreatePlatform(ctx, *name, *enableIVR)
		if err != nil {
			return adminFail(stderr, err)
		}
		out = map[string]any{"platform_id": p.ID, "name": p.Name, "ivr_payments": p.IVRPayments,
			"min_api_version": p.MinAPIVersion, "api_key_id": key.ID, "api_key": key.Secret}
	case fs.NArg() == 3 && arg(0) == "platform" && (arg(1) == "enable-ivr" || arg(1) == "disable-ivr"):
		out, err = store.SetPlatformIVR(ctx, arg(2), arg(1) == "enable-ivr")
	case fs.NArg() == 4 && arg(0) == "platform" && arg(1) == "set-min-api-version":
		out, err = store.SetPlatformMinAPIVersion(ctx, arg(2), ivrpay.APIVersion(arg(3)))
	case fs.NArg() == 3 && arg(0) == "merchant" && arg(1) == "activate":
		out, err = store.ActivateMerchant(ctx, arg(2))
	case fs.NArg() == 3 && arg(0) == "key" && arg(1) == "disable":
		out, err = store.DisableAPIKey(ctx, arg(2))
	case cmd == "processor add":
		out, err = addProcessorAccount(ctx, store, v, mode, *name, pf)
	case fs.NArg() == 3 && arg(0) == "processor" && arg(1) == "set-events-secret":
		out, err = setEventsSecret(ctx, store, v, mode, arg(2), pf)
	case cmd == "processor list":
		if out, err = store.ListProcessorAccounts(ctx); err == nil && out.([]*ivrpay.ProcessorAccount) == nil {
			out = []*ivrpay.ProcessorAccount{}
		}
	case fs.NArg() == 3 && arg(0) == "processor" && arg(1) == "remove":
		if err = store.RemoveProcessorAccount(ctx, arg(2)); err == nil {
			out = map[string]any{"removed": arg(2)}
		}
	case fs.NArg() == 4 && arg(0) == "platform" && arg(1) == "set-processor":
		out, err = store.SetPlatformProcessor(ctx, arg(2), arg(3))
	case fs.NArg() == 4 && arg(0) == "merchant" && arg(1) == "set-processor":
		out, err = store.SetMerchantProcessor(ctx, arg(2), arg(3), pf.accountRef)
	case fs.NArg() == 3 && arg(0) == "platform" && arg(1) == "set-risk":
		var p *ivrpay.Platform
		if p, err = store.FindPlatform(ctx, arg(2)); err == nil {
			var r ivrpay.RiskSettings
			if r, err = rf.apply(fs, p.Risk); err != nil {
				fmt.Fprintf(stderr, "ivrpay admin platform set-risk: %v\n", err)
				return 2
			}
			out, err = store.SetPlatformRisk(ctx, p.ID, r)
		}
	case cmd == "risk list":
		out, err = store.ListRiskBlocks(ctx, af.PlatformID, time.Now())
	case fs.NArg() == 4 && arg(0) == "risk" && arg(1) == "clear":
		out, err = store.ClearRiskBlock(ctx, arg(2), arg(3), time.Now())
	case cmd == "events list":
		if out, err = listProcessorEvents(ctx, store, *unmatched, *failed, *stale, af.Limit); ivrpay.ErrorCode(err) == ivrpay.EINVALID {
			fmt.Fprintf(stderr, "ivrpay admin events list: %s\n", ivrpay.ErrorMessage(err))
			return 2
		}
	case fs.NArg() == 4 && arg(0) == "events" && arg(1) == "retry":
		out, err = store.RetryProcessorEvent(ctx, arg(2), arg(3), time.Now())
	case cmd == "vault rotate":
		out, err = v.Rotate(ctx, stderr)
	default:
		fmt.Fprintf(stderr, "ivrpay admin: unknown command %q\n\n%s", cmd, adminUsage)
		return 2
	}
	if err != nil {
		return adminFail(stderr, err)
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	enc.Encode(out)
	return 0
}

// listProcessorEvents is `admin events list`: the inbox's events (only the
// unmatched or the failed ones), or the stale payins and refunds (SPEC
// §4.2). Events carry no card data and no secret.
func listProcessorEvents(ctx context.Context, store *sqlstore.Store, unmatched, failed, stale bool, limit int) (any, error) {
	var given []string
	for _, f := range []struct {
		name string
		set  bool
	}{{"--unmatched", unmatched}, {"--failed", failed}, {"--stale", stale}} {
		if f.set {
			given = append(given, f.name)
		}
	}
	if len(given) > 1 {
		return nil, ivrpay.FieldErrorf(strings.TrimPrefix(given[1], "--"),
			"%s and %s: give one of them (--unmatched and --failed list events of that status, --stale lists payins and refunds)",
			strings.Join(given[:len(given)-1], ", "), given[len(given)-1])
	}
	if limit < 1 || limit > ivrpay.MaxPageLimit {
		return nil, ivrpay.FieldErrorf("limit", "must be 1 to %d", ivrpay.MaxPageLimit)
	}
	if stale {
		return store.ListStaleObjects(ctx, time.Now().Add(-ivrpay.StaleAfter), limit)
	}
	f := ivrpay.ProcessorEventFilter{Limit: limit}
	switch {
	case unmatched:
		f.Status = ivrpay.ProcessorEventUnmatched
	case failed:
		f.Status = ivrpay.ProcessorEventFailed
	}
	return store.ListProcessorEvents(ctx, f)
}

func adminFail(stderr io.Writer, err error) int {
	if ivrpay.ErrorCode(err) == ivrpay.EINTERNAL {
		fmt.Fprintf(stderr, "ivrpay admin: %v\n", err)
	} else {
		fmt.Fprintf(stderr, "ivrpay admin: %s\n", ivrpay.ErrorMessage(err))
	}
	return 1
}

// parseSince reads --since as an RFC 3339 time or a duration before now.
func parseSince(v string, now time.Time) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(v); err == nil {
		return now.Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither a duration (24h) nor an RFC 3339 time", v)
	}
	return t, nil
}

func printAudit(w io.Writer, events []ivrpay.AuditEvent, asJSON bool) {
	if asJSON {
		enc := json.NewEncoder(w)
		for _, e := range events {
			enc.Encode(e)
		}
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "WHEN\tWHO\tPLATFORM\tWHAT\tTARGET\tFROM\tOUTCOME\tDETAIL")
	for _, e := range events {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.OccurredAt.Format(time.RFC3339), e.Actor, e.PlatformID,
			e.Action, e.Target, e.ClientAddress, e.Outcome, e.Detail)
	}
	tw.Flush()
}
