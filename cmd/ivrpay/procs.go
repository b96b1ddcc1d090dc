package main

import (
	"log/slog"
	"runtime"
)

// minServeProcs is the fewest Ps (GOMAXPROCS) a server on SQLite runs
// with, even on one CPU (a taskset, a cgroup quota of one core). SQLite's
// fsync and page reads are blocking system calls that keep their P; with a
// single P the network is polled only when the runtime's monitor takes it
// back (up to 10 ms later), so no request queues behind a commit and group
// commit degenerates to one fsync per write: measured 135 charges/s on one
// core with one P, 343 with two (docs/benchmarks.md). A second P costs
// little while the first one's thread is parked in the kernel. PostgreSQL
// is spoken over the network, which does not keep a P, so it is left alone.
const minServeProcs = 2

// raiseProcs applies minServeProcs unless the operator chose GOMAXPROCS
// explicitly (setGOMAXPROCS is the value of that environment variable), in
// which case a choice below the floor is kept and warned about. It returns
// the Ps the server runs with.
func raiseProcs(setGOMAXPROCS string, logger *slog.Logger) int {
	n := runtime.GOMAXPROCS(0)
	switch {
	case n >= minServeProcs:
	case setGOMAXPROCS != "":
		logger.Warn("GOMAXPROCS is set below 2: SQLite commits will stall request handling and group commit will not batch", "gomaxprocs", n)
	default:
		runtime.GOMAXPROCS(minServeProcs)
		n = minServeProcs
	}
	return n
}
