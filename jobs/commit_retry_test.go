package jobs

import (
	"errors"
	"testing"
)

// TestRetryableReply: replies that mean "not now" keep a batch of outcomes
// for a retry (dropping it after a Redis restart made finished jobs run
// again); replies that refuse the commands for good do not.
func TestRetryableReply(t *testing.T) {
	tests := []struct {
		reply string
		want  bool
	}{
		{"EXECABORT Transaction discarded because of previous errors.", true},
		{"LOADING Redis is loading the dataset in memory", true},
		{"BUSY Redis is busy running a script.", true},
		{"MASTERDOWN Link with MASTER is down", true},
		{"READONLY You can't write against a read only replica.", true},
		{"OOM command not allowed when used memory > 'maxmemory'.", true},
		{"WRONGTYPE Operation against a key holding the wrong kind of value", false},
		{"ERR unknown command", false},
		{"NOGROUP No such key 'jobs:default'", false},
	}
	for _, tt := range tests {
		if got := retryableReply(errors.New(tt.reply)); got != tt.want {
			t.Errorf("retryableReply(%q) = %v, want %v", tt.reply, got, tt.want)
		}
	}
}
