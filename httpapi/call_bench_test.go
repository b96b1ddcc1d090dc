package httpapi_test

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/ivrpay/ivrpay/httpapi"
	"github.com/ivrpay/ivrpay/payments/paymentstest"
	"github.com/ivrpay/ivrpay/sqlstore"
)

// BenchmarkIVRCall runs the call floor's load generator makes (a payin
// config with the admin key, then its approved connector charge with the IVR
// key) over loopback HTTP through the real handler chain and a text request
// log, from 64 goroutines on SQLite. The client runs in the same process, so
// cpu-ms/call counts both sides; read the server's share in a CPU profile
// (focus net/http.(*conn).serve):
//
//	go test ./httpapi -run '^$' -bench IVRCall -benchtime 5000x -cpuprofile /tmp/cpu.out
func BenchmarkIVRCall(b *testing.B) {
	f := paymentstest.Setup(b, sqlstore.EngineSQLite)
	server := &httpapi.Server{Services: httpapi.NewServices(f.Store, f.Pay), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	srv := httptest.NewServer(server.Handler())
	b.Cleanup(srv.Close)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 128}}
	post := func(path string, body []byte, auth func(*http.Request)) ([]byte, error) {
		req, err := http.NewRequest("POST", srv.URL+path, bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/json")
		auth(req)
		res, err := client.Do(req)
		if err != nil {
			return nil, err
		}
		defer res.Body.Close()
		answer, err := io.ReadAll(res.Body)
		if err == nil && res.StatusCode != http.StatusOK {
			err = fmt.Errorf("%s: HTTP %d %s", path, res.StatusCode, answer)
		}
		return answer, err
	}
	var n atomic.Int64
	call := func() error {
		i := n.Add(1)
		answer, err := post("/v1/payin_configs", fmt.Appendf(nil, `{"merchant_id":%q,"idempotency_key":"bench-%d","amount":1000,"currency_code":"USD","metadata":{"source":"ivrpay loadtest"}}`,
			f.Merchant.ID, i), func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+f.Admin.Secret) })
		if err != nil {
			return err
		}
		id, ok := bytes.CutPrefix(answer, []byte(`{"status":"SUCCESS","data":{"payin_config_id":"`))
		if !ok {
			return fmt.Errorf("config answer %s", answer)
		}
		id = id[:bytes.IndexByte(id, '"')]
		answer, err = post(httpapi.ConnectorPath, fmt.Appendf(nil, `{"method":"charge","transaction_id":"CA-bench-%d","cardnumber":"4111111111111111","cvv":"123","expiry_month":"12","expiry_year":"39","postal_code":"94111","amount":"10.00","currency_code":"usd","description":"ivrpay loadtest","parameters":{"payin_config_id":%q}}`,
			i, id), func(r *http.Request) { r.SetBasicAuth("api_key", f.IVRKey.Secret) })
		if err == nil && !bytes.Contains(answer, []byte(`"error_code":null`)) {
			err = fmt.Errorf("charge answer %s", answer)
		}
		return err
	}
	if err := call(); err != nil { // prepares the statements
		b.Fatal(err)
	}
	b.SetParallelism(32) // 64 goroutines on 2 Ps
	before := paymentstest.ProcessCPU(b)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := call(); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64((paymentstest.ProcessCPU(b)-before).Microseconds())/1000/float64(b.N), "cpu-ms/call")
}
