// Package sqlstore implements ivrpay's services over database/sql, with one
// code path for two engines: SQLite (modernc.org/sqlite, WAL, the embedded
// default) and PostgreSQL (pgx). Correctness under concurrency comes from the
// database (unique constraints and transactions), never from in-process locks
// alone, so several server processes can share one PostgreSQL database.
package sqlstore

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
	"github.com/pressly/goose/v3"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/ivrpay/ivrpay"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Engine names.
const (
	EngineSQLite   = "sqlite"
	EnginePostgres = "postgres"
)

// Options are what the store needs besides the database.
type Options struct {
	Mode   ivrpay.Mode
	Clock  ivrpay.Clock
	Vault  ivrpay.Vault
	Logger *slog.Logger
}

// Store implements the ivrpay service interfaces.
type Store struct {
	engine string
	// wdb takes every write transaction. On SQLite it holds one connection, so
	// writers queue in Go instead of spinning on SQLITE_BUSY; on PostgreSQL it
	// is the same pool as rdb.
	wdb  *sql.DB
	rdb  *sql.DB
	opts Options
	// group is SQLite's group commit (see inTx); nil on PostgreSQL.
	group *groupCommit
	// checkpoints copies SQLite's WAL into the database file in the
	// background (walCheckpointEvery), on ckdb, a connection of its own;
	// both nil on PostgreSQL.
	checkpoints *checkpointer
	ckdb        *sql.DB
	// stmts caches the hot paths' prepared statements (see stmtCache).
	stmts stmtCache
	// statements counts what went through stmts (Statements).
	statements atomic.Int64
	// writes counts write transactions (WriteTransactions).
	writes atomic.Int64
	// roundTrips counts PostgreSQL round trips (RoundTrips).
	roundTrips atomic.Int64
	// endpoints caches each platform's webhook endpoints (EndpointCacheFor).
	endpoints *endpointCache
	// auth caches successful API key authentications (AuthCacheFor).
	auth *authCache
}

// SQLite's page cache per connection (see Open).
const (
	writerCacheKiB     = 8000
	readerCacheKiB     = 2000
	checkpointCacheKiB = 100
)

// walCheckpointPages is the WAL size, in pages, at which a commit copies the
// WAL back into the database file itself (SQLite's default is 1,000). The
// background checkpoint (walCheckpointEvery) normally copies it first; this
// bounds the WAL when that one falls behind. A checkpoint copies each page
// the WAL holds once, however many commits wrote it, and fsyncs the
// database file; the pages a charge writes are mostly the same few (the
// tables' and indexes' right edges), so ten times the WAL copies them a
// tenth as often. Measured at 64 callers, before the background
// checkpoint: checkpoints 0.033 → 0.015 ms of CPU per call, fsyncs 0.031 →
// 0.021 ms (docs/benchmarks.md). The WAL file can grow to about 40 MiB
// before it is reused, and a crash replays up to that much at the next open.
const walCheckpointPages = 10000

// Open connects to dsn (a SQLite file path, or a postgres:// URL), applies the
// migrations and returns the store.
func Open(ctx context.Context, dsn string, opts Options) (s *Store, err error) {
	defer wrap(&err, "sqlstore.Open")
	if opts.Clock == nil {
		opts.Clock = ivrpay.SystemClock{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Mode == "" {
		opts.Mode = ivrpay.ModeSandbox
	}
	s = &Store{opts: opts, auth: newAuthCache(), endpoints: newEndpointCache()}
	var dialect goose.Dialect
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		s.engine, dialect = EnginePostgres, goose.DialectPostgres
		db, err := sql.Open("pgx", dsn)
		if err != nil {
			return nil, err
		}
		db.SetMaxOpenConns(32)
		db.SetMaxIdleConns(32)
		s.wdb, s.rdb = db, db
	} else {
		s.engine, dialect = EngineSQLite, goose.DialectSQLite3
		path := strings.TrimPrefix(dsn, "file:")
		if i := strings.IndexByte(path, '?'); i >= 0 {
			path = path[:i]
		}
		if err := createPrivate(path); err != nil {
			return nil, err
		}
		// Durability stays WAL + synchronous=FULL. The rest trades memory for
		// fewer system calls (docs/benchmarks.md): group commit's savepoints
		// spill to memory instead of a temp file, and the writer keeps an
		// 8 MiB page cache. Readers keep 2 MiB: in WAL mode a reader's cache
		// is dropped whenever the database changed since its last read,
		// which under load is every time, so a larger one only holds memory
		// (measured: 6 to 11 MB less RSS with 1,000 callers, no throughput
		// lost). mmap was measured and left off: modernc's SQLite unmaps on
		// every read transaction (vms_clear_ptes in the profile).
		poolDSN := func(cacheKiB int) string {
			q := url.Values{}
			for _, p := range []string{"journal_mode(WAL)", "synchronous(FULL)", "busy_timeout(10000)", "foreign_keys(ON)",
				"temp_store(MEMORY)", fmt.Sprintf("cache_size(-%d)", cacheKiB), fmt.Sprintf("wal_autocheckpoint(%d)", walCheckpointPages)} {
				q.Add("_pragma", p)
			}
			q.Set("_txlock", "immediate")
			return "file:" + path + "?" + q.Encode()
		}
		if s.wdb, err = sql.Open("sqlite", poolDSN(writerCacheKiB)); err != nil {
			return nil, err
		}
		s.wdb.SetMaxOpenConns(1)
		if s.rdb, err = sql.Open("sqlite", poolDSN(readerCacheKiB)); err != nil {
			return nil, err
		}
		s.rdb.SetMaxOpenConns(8)
		// Idle readers are kept (database/sql keeps 2 by default), and with
		// them the statements prepared on them (see stmtCache).
		s.rdb.SetMaxIdleConns(8)
		// A checkpoint reads the WAL and writes the database file directly,
		// not through the page cache.
		if s.ckdb, err = sql.Open("sqlite", poolDSN(checkpointCacheKiB)); err != nil {
			s.Close()
			return nil, err
		}
		s.ckdb.SetMaxOpenConns(1)
	}
	if err := s.wdb.PingContext(ctx); err != nil {
		s.Close()
		return nil, err
	}
	// Branches land out of order (a migration numbered below ones already
	// applied), so a missing migration is applied rather than refused.
	provider, err := goose.NewProvider(dialect, s.wdb, mustSub(migrations, "migrations"), goose.WithAllowOutofOrder(true))
	if err != nil {
		s.Close()
		return nil, err
	}
	if _, err := provider.Up(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("migrate: %w", err)
	}
	if err := s.checkMode(ctx); err != nil {
		s.Close()
		return nil, err
	}
	if s.engine == EngineSQLite {
		s.group = newGroupCommit(s.wdb)
		s.checkpoints = startCheckpointer(s.ckdb, walCheckpointEvery, s.writes.Load, opts.Logger)
	}
	return s, nil
}

// createPrivate creates the SQLite file at path, when it does not exist
// yet, readable by its owner only (SPEC §9): it holds card ciphertexts and
// key hashes. SQLite gives the -wal and -shm files it makes beside it the
// database file's permissions.
func createPrivate(path string) error {
	if path == "" || strings.HasPrefix(path, ":memory:") {
		return nil
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("creating the database file: %w", err)
	}
	return f.Close()
}

// WriteTransactions counts the write transactions the store has run (each a
// commit, or a share of a group commit), so that a test can hold a charge to
// its budget of commits.
func (s *Store) WriteTransactions() int64 { return s.writes.Load() }

// Engine is EngineSQLite or EnginePostgres.
func (s *Store) Engine() string { return s.engine }

// Close closes the cached statements and the pools.
func (s *Store) Close() error {
	if s.group != nil {
		s.group.close()
	}
	if s.checkpoints != nil {
		s.checkpoints.close()
	}
	s.closeStmts()
	err := s.wdb.Close()
	if s.rdb != s.wdb {
		err = errors.Join(err, s.rdb.Close())
	}
	if s.ckdb != nil {
		err = errors.Join(err, s.ckdb.Close())
	}
	return err
}

// Ping reports whether the database answers (GET /health).
func (s *Store) Ping(ctx context.Context) error { return s.rdb.PingContext(ctx) }

// DB exposes the write pool for tests and operator tools that inspect the schema.
func (s *Store) DB() *sql.DB { return s.wdb }

func (s *Store) now() time.Time { return s.opts.Clock.Now().UTC() }

func (s *Store) newID(prefix string) string { return ivrpay.NewID(s.opts.Mode, prefix, s.now()) }

// inTx runs fn in a write transaction and commits it when fn returns nil;
// when inTx returns nil, fn's writes are durable. On SQLite, when ctx cannot
// be canceled, fn joins a group commit: it shares one transaction (and one
// fsync) with the other writes queued at the same time, inside a savepoint
// of its own, so its error still undoes only its own writes. fn must then
// use ctx (or another context that cannot be canceled) for its statements:
// a canceled statement makes SQLite roll back the whole shared transaction.
// A cancelable ctx gets one transaction per call. On PostgreSQL, fn's writes
// are pipelined (see pgTx).
func (s *Store) inTx(ctx context.Context, fn func(tx querier) error) error {
	s.writes.Add(1)
	if s.engine == EnginePostgres {
		return s.inPipelinedTx(ctx, fn)
	}
	// Once the transaction is over, the statements it met for the first
	// time are prepared for the next ones.
	defer s.preparePending()
	if s.group != nil && ctx.Done() == nil {
		return s.group.do(fn)
	}
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit()
}

// isUniqueViolation reports whether err is a unique constraint failure on either engine.
func isUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "23505"
	}
	var sqErr *sqlite.Error
	if errors.As(err, &sqErr) {
		return sqErr.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || sqErr.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	return false
}

// wrap annotates a returned internal error with the operation; *ivrpay.Error
// values pass through untouched so their codes reach the client.
func wrap(errp *error, format string, args ...any) {
	if *errp == nil {
		return
	}
	var e *ivrpay.Error
	if errors.As(*errp, &e) {
		return
	}
	*errp = fmt.Errorf(format+": %w", append(args, *errp)...)
}

// parseTime reads a time the store wrote (ivrpay.FormatTime's fixed layout)
// without time.Parse's general RFC 3339 reader, which every other text goes
// through; the zero time when it is none (TestParseTimeIsTimeParse).
func parseTime(s string) time.Time {
	if t, ok := parseStoredTime(s); ok {
		return t
	}
	t, _ := time.Parse(time.RFC3339Nano, s)
	return t.UTC()
}

// parseStoredTime reads "2006-01-02T15:04:05.000000Z" exactly, in range.
func parseStoredTime(s string) (time.Time, bool) {
	if len(s) != len("2006-01-02T15:04:05.000000Z") || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' ||
		s[16] != ':' || s[19] != '.' || s[26] != 'Z' {
		return time.Time{}, false
	}
	ok := true
	num := func(from, to int) int {
		n := 0
		for i := from; i < to; i++ {
			c := s[i]
			if c < '0' || c > '9' {
				ok = false
			}
			n = n*10 + int(c-'0')
		}
		return n
	}
	year, month, day := num(0, 4), num(5, 7), num(8, 10)
	hour, minute, second, micro := num(11, 13), num(14, 16), num(17, 19), num(20, 26)
	if !ok || month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 59 {
		return time.Time{}, false
	}
	t := time.Date(year, time.Month(month), day, hour, minute, second, micro*1000, time.UTC)
	if t.Day() != day { // February 30th and the like: time.Parse refuses them
		return time.Time{}, false
	}
	return t, true
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// jsonText stores a JSON value as text, or NULL for none.
func jsonText(v any) (sql.NullString, error) {
	switch x := v.(type) {
	case json.RawMessage:
		compact, err := ivrpay.CompactJSON(x)
		if err != nil || compact == nil {
			return sql.NullString{}, err
		}
		return sql.NullString{String: string(compact), Valid: true}, nil
	case *ivrpay.BillingContact:
		if x == nil {
			return sql.NullString{}, nil
		}
	}
	b, err := json.Marshal(v)
	if err != nil {
		return sql.NullString{}, err
	}
	return sql.NullString{String: string(b), Valid: true}, nil
}

func rawJSON(ns sql.NullString) json.RawMessage {
	if !ns.Valid {
		return nil
	}
	return json.RawMessage(ns.String)
}

func billingContact(ns sql.NullString) *ivrpay.BillingContact {
	if !ns.Valid {
		return nil
	}
	var b ivrpay.BillingContact
	if json.Unmarshal([]byte(ns.String), &b) != nil {
		return nil
	}
	return &b
}

func mustSub(fsys embed.FS, dir string) fs.FS {
	sub, err := fs.Sub(fsys, dir)
	if err != nil {
		panic(err) // the directory is embedded at build time
	}
	return sub
}
