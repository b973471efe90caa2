package worker

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/botfleet/botfleet/heartbeat"
	"github.com/botfleet/botfleet/jobs"
)

// controller reads the worker's control key (heartbeat.ControlKey) every
// heartbeat.ControlPollInterval and acts on it: quiet makes the consumer
// take no new jobs (and the heartbeat say quiet "1") until the key is
// deleted; stop ends Run as its context ending would. A failed read is
// logged at DEBUG and tried again at the next tick: Redis being down is
// reported by the heartbeat and the health check already.
type controller struct {
	rdb      redis.UniversalClient
	id       string
	consumer *jobs.Consumer
	quiet    *atomic.Bool
	changed  func() // a beat, so the fleet sees the change at once
	stopRun  context.CancelFunc
	logger   *slog.Logger
	done     chan struct{}
}

// start runs the loop until ctx ends.
func (c *controller) start(ctx context.Context) {
	c.done = make(chan struct{})
	go func() {
		defer close(c.done)
		t := time.NewTicker(heartbeat.ControlPollInterval)
		defer t.Stop()
		for {
			c.poll(ctx)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
}

// wait waits for the loop to return.
func (c *controller) wait() { <-c.done }

func (c *controller) poll(ctx context.Context) {
	rctx, cancel := context.WithTimeout(ctx, heartbeat.ControlPollInterval)
	defer cancel()
	what, err := heartbeat.ReadControl(rctx, c.rdb, c.id)
	if err != nil {
		if ctx.Err() == nil {
			c.logger.Debug("reading the control key failed; will retry", "error", err)
		}
		return
	}
	switch what {
	case heartbeat.ControlStop:
		c.logger.Info("stop requested through Redis", "control_key", heartbeat.ControlKey(c.id))
		if err := heartbeat.AckStop(rctx, c.rdb, c.id); err != nil {
			c.logger.Warn("could not delete the stop request; stopping anyway", "error", err)
		}
		c.stopRun()
	case heartbeat.ControlQuiet:
		c.set(true)
	default:
		c.set(false)
	}
}

// set quiets the worker or lets it take jobs again.
func (c *controller) set(on bool) {
	if c.quiet.Swap(on) == on {
		return
	}
	c.consumer.SetQuiet(on)
	if on {
		c.logger.Info("worker quiet: finishing running jobs, taking no new ones")
	} else {
		c.logger.Info("worker no longer quiet: taking jobs again")
	}
	c.changed()
}
