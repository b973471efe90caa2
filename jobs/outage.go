package jobs

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/botfleet/botfleet/internal/wire"
)

// outage logs a consumer's Redis trouble: a refused command each time, an
// outage once until Redis answers again. Its parts share one, so an outage
// is one warning however many loops notice it. Safe for concurrent use.
type outage struct {
	log   *slog.Logger
	clock Clock

	mu    sync.Mutex
	down  bool
	since time.Time
}

// failed logs err, the error of the command what.
func (u *outage) failed(ctx context.Context, what string, err error) {
	if ctx.Err() != nil {
		return // shutting down: not Redis's fault
	}
	if isReplyError(err) {
		u.log.ErrorContext(ctx, "redis refused a command", "op", what, "error", err)
		return
	}
	u.mu.Lock()
	first := !u.down
	if first {
		u.down, u.since = true, u.clock.Now()
	}
	u.mu.Unlock()
	if first {
		u.log.WarnContext(ctx, "redis unavailable; jobs wait until it answers", "op", what, "error", err)
	}
}

// ok ends an outage logged by failed.
func (u *outage) ok(ctx context.Context) {
	u.mu.Lock()
	was, since := u.down, u.since
	u.down = false
	u.mu.Unlock()
	if was {
		u.log.InfoContext(ctx, "redis answered again", "outage", u.clock.Now().Sub(since).Round(time.Millisecond))
	}
}

// isReplyError reports whether err is an error reply from Redis, as opposed
// to a connection that failed (internal/wire's rule).
func isReplyError(err error) bool { return wire.IsReplyError(err) }

// isNoGroup reports whether err says the consumer group does not exist.
func isNoGroup(err error) bool {
	return isReplyError(err) && strings.HasPrefix(err.Error(), "NOGROUP")
}

// retryWait is the wait after the n-th consecutive Redis failure (n >= 1):
// 50ms doubling to 2s.
func retryWait(n int) time.Duration {
	const first, most = 50 * time.Millisecond, 2 * time.Second
	d := first
	for i := 1; i < n && d < most; i++ {
		d *= 2
	}
	return min(d, most)
}

// within runs fn with a context that ends when ctx does or after d, and
// returns when fn does or when that context ends, whichever comes first.
// A go-redis client may not notice a context's end while it waits on a
// hung server (unless ContextTimeoutEnabled, its socket deadlines come
// from its own options), so fn may outlive the call; what it returns then
// is dropped. This is how a wait on the shutdown path stays bounded
// whatever Redis does.
func within(ctx context.Context, d time.Duration, fn func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	done := make(chan error, 1)
	go func() {
		defer cancel()
		done <- fn(ctx)
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// waitDone waits until done is closed or ctx ends, and reports whether done
// was closed.
func waitDone(ctx context.Context, done <-chan struct{}) bool {
	select {
	case <-done:
		return true
	case <-ctx.Done():
		return false
	}
}
