package sqlstore

import (
	"context"
	"fmt"
	"strings"

	"github.com/ivrpay/ivrpay"
)

type scanner interface{ Scan(dest ...any) error }

func fieldf(format string, args ...any) string { return fmt.Sprintf(format, args...) }

// authorizeRead answers 404 for objects of another platform (their existence
// is not revealed) and 403, naming the permission, for objects of the
// caller's platform that its statements exclude.
func authorizeRead(ctx context.Context, permission, kind, id string, obj ivrpay.Object) error {
	return ivrpay.AuthorizeObject(ivrpay.PrincipalFromContext(ctx), permission, kind, id, obj)
}

// listQuery is a SELECT and its filters; args are numbered $1… in order.
type listQuery struct {
	base  string
	where []string
	args  []any
}

// arg adds a bind argument and returns its placeholder.
func (q *listQuery) arg(v any) string {
	q.args = append(q.args, v)
	return fmt.Sprintf("$%d", len(q.args))
}

// scopeColumns name the columns of a table that the constraints of a
// statement compare: the merchant id, the payin config id and payment
// method config id the rows are or were made from, and the credential they
// were made through ("" when the table has none, so that a filter on it
// matches no row).
type scopeColumns struct {
	merchant, payinConfig, paymentMethodConfig, createdBy string
}

// scoped restricts q to what the caller may read with permission. A caller
// with no such permission at all gets a 403 naming it.
func scoped(ctx context.Context, permission string, cols scopeColumns) (listQuery, error) {
	caller := ivrpay.PrincipalFromContext(ctx)
	if caller == nil {
		return listQuery{}, ivrpay.Errorf(ivrpay.EUNAUTHORIZED, "Unauthorized.")
	}
	scope := ivrpay.ScopeFor(caller, permission)
	if scope.Empty() {
		return listQuery{}, ivrpay.Errorf(ivrpay.EFORBIDDEN, "missing permission %s for platform %s", permission, caller.PlatformID)
	}
	var q listQuery
	q.where = append(q.where, "platform_id = "+q.arg(caller.PlatformID))
	if !scope.All {
		var anyOf []string
	filters:
		for _, f := range scope.Filters {
			var all []string
			for _, c := range []struct{ column, value string }{
				{cols.merchant, f.MerchantID}, {cols.payinConfig, f.PayinConfigID}, {cols.paymentMethodConfig, f.PaymentMethodConfigID},
				{cols.createdBy, f.CreatedBy},
			} {
				if c.value == "" {
					continue
				}
				if c.column == "" {
					continue filters // this filter matches no row of the table
				}
				all = append(all, c.column+" = "+q.arg(c.value))
			}
			anyOf = append(anyOf, "("+strings.Join(all, " AND ")+")")
		}
		if len(anyOf) == 0 {
			anyOf = []string{"1 = 0"}
		}
		q.where = append(q.where, "("+strings.Join(anyOf, " OR ")+")")
	}
	return q, nil
}

// listPage runs a cursor-paginated list: ids greater than page.StartKey, in id
// order (ids sort by creation time), with the total count of all matches.
func listPage[T any](ctx context.Context, db querier, page ivrpay.Page, q listQuery, scan func(scanner) (T, error), idOf func(T) string) (*ivrpay.List[T], error) {
	where := ""
	if len(q.where) > 0 {
		where = " WHERE " + strings.Join(q.where, " AND ")
	}
	out := &ivrpay.List[T]{Results: []T{}}
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM ("+q.base+where+") AS matches", q.args...).Scan(&out.TotalResults); err != nil {
		return nil, err
	}
	limit := page.Limit
	if limit <= 0 {
		limit = ivrpay.DefaultPageLimit
	}
	if page.StartKey != "" {
		cond := "id > " + q.arg(page.StartKey)
		if where == "" {
			where = " WHERE " + cond
		} else {
			where += " AND " + cond
		}
	}
	rows, err := db.QueryContext(ctx, q.base+where+" ORDER BY id LIMIT "+q.arg(limit), q.args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out.Results = append(out.Results, v)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if n := len(out.Results); n > 0 {
		out.LastKey = idOf(out.Results[n-1])
	}
	return out, nil
}
