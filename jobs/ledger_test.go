package jobs

import (
	"testing"
	"time"
)

// TestReadAheadFollowsJobLength: after a short job a consumer reads twice
// as far ahead; after a long one, back to prefetchPerSlot per slot, so
// fewer jobs wait behind long ones.
func TestReadAheadFollowsJobLength(t *testing.T) {
	tests := []struct {
		name string
		took time.Duration
		want int
	}{
		{"a short job", shortJob / 2, 2 * prefetchPerSlot * 2},
		{"a long job", 10 * shortJob, prefetchPerSlot * 2},
		{"a job just at the bound", shortJob, prefetchPerSlot * 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newLedger(2)
			if got := l.want(); got != prefetchPerSlot*2 {
				t.Fatalf("want() before any job = %d, want %d", got, prefetchPerSlot*2)
			}
			l.running = 1 // a job taken, as next does
			l.ran(tt.took)
			if got := l.want(); got != tt.want {
				t.Errorf("want() after a job of %v = %d, want %d", tt.took, got, tt.want)
			}
		})
	}
}
