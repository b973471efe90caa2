package heartbeat

import (
	"testing"
	"time"
)

// TestQuietField writes quiet "1" only for a quiet worker, and reads it
// back.
func TestQuietField(t *testing.T) {
	s := Status{Identity: Identity{WorkerID: "worker-1"}, State: "IDLE", Timestamp: time.Unix(1688851200, 0), Interval: time.Second}
	if _, ok := s.Fields()["quiet"]; ok {
		t.Errorf("a worker not quiet writes quiet, want it left out")
	}
	s.Quiet = true
	f := s.Fields()
	if f["quiet"] != "1" {
		t.Errorf("quiet = %q, want 1", f["quiet"])
	}
	got, err := Decode(f)
	if err != nil || !got.Quiet {
		t.Errorf("Decode = %+v, %v; want Quiet", got, err)
	}
}
