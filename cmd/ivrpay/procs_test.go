package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ivrpay/ivrpay/payments/paymentstest"
	"github.com/ivrpay/ivrpay/sqlstore"
)

// TestServeKeepsTwoProcsOnOneCPU runs the real binary on one CPU (taskset):
// Go would give it one P, under which SQLite's fsync stalls every request
// and group commit stops batching; on SQLite serve raises it to two, unless
// the operator set GOMAXPROCS, which is kept and warned about.
func TestServeKeepsTwoProcsOnOneCPU(t *testing.T) {
	t.Parallel()
	taskset, err := exec.LookPath("taskset")
	if err != nil {
		t.Fatalf("taskset (util-linux) is needed to run the server on one CPU: %v", err)
	}
	bin := buildIvrpay(t)
	oneCPU := filepath.Join(t.TempDir(), "ivrpay-one-cpu")
	if err := os.WriteFile(oneCPU, []byte("#!/bin/sh\nexec "+taskset+" -c 0 "+bin+" \"$@\"\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, row := range []struct {
		name, engine, env, want string
		warned                  bool
	}{
		{name: "SQLite, GOMAXPROCS unset", engine: sqlstore.EngineSQLite, want: "gomaxprocs=2"},
		{name: "SQLite, GOMAXPROCS=1 set by the operator", engine: sqlstore.EngineSQLite, env: "GOMAXPROCS=1", want: "gomaxprocs=1", warned: true},
		// PostgreSQL is network I/O, which does not keep a P: left alone.
		{name: "PostgreSQL, GOMAXPROCS unset", engine: sqlstore.EnginePostgres, want: "gomaxprocs=1"},
	} {
		t.Run(row.name, func(t *testing.T) {
			env := []string{"GOMAXPROCS="} // unset unless the row sets it; os.Environ may carry one
			if row.env != "" {
				env = []string{row.env}
			}
			s := installationOn(t, oneCPU, paymentstest.DSN(t, row.engine)).serve(t, env)
			log := s.logTail()
			var listening string
			for _, line := range strings.Split(log, "\n") {
				if strings.Contains(line, "msg=listening") {
					listening = line
				}
			}
			if !strings.Contains(listening, row.want) {
				t.Errorf("listening line %q does not say %s\n%s", listening, row.want, log)
			}
			if warned := strings.Contains(log, "GOMAXPROCS is set below 2"); warned != row.warned {
				t.Errorf("warned about GOMAXPROCS: %v, want %v\n%s", warned, row.warned, log)
			}
		})
	}
}
