package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ivrpay/ivrpay"
)

// Persistence of the risk rules (SPEC §11): per-subject decline counters and
// active blocks, shared by every process. The decisions are the payments
// service's; the store appends, reads and deletes.

// riskSettings reads a platform's risk column (” is the defaults).
func riskSettings(text string) ivrpay.RiskSettings {
	r := ivrpay.DefaultRiskSettings
	if text != "" {
		// A column this package wrote; a bad one keeps the defaults.
		_ = json.Unmarshal([]byte(text), &r)
	}
	return r
}

// SetPlatformRisk sets a platform's risk thresholds and switches (audited).
func (s *Store) SetPlatformRisk(ctx context.Context, platformID string, r ivrpay.RiskSettings) (p *ivrpay.Platform, err error) {
	defer wrap(&err, "Store.SetPlatformRisk(%q)", platformID)
	if err := r.Validate(); err != nil {
		return nil, err
	}
	b, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	return s.updatePlatform(ctx, platformID, "platform.set_risk", "risk="+string(b),
		`UPDATE platforms SET risk = $2, updated_at = $3 WHERE id = $1`, string(b))
}

// riskMarkLen is the width of one mark in risk_counters.marks, its
// separating space included: 13 digits of Unix milliseconds, ':', the card key.
const riskMarkLen = 13 + 1 + ivrpay.RiskCardKeyLen + 1

func formatRiskMark(at time.Time, cardKey string) string {
	return fmt.Sprintf("%013d:%-*.*s ", at.UnixMilli(), ivrpay.RiskCardKeyLen, ivrpay.RiskCardKeyLen, cardKey)
}

func parseRiskMarks(text string) []ivrpay.RiskMark {
	var out []ivrpay.RiskMark
	for len(text) >= riskMarkLen {
		m := text[:riskMarkLen]
		text = text[riskMarkLen:]
		ms, err := strconv.ParseInt(m[:13], 10, 64)
		if err != nil {
			continue
		}
		out = append(out, ivrpay.RiskMark{At: time.UnixMilli(ms).UTC(), Card: strings.TrimRight(m[14:riskMarkLen-1], " ")})
	}
	return out
}

// riskAppend appends one mark and keeps the newest RiskMarksKept, in one
// statement: the row lock (PostgreSQL) or the write lock (SQLite) makes
// concurrent appends from every process add up, and RETURNING gives each
// the counter as its append left it.
var riskAppend = fmt.Sprintf(`INSERT INTO risk_counters (kind, subject, marks, expires_at) VALUES ($1, $2, $3, $4)
	ON CONFLICT (kind, subject) DO UPDATE SET
		marks = CASE WHEN length(risk_counters.marks) + length(excluded.marks) > %[1]d
			THEN substr(risk_counters.marks || excluded.marks, length(risk_counters.marks) + length(excluded.marks) - %[1]d + 1)
			ELSE risk_counters.marks || excluded.marks END,
		expires_at = excluded.expires_at
	RETURNING marks`, riskMarkLen*ivrpay.RiskMarksKept)

// addRiskDecline counts d under each of its subjects inside tx.
func (s *Store) addRiskDecline(ctx context.Context, tx querier, d *ivrpay.RiskDecline) error {
	mark := formatRiskMark(d.At, d.CardKey)
	d.Counted = ivrpay.RiskDeclines{}
	for _, sub := range d.Subjects {
		var marks string
		expires := ivrpay.FormatTime(d.At.Add(ivrpay.RiskRetention(sub.Kind)))
		if err := s.queryRow(ctx, tx, riskAppend, sub.Kind, sub.Subject, mark, expires).Scan(&marks); err != nil {
			return err
		}
		d.Counted[sub] = parseRiskMarks(marks)
	}
	return nil
}

// riskBlockColumns are the risk_blocks columns scanRiskBlock reads.
const riskBlockColumns = `kind, subject, platform_id, merchant_id, rule, detail, until, created_at`

func scanRiskBlock(sc scanner) (ivrpay.RiskBlock, error) {
	var b ivrpay.RiskBlock
	var until, created string
	err := sc.Scan(&b.Kind, &b.Value, &b.PlatformID, &b.MerchantID, &b.Rule, &b.Detail, &until, &created)
	b.Until, b.CreatedAt = parseTime(until), parseTime(created)
	return b, err
}

// riskBlockOfCharge is the column the read a new IVR charge starts with adds
// (readCharge): the block that weighs most
// (ivrpay.RiskKinds' order) among those active at $6 on the charge's card
// ($4), caller ($5), config and merchant, as "kind|subject|rule|until", or
// NULL. Four primary-key lookups inside a read the charge makes anyway, taken
// in that order (an ORDER BY would build a sorter on every charge).
var riskBlockOfCharge = func() string {
	subjects := map[string]string{ivrpay.RiskKindConfig: "c.id", ivrpay.RiskKindMerchant: "c.merchant_id",
		ivrpay.RiskKindCaller: "$5", ivrpay.RiskKindCard: "$4"}
	lookups := make([]string, len(ivrpay.RiskKinds))
	for i, kind := range ivrpay.RiskKinds {
		lookups[i] = `(SELECT b.kind || '|' || b.subject || '|' || b.rule || '|' || b.until FROM risk_blocks b
		WHERE b.kind = '` + kind + `' AND b.subject = ` + subjects[kind] + ` AND b.until > $6)`
	}
	return "COALESCE(" + strings.Join(lookups, ", ") + ")"
}()

// parseRiskBlockOfCharge reads riskBlockOfCharge's column.
func parseRiskBlockOfCharge(v sql.NullString) []ivrpay.RiskBlock {
	if !v.Valid {
		return nil
	}
	f := strings.SplitN(v.String, "|", 4)
	if len(f) != 4 {
		return nil
	}
	return []ivrpay.RiskBlock{{Kind: f[0], Value: f[1], Rule: f[2], Until: parseTime(f[3])}}
}

// FindRiskBlocks returns the blocks active at now on the given subjects.
func (s *Store) FindRiskBlocks(ctx context.Context, subjects []ivrpay.RiskSubject, now time.Time) (out []ivrpay.RiskBlock, err error) {
	defer wrap(&err, "Store.FindRiskBlocks")
	if len(subjects) == 0 {
		return nil, nil
	}
	args := []any{ivrpay.FormatTime(now)}
	var or []string
	for _, sub := range subjects {
		args = append(args, sub.Kind, sub.Subject)
		or = append(or, fmt.Sprintf("(kind = $%d AND subject = $%d)", len(args)-1, len(args)))
	}
	return scanRiskBlocks(s.rdb.QueryContext(ctx, `SELECT `+riskBlockColumns+` FROM risk_blocks WHERE until > $1 AND (`+strings.Join(or, " OR ")+`)`, args...))
}

// scanRiskBlocks reads the blocks a query returned, and closes its rows.
func scanRiskBlocks(rows *sql.Rows, err error) ([]ivrpay.RiskBlock, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []ivrpay.RiskBlock{}
	for rows.Next() {
		b, err := scanRiskBlock(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, rows.Err()
}

// CountIVRAttempts counts a merchant's IVR payins created since `since` that
// reached the processor (risk refusals did not): the merchant breaker's
// denominator, read only when its declines reach the bar.
func (s *Store) CountIVRAttempts(ctx context.Context, merchantID string, since time.Time) (n int, err error) {
	defer wrap(&err, "Store.CountIVRAttempts(%q)", merchantID)
	// source = 'IVR' repeats the partial index payins_merchant_ivr's predicate word for word.
	err = s.rdb.QueryRowContext(ctx, `SELECT COUNT(*) FROM payins WHERE merchant_id = $1 AND created_at >= $2 AND source = 'IVR'
		AND refusal_code <> $3`, merchantID, ivrpay.FormatTime(since), ivrpay.RefusalRiskBlocked).Scan(&n)
	return n, err
}

// RecordRiskBlocks starts or extends each block. A block that starts (no
// active block on its subject, in any process) gets its audit row and, for a
// merchant, the merchant.risk_paused event, in the same transaction; one that
// only extends an active block gets neither. It returns the blocks that started.
func (s *Store) RecordRiskBlocks(ctx context.Context, blocks []ivrpay.RiskBlock) (started []ivrpay.RiskBlock, err error) {
	defer wrap(&err, "Store.RecordRiskBlocks")
	err = s.inTx(ctx, func(tx querier) error {
		started = started[:0]
		for _, b := range blocks {
			created, until := ivrpay.FormatTime(b.CreatedAt), ivrpay.FormatTime(b.Until)
			res, err := s.exec(ctx, tx, `INSERT INTO risk_blocks (`+riskBlockColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
				ON CONFLICT (kind, subject) DO NOTHING`, b.Kind, b.Value, b.PlatformID, b.MerchantID, b.Rule, b.Detail, until, created)
			if err != nil {
				return err
			}
			n, err := res.RowsAffected()
			if err == nil && n == 0 {
				// A row that ended (not pruned yet) starts again.
				res, err = s.exec(ctx, tx, `UPDATE risk_blocks SET platform_id = $3, merchant_id = $4, rule = $5, detail = $6, until = $7, created_at = $8
					WHERE kind = $1 AND subject = $2 AND until <= $8`, b.Kind, b.Value, b.PlatformID, b.MerchantID, b.Rule, b.Detail, until, created)
				if err == nil {
					n, err = res.RowsAffected()
				}
			}
			if err != nil {
				return err
			}
			if n == 0 {
				// Active already: it lasts until the later end.
				_, err = s.exec(ctx, tx, `UPDATE risk_blocks SET rule = $3, detail = $4, until = $5 WHERE kind = $1 AND subject = $2 AND until < $5`,
					b.Kind, b.Value, b.Rule, b.Detail, until)
				if err != nil {
					return err
				}
				continue
			}
			started = append(started, b)
			if err := s.insertAudit(ctx, tx, ivrpay.AuditEvent{PlatformID: b.PlatformID, Action: "risk.block", Target: b.Kind + ":" + b.Value,
				Outcome: ivrpay.AuditDenied, Detail: fmt.Sprintf("rule=%s until=%s %s", b.Rule, until, b.Detail)}); err != nil {
				return err
			}
			if b.Kind == ivrpay.RiskKindMerchant {
				if err := s.emitEvent(ctx, tx, b.PlatformID, ivrpay.EventMerchantRiskPaused, b.Value, b); err != nil {
					return err
				}
			}
		}
		return nil
	})
	return started, err
}

// ListRiskBlocks returns the blocks active at now, newest first, of one
// platform (all when platformID is empty).
func (s *Store) ListRiskBlocks(ctx context.Context, platformID string, now time.Time) (out []ivrpay.RiskBlock, err error) {
	defer wrap(&err, "Store.ListRiskBlocks")
	q, args := `SELECT `+riskBlockColumns+` FROM risk_blocks WHERE until > $1`, []any{ivrpay.FormatTime(now)}
	if platformID != "" {
		q, args = q+` AND platform_id = $2`, append(args, platformID)
	}
	return scanRiskBlocks(s.rdb.QueryContext(ctx, q+` ORDER BY created_at DESC, kind, subject LIMIT 1000`, args...))
}

// ClearRiskBlock lifts the blocks on one subject and forgets its declines, so
// that its count starts again (audited, one row per block lifted). A caller
// is PLATFORM_ID:NUMBER as the list shows it, or the number alone for every
// platform. ENOTFOUND when no block is active on it.
func (s *Store) ClearRiskBlock(ctx context.Context, kind, value string, now time.Time) (cleared []ivrpay.RiskBlock, err error) {
	defer wrap(&err, "Store.ClearRiskBlock(%q, %q)", kind, value)
	if !slices.Contains(ivrpay.RiskKinds, kind) {
		return nil, ivrpay.FieldErrorf("kind", "unknown kind %q; kinds are %s", kind, strings.Join(ivrpay.RiskKinds, ", "))
	}
	match, args := `kind = $1 AND subject = $2`, []any{kind, value}
	if kind == ivrpay.RiskKindCaller && !strings.Contains(value, ":") {
		match, args = `kind = $1 AND subject LIKE $2`, []any{kind, "%:" + value}
	}
	err = s.inTx(ctx, func(tx querier) error {
		var err error
		cleared, err = scanRiskBlocks(tx.QueryContext(ctx, `SELECT `+riskBlockColumns+` FROM risk_blocks WHERE `+match+` AND until > $3`, append(args, ivrpay.FormatTime(now))...))
		if err != nil {
			return err
		}
		if len(cleared) == 0 {
			return ivrpay.Errorf(ivrpay.ENOTFOUND, "no active risk block on %s %s (ivrpay admin risk list shows them)", kind, value)
		}
		for _, q := range []string{`DELETE FROM risk_blocks WHERE ` + match, `DELETE FROM risk_counters WHERE ` + match} {
			if _, err := tx.ExecContext(ctx, q, args...); err != nil {
				return err
			}
		}
		for _, b := range cleared {
			if err := s.insertAudit(ctx, tx, ivrpay.AuditEvent{PlatformID: b.PlatformID, Action: "risk.clear", Target: b.Kind + ":" + b.Value,
				Outcome: ivrpay.AuditSuccess, Detail: fmt.Sprintf("rule=%s was_until=%s", b.Rule, ivrpay.FormatTime(b.Until))}); err != nil {
				return err
			}
		}
		return nil
	})
	return cleared, err
}

// PruneRisk deletes the counters whose last decline is older than their
// kind's longest window and the blocks that have ended: every row expires
// by itself, so the tables hold only what the rules still count.
func (s *Store) PruneRisk(ctx context.Context, now time.Time) (err error) {
	defer wrap(&err, "Store.PruneRisk")
	at := ivrpay.FormatTime(now)
	for _, q := range []string{`DELETE FROM risk_counters WHERE expires_at <= $1`, `DELETE FROM risk_blocks WHERE until <= $1`} {
		if _, err := s.execTx(ctx, q, at); err != nil {
			return err
		}
	}
	return nil
}

var _ ivrpay.RiskBlockService = (*Store)(nil)

// ListActiveRiskBlocks lists the caller's platform's active blocks.
func (s *Store) ListActiveRiskBlocks(ctx context.Context) (out []ivrpay.RiskBlock, err error) {
	defer wrap(&err, "Store.ListActiveRiskBlocks")
	caller, err := authorizePlatformLevel(ctx, "payin:read")
	if err != nil {
		return nil, err
	}
	return s.ListRiskBlocks(ctx, caller.PlatformID, s.now())
}
