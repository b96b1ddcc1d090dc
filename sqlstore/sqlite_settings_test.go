package sqlstore

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
)

// TestSQLitePoolSettings: every pool is durable (WAL, synchronous=FULL,
// foreign keys on, temp store in memory), checkpoint the WAL at
// walCheckpointPages, and each has its own page cache size: the writer's
// 8 MiB, the readers' 2 MiB, the background checkpoint's 100 KiB.
func TestSQLitePoolSettings(t *testing.T) {
	t.Parallel()
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "settings.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	for _, pool := range []struct {
		name  string
		db    *sql.DB
		cache int64
	}{
		{"writer", s.wdb, -writerCacheKiB},
		{"reader", s.rdb, -readerCacheKiB},
		{"checkpoint", s.ckdb, -checkpointCacheKiB},
	} {
		t.Run(pool.name, func(t *testing.T) {
			pragma := func(name string) any {
				t.Helper()
				var v any
				if err := pool.db.QueryRow(`PRAGMA ` + name).Scan(&v); err != nil {
					t.Fatalf("PRAGMA %s: %v", name, err)
				}
				if b, ok := v.([]byte); ok {
					return string(b)
				}
				return v
			}
			for name, want := range map[string]any{"journal_mode": "wal", "synchronous": int64(2), "foreign_keys": int64(1),
				"temp_store": int64(2), "cache_size": pool.cache, "wal_autocheckpoint": int64(walCheckpointPages)} {
				if got := pragma(name); got != want {
					t.Errorf("PRAGMA %s = %v (%T), want %v", name, got, got, want)
				}
			}
		})
	}
}
