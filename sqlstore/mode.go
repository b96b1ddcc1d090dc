package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/ivrpay/ivrpay"
)

// ModeMismatchError is Open's error when the database belongs to a
// deployment of the other mode; its message is one line for the operator.
type ModeMismatchError struct{ Message string }

func (e *ModeMismatchError) Error() string { return e.Message }

// checkMode records the deployment's mode on the first start and refuses a
// database whose recorded mode, or whose data, belongs to the other mode:
// a production server must never serve sandbox keys (sbx_ ids and secrets)
// from a copied database, nor a sandbox write sbx_ rows into a production one.
// A database from before the mode was recorded is judged by its platform ids.
func (s *Store) checkMode(ctx context.Context) error {
	mode := s.opts.Mode
	var recorded string
	err := s.wdb.QueryRowContext(ctx, `SELECT mode FROM deployment WHERE id = 1`).Scan(&recorded)
	if errors.Is(err, sql.ErrNoRows) {
		// Which mode made the data already here, if any?
		var sandboxRows, productionRows int
		if err := s.wdb.QueryRowContext(ctx, `SELECT
				(SELECT COUNT(*) FROM (SELECT 1 FROM platforms WHERE id LIKE 'sbx\_%' ESCAPE '\' LIMIT 1) a),
				(SELECT COUNT(*) FROM (SELECT 1 FROM platforms WHERE id NOT LIKE 'sbx\_%' ESCAPE '\' LIMIT 1) b)`).
			Scan(&sandboxRows, &productionRows); err != nil {
			return fmt.Errorf("reading the data's mode: %w", err)
		}
		switch {
		case mode == ivrpay.ModeProduction && sandboxRows > 0:
			return &ModeMismatchError{"the database holds sandbox data (sbx_ ids); production needs a database of its own"}
		case mode == ivrpay.ModeSandbox && productionRows > 0:
			return &ModeMismatchError{"the database holds production data; a sandbox needs a database of its own"}
		}
		if _, err := s.wdb.ExecContext(ctx, `INSERT INTO deployment (id, mode, created_at) VALUES (1, $1, $2) ON CONFLICT (id) DO NOTHING`,
			string(mode), ivrpay.FormatTime(s.now())); err != nil {
			return fmt.Errorf("recording the deployment mode: %w", err)
		}
		// Another process may have recorded it first.
		err = s.wdb.QueryRowContext(ctx, `SELECT mode FROM deployment WHERE id = 1`).Scan(&recorded)
	}
	if err != nil {
		return fmt.Errorf("reading the deployment mode: %w", err)
	}
	if recorded != string(mode) {
		return &ModeMismatchError{fmt.Sprintf("the database was made by a %s deployment and this one runs in %s mode; each mode needs a database of its own", recorded, mode)}
	}
	return nil
}

// DeploymentMode returns the mode recorded in the database.
func (s *Store) DeploymentMode(ctx context.Context) (ivrpay.Mode, error) {
	var m string
	err := s.rdb.QueryRowContext(ctx, `SELECT mode FROM deployment WHERE id = 1`).Scan(&m)
	return ivrpay.Mode(m), err
}
