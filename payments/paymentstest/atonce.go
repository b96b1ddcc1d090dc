package paymentstest

import "sync"

// AllAtOnce runs f(0) … f(n-1), each in its own goroutine, releases them at
// the same moment (so that they race instead of running in turn) and waits
// for all of them.
func AllAtOnce(n int, f func(i int)) {
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			f(i)
		})
	}
	close(start)
	wg.Wait()
}
