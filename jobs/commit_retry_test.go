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

// TestKeepForRetry: a batch is written again after a lost connection or a
// "not now" refusal of the whole write, never after the outcome script ran
// and refused some of its writes, even with a "not now" text.
func TestKeepForRetry(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"a lost connection", errors.New("read tcp 127.0.0.1:1->127.0.0.1:6379: i/o timeout"), true},
		{"a loading Redis", redisReply("LOADING Redis is loading the dataset in memory"), true},
		{"a refusal for good", redisReply("NOSCRIPT No matching script"), false},
		{"writes refused in the script", refusedWrites{"WRONGTYPE Operation against a key holding the wrong kind of value"}, false},
		{"writes refused in the script, with a retryable text", refusedWrites{"READONLY You can't write against a read only replica."}, false},
	}
	for _, tt := range tests {
		if got := keepForRetry(tt.err); got != tt.want {
			t.Errorf("%s: keepForRetry(%v) = %v, want %v", tt.name, tt.err, got, tt.want)
		}
	}
}

// redisReply is an error reply of Redis (a redis.Error).
type redisReply string

func (r redisReply) Error() string { return string(r) }
func (redisReply) RedisError()     {}
