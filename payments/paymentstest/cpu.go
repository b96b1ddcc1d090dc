package paymentstest

import (
	"syscall"
	"testing"
	"time"
)

// ProcessCPU is the process's user + system CPU time so far: benchmarks
// report CPU per operation from it, which other load on the machine moves
// far less than wall time.
func ProcessCPU(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
