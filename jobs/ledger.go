package jobs

import (
	"sync"
	"time"
)

// prefetchPerSlot is how many entries a consumer holds, running or waiting
// to run, per unit of Concurrency: enough that a worker finishing a short
// job finds the next one already read, and one XREADGROUP serves several
// jobs. (On the 2-core test machine, 4 gave about half the throughput of 8
// with four consumers at Concurrency 1; 16 gained nothing clear.)
const prefetchPerSlot = 8

// shortJob is the run time under which a job counts as short. While the
// consumer's last job was short, it reads twice as far ahead (16 entries
// per slot), so one read and one outcome write serve more jobs: with no-op
// jobs, four consumers at Concurrency 1 drained 18% faster on the 2-core
// test machine (docs/performance.md). A longer job brings the read-ahead
// back to prefetchPerSlot, so fewer jobs wait behind it.
const shortJob = 2 * time.Millisecond

// ledger is the book of the deliveries a consumer holds: read or claimed
// by it and not yet acknowledged, whether waiting for a worker, running,
// or having their outcome written. The reader adds to it as far as it has
// room, the workers take from it, the committer strikes out what it wrote,
// and the lease keeper renews what it holds. It is safe for concurrent use.
type ledger struct {
	concurrency int
	base        int // prefetchPerSlot x concurrency
	prefetch    int // entries running or waiting at most (base, or 2 x base after a short job); twice that counting those being recorded

	ready chan struct{} // poked when waiting grows: a worker may start one
	space chan struct{} // poked when the reader may read more

	mu      sync.Mutex
	held    map[string]*delivery // by stream id
	waiting []*delivery          // not yet started, oldest first
	running int
	// stalled is set when waiting entries were given back because every
	// worker was busy too long; reading waits until a worker frees up.
	stalled bool
	// holding is set while the consumer takes no new jobs (paused or
	// quiet): workers start nothing.
	holding bool
}

func newLedger(concurrency int) *ledger {
	return &ledger{
		concurrency: concurrency,
		base:        prefetchPerSlot * concurrency,
		prefetch:    prefetchPerSlot * concurrency,
		ready:       make(chan struct{}, 1),
		space:       make(chan struct{}, 1),
		held:        make(map[string]*delivery),
	}
}

// want returns how many entries to read now: enough to fill the prefetch,
// once half of it has been taken by the workers, so they never wait for a
// read; none while all workers are stuck on long jobs. Entries whose
// outcome is being written count too, up to a second prefetch, so a slow
// Redis slows reading down.
func (l *ledger) want() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.waiting) >= max(l.concurrency, l.prefetch/2) || l.stalled && l.running >= l.concurrency {
		return 0
	}
	return max(min(l.prefetch-len(l.waiting)-l.running, 2*l.prefetch-len(l.held)), 0)
}

// add holds ds and queues run, those of them that may run, for a worker.
func (l *ledger) add(ds, run []*delivery) {
	l.mu.Lock()
	for _, d := range ds {
		l.held[d.streamID] = d
	}
	l.waiting = append(l.waiting, run...)
	l.mu.Unlock()
	poke(l.ready)
}

// next returns the oldest waiting delivery, marked started, or nil once
// stop is closed.
func (l *ledger) next(stop <-chan struct{}) *delivery {
	for {
		select {
		case <-stop:
			return nil
		default:
		}
		l.mu.Lock()
		if len(l.waiting) > 0 && !l.holding {
			d := l.waiting[0]
			l.waiting[0] = nil
			l.waiting = l.waiting[1:]
			d.started = true
			l.running++
			more := len(l.waiting) > 0
			l.mu.Unlock()
			if more {
				poke(l.ready) // chain the wake-up to the next idle worker
			}
			poke(l.space)
			return d
		}
		l.mu.Unlock()
		select {
		case <-l.ready:
		case <-stop:
			return nil
		}
	}
}

// hold stops (on) or restarts the workers' taking of waiting deliveries.
func (l *ledger) hold(on bool) {
	l.mu.Lock()
	was := l.holding
	l.holding = on
	l.mu.Unlock()
	if was && !on {
		poke(l.ready)
	}
}

// ran marks the end of a run next started, which took took: its worker
// is free again, and the read-ahead follows the job's length (shortJob).
func (l *ledger) ran(took time.Duration) {
	l.mu.Lock()
	l.running--
	l.stalled = false
	l.prefetch = l.base
	if took < shortJob {
		l.prefetch = 2 * l.base
	}
	l.mu.Unlock()
	poke(l.space)
}

// release forgets the entries whose outcome is written.
func (l *ledger) release(ids []string) {
	if len(ids) == 0 {
		return
	}
	l.mu.Lock()
	for _, id := range ids {
		delete(l.held, id)
	}
	l.mu.Unlock()
	poke(l.space)
}

// takeWaiting removes and returns every delivery not yet started.
func (l *ledger) takeWaiting() []*delivery {
	l.mu.Lock()
	defer l.mu.Unlock()
	ds := l.waiting
	l.waiting = nil
	l.forgetLocked(ds)
	return ds
}

// takeStale removes and returns the deliveries that were read before
// cutoff and are still waiting, and pauses reading until a worker frees up.
func (l *ledger) takeStale(cutoff time.Time) []*delivery {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for n < len(l.waiting) && l.waiting[n].fetched.Before(cutoff) {
		n++
	}
	if n == 0 {
		return nil
	}
	stale := append([]*delivery(nil), l.waiting[:n]...)
	clear(l.waiting[:n])
	l.waiting = l.waiting[n:]
	l.forgetLocked(stale)
	l.stalled = true
	return stale
}

// ids returns the stream ids of every delivery held.
func (l *ledger) ids() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	ids := make([]string, 0, len(l.held))
	for id := range l.held {
		ids = append(ids, id)
	}
	return ids
}

// lost handles entries another consumer owns now: those still waiting here
// are dropped, and returned; started counts those this consumer started
// (running, or their outcome being written), which may run twice, each
// once. Entries no longer held are ignored.
func (l *ledger) lost(ids []string) (dropped []*delivery, started int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	gone := make(map[string]bool, len(ids))
	for _, id := range ids {
		d, ok := l.held[id]
		switch {
		case !ok, d.taken:
		case d.started:
			d.taken = true
			started++
		default:
			gone[id] = true
		}
	}
	if len(gone) == 0 {
		return nil, started
	}
	kept := l.waiting[:0]
	for _, d := range l.waiting {
		if gone[d.streamID] {
			dropped = append(dropped, d)
			continue
		}
		kept = append(kept, d)
	}
	clear(l.waiting[len(kept):])
	l.waiting = kept
	l.forgetLocked(dropped)
	return dropped, started
}

// runs returns how many deliveries are running.
func (l *ledger) runs() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.running
}

// forgetLocked drops ds from held; l.mu is held.
func (l *ledger) forgetLocked(ds []*delivery) {
	for _, d := range ds {
		delete(l.held, d.streamID)
	}
}

// poke wakes the receiver of ch, a channel of capacity 1, without blocking.
func poke(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}
