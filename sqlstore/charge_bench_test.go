package sqlstore_test

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ivrpay/ivrpay"
	"github.com/ivrpay/ivrpay/payments/paymentstest"
	"github.com/ivrpay/ivrpay/sqlstore"
)

// BenchmarkCharge runs IVR payments through the payments service and the
// store, without HTTP: each is a payin config's creation and an approved
// charge on it, from 64 goroutines at once. Besides ns/op it reports
// charges/s and the process's CPU time per charge (user + system, the
// benchmark's own goroutines included), which moves far less than
// throughput with the disk's speed:
//
//	go test ./sqlstore -run '^$' -bench Charge -benchtime 5000x -count 3
//
// With IVRPAY_TEST_POSTGRES set it runs on PostgreSQL too.
func BenchmarkCharge(b *testing.B) {
	engines := []string{sqlstore.EngineSQLite}
	if os.Getenv("IVRPAY_TEST_POSTGRES") != "" {
		engines = append(engines, sqlstore.EnginePostgres)
	}
	for _, engine := range engines {
		b.Run(engine, func(b *testing.B) {
			bu := setup(b, engine)
			ivrCtx := ivrpay.NewContextWithPrincipal(context.Background(), bu.ivrKey)
			adminCtx := ivrpay.NewContextWithPrincipal(context.Background(), bu.admin)
			var n atomic.Int64
			charge := func() error {
				i := n.Add(1)
				cfg, err := bu.s.CreatePayinConfig(adminCtx, ivrpay.PayinConfigCreate{MerchantID: bu.merchant.ID,
					IdempotencyKey: fmt.Sprintf("bench-%d", i), Amount: jsonNumber(1000), CurrencyCode: "USD"})
				if err != nil {
					return err
				}
				res, err := bu.pay.ProcessIVR(ivrCtx, chargeReq(cfg.ID, fmt.Sprintf("CA-bench-%d", i), visaOK, 1000))
				if err != nil {
					return err
				}
				if res.ErrorCode != "" {
					return fmt.Errorf("charge declined: %+v", res)
				}
				return nil
			}
			if err := charge(); err != nil { // prepares the statements
				b.Fatal(err)
			}
			b.SetParallelism(32) // 64 goroutines on 2 Ps
			before := paymentstest.ProcessCPU(b)
			start := time.Now()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := charge(); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "charges/s")
			b.ReportMetric(float64((paymentstest.ProcessCPU(b)-before).Microseconds())/1000/float64(b.N), "cpu-ms/charge")
		})
	}
}

// BenchmarkChargeRead runs the read every new IVR charge starts with (its
// connector transaction, payin config, route and risk blocks in one
// statement, inside ReserveConnectorCharge's write, reserving nothing) with
// a request's context, which can end, on SQLite:
//
//	go test ./sqlstore -run '^$' -bench ChargeRead -benchmem
func BenchmarkChargeRead(b *testing.B) {
	bu := setup(b, sqlstore.EngineSQLite)
	cfg, err := bu.s.CreatePayinConfig(bu.adminCtx, ivrpay.PayinConfigCreate{MerchantID: bu.merchant.ID,
		IdempotencyKey: "bench-read", Amount: jsonNumber(1000), CurrencyCode: "USD", Metadata: []byte(`{"source":"bench"}`)})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	key := ivrpay.ConnectorTransactionKey{PlatformID: bu.platform.ID, Provider: ivrpay.ProviderTwilio, TransactionID: "CA-bench-read"}
	b.ReportAllocs()
	for b.Loop() {
		risk := &ivrpay.RiskLookup{CardFingerprint: "fp", Now: time.Now()}
		read, _, _, err := bu.s.ReserveConnectorCharge(ctx, key, cfg.ID, risk, func(ivrpay.ChargeRead) (*ivrpay.PayinReservation, error) { return nil, nil })
		if err != nil || read.Config == nil {
			b.Fatalf("config %v, %v", read.Config, err)
		}
	}
}
