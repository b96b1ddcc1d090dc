package main

import (
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

func TestHeapGoalPercent(t *testing.T) {
	for _, row := range []struct {
		name string
		live uint64
		want int
	}{
		{"nothing measured yet", 0, 100},
		{"a server under load: 3 MiB live", 3 << 20, 966},
		{"a goal of exactly minHeapGoal", 8 << 20, 300},
		{"half of minHeapGoal live: GOGC=100 from here on", 16 << 20, 100},
		{"a thousand requests in flight", 66 << 20, 100},
	} {
		t.Run(row.name, func(t *testing.T) {
			if got := heapGoalPercent(row.live); got != row.want {
				t.Fatalf("heapGoalPercent(%d) = %d, want %d", row.live, got, row.want)
			}
		})
	}
}

// TestKeepHeapGoalRaisesGOGC: once armed, the collections that follow set
// GOGC so that this test binary's small live heap gets a goal of about
// minHeapGoal instead of Go's twice the live heap.
func TestKeepHeapGoalRaisesGOGC(t *testing.T) {
	keepHeapGoal("")
	deadline := time.Now().Add(10 * time.Second)
	for {
		runtime.GC() // the cleanups run after the cycle, in their own goroutine
		pct := debug.SetGCPercent(-1)
		debug.SetGCPercent(pct)
		if pct > 100 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("GOGC is %d after the collections of 10 s; keepHeapGoal should have raised it above 100", pct)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
