package paymentstest

import (
	"database/sql"
	"testing"

	"github.com/ivrpay/ivrpay/sqlstore"
)

// Tables lists the tables of the store's schema, read from the database
// itself: a check of everything stored also covers the tables that later
// features add.
func Tables(tb testing.TB, s *sqlstore.Store) []string {
	tb.Helper()
	query := `SELECT name FROM sqlite_master WHERE type = 'table'`
	if s.Engine() == sqlstore.EnginePostgres {
		query = `SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'`
	}
	var tables []string
	for _, row := range ReadRows(tb, s.DB(), query) {
		switch name := row[0].(type) {
		case string:
			tables = append(tables, name)
		case []byte:
			tables = append(tables, string(name))
		default:
			tb.Fatalf("a table name read as %T", name)
		}
	}
	return tables
}

// Columns returns the column names of table.
func Columns(tb testing.TB, db *sql.DB, table string) []string {
	tb.Helper()
	rows, err := db.Query(`SELECT * FROM "` + table + `" WHERE 1 = 0`)
	if err != nil {
		tb.Fatalf("columns of %s: %v", table, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		tb.Fatalf("columns of %s: %v", table, err)
	}
	return cols
}

// ReadRows runs query and returns every row's values as the driver gives
// them (text may come as []byte), in the order of the query's columns.
func ReadRows(tb testing.TB, db *sql.DB, query string, args ...any) [][]any {
	tb.Helper()
	rows, err := db.Query(query, args...)
	if err != nil {
		tb.Fatalf("%s: %v", query, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		tb.Fatalf("%s: %v", query, err)
	}
	var out [][]any
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			tb.Fatalf("%s: %v", query, err)
		}
		out = append(out, vals)
	}
	if err := rows.Err(); err != nil {
		tb.Fatalf("%s: %v", query, err)
	}
	return out
}
