package main

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

// minHeapGoal is the least heap a server lets grow before the collector runs
// (Go's own least is 4 MiB). Under load a server's live heap is a few MiB (the
// requests in flight, the caches), so at GOGC=100 it collects every few MiB of
// garbage, tens of times a second, marking that live heap each time: 9 % of
// the server's CPU at the SQLite peak against 4.5 % for the reference server
// of docs/benchmarks.md, whose live heap is a third of it. With a goal of at
// least 32 MiB it collects several times less often. A live heap of more than
// 16 MiB (a thousand requests in flight) gets Go's GOGC=100 pace unchanged,
// so the memory of a server under heavy load is what it was; a lightly loaded
// one holds up to 32 MiB of heap instead of a few.
const minHeapGoal = 32 << 20

var keepHeapGoalOnce sync.Once

// keepHeapGoal sets GOGC after every collection so that the next goal (the
// live heap times 1 + GOGC/100) is at least minHeapGoal, never below
// GOGC=100. An operator's GOGC (setGOGC, the environment variable) is obeyed
// instead.
func keepHeapGoal(setGOGC string) {
	if setGOGC != "" {
		return
	}
	keepHeapGoalOnce.Do(func() {
		live := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
		current := 100
		var arm func()
		arm = func() {
			// A cleanup runs once a collection found its object unreachable:
			// after each cycle, the next cycle's pace is set.
			runtime.AddCleanup(&gcSentinel{}, func(struct{}) {
				metrics.Read(live)
				// Small moves of the live heap leave the pace alone.
				if pct := heapGoalPercent(live[0].Value.Uint64()); pct*10 > current*11 || pct*10 < current*9 || (pct == 100) != (current == 100) {
					debug.SetGCPercent(pct)
					current = pct
				}
				arm()
			}, struct{}{})
		}
		arm()
	})
}

// gcSentinel is an object the collector frees at its next cycle (large
// enough not to share a tiny allocation with anything else).
type gcSentinel struct {
	_ *int
	_ [24]byte
}

// heapGoalPercent is the GOGC that puts the goal of a heap whose live part is
// live bytes at minHeapGoal, and at least 100.
func heapGoalPercent(live uint64) int {
	if live == 0 || live >= minHeapGoal/2 {
		return 100
	}
	return int(minHeapGoal*100/live) - 100
}
