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
	_, rows := ReadRows(tb, s.DB(), query)
	for _, row := range rows {
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

// ReadRows runs query and returns its columns' names and every row's values
// as the driver gives them (text may come as []byte), in the columns' order.
func ReadRows(tb testing.TB, db *sql.DB, query string, args ...any) (cols []string, rows [][]any) {
	tb.Helper()
	r, err := db.Query(query, args...)
	if err != nil {
		tb.Fatalf("%s: %v", query, err)
	}
	defer r.Close()
	if cols, err = r.Columns(); err != nil {
		tb.Fatalf("%s: %v", query, err)
	}
	for r.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := r.Scan(ptrs...); err != nil {
			tb.Fatalf("%s: %v", query, err)
		}
		rows = append(rows, vals)
	}
	if err := r.Err(); err != nil {
		tb.Fatalf("%s: %v", query, err)
	}
	return cols, rows
}
