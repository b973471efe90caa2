package heartbeat

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// ControlPrefix is the prefix of a worker's control key,
// worker:control:<worker_id>: a string an operator sets to ask the worker
// to quiet down or stop, which the worker reads at least every
// ControlPollInterval.
const ControlPrefix = "worker:control:"

// ControlPollInterval is how often a worker reads its control key: a
// request is honoured within it.
const ControlPollInterval = 500 * time.Millisecond

// The values of a control key.
const (
	// ControlQuiet asks the worker to finish its running jobs and take no
	// new ones, until the key is deleted (ControlResume).
	ControlQuiet = "quiet"
	// ControlStop asks the worker to stop as on SIGTERM: it takes no new
	// job, gives the running ones their grace, and exits. The worker
	// deletes the key when it acts on it.
	ControlStop = "stop"
	// ControlResume is no value: it deletes the key, undoing a quiet.
	ControlResume = "resume"
)

// controlTTL bounds how long a request waits for a worker that never
// reads it (it left): a restarted worker of the same id does not find an
// old stop.
const controlTTL = 24 * time.Hour

// ControlKey returns the control key of the worker id.
func ControlKey(workerID string) string { return ControlPrefix + workerID }

// ErrBadControl is returned (wrapped) by SendControl for a value that is
// not ControlQuiet, ControlStop or ControlResume.
var ErrBadControl = errors.New("heartbeat: bad control")

// SendControl asks the worker id to quiet down, stop, or resume (undo a
// quiet). It does not wait for the worker; its heartbeat shows when it
// did (quiet "1", STOPPING).
func SendControl(ctx context.Context, rdb redis.UniversalClient, workerID, what string) error {
	key := ControlKey(workerID)
	var err error
	switch what {
	case ControlQuiet, ControlStop:
		err = rdb.Set(ctx, key, what, controlTTL).Err()
	case ControlResume:
		err = rdb.Del(ctx, key).Err()
	default:
		return fmt.Errorf("%w %q: want %s, %s or %s", ErrBadControl, what, ControlQuiet, ControlStop, ControlResume)
	}
	if err != nil {
		return fmt.Errorf("heartbeat: %s %s: %w", what, workerID, err)
	}
	return nil
}

// ReadControl returns the worker's pending request: ControlQuiet,
// ControlStop, or "" for none.
func ReadControl(ctx context.Context, rdb redis.UniversalClient, workerID string) (string, error) {
	v, err := rdb.Get(ctx, ControlKey(workerID)).Result()
	if errors.Is(err, redis.Nil) {
		return "", nil
	}
	return v, err
}

// AckStop deletes a stop request once the worker acts on it.
func AckStop(ctx context.Context, rdb redis.UniversalClient, workerID string) error {
	return rdb.Del(ctx, ControlKey(workerID)).Err()
}
