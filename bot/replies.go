package bot

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/botfleet/botfleet/internal/clock"
	"github.com/botfleet/botfleet/internal/wire"
	"github.com/botfleet/botfleet/jobs"
	"github.com/botfleet/botfleet/logging"
)

// The keys of the reply routing, owned by the chat frontends:
//
//	bot:reply:<job id>      hash: frontend, route, user (hashed), attempts;
//	                        it expires with the platform's ReplyWindow
//	bot:replies:<frontend>  sorted set of the job ids the frontend owes a
//	                        reply, scored by when each is next due
//	                        (milliseconds, Redis's clock; 0 at once)
//
// A replica claims a due id by moving its score a lease ahead in one
// script, so no other replica looks at it before the lease ends; every
// call made under the claim has a deadline inside the lease. An id whose
// job has not finished is put back for the next poll; one whose reply was
// sent leaves both keys. A replica that dies between sending and settling
// leaves the id to be claimed again when the lease ends, the one case in
// which a reply can go out twice.
const (
	replyKeyPrefix   = "bot:reply:"
	pendingKeyPrefix = "bot:replies:"
)

// ErrUndeliverable, wrapped in a SendFunc's error, says that trying again
// cannot help (the user blocked the bot, the interaction expired, the
// number opted out): the reply is dropped.
var ErrUndeliverable = errors.New("bot: reply undeliverable")

// SendFunc delivers text to the chat that route names, in the route's
// encoding the frontend chose (Message.Route).
type SendFunc func(ctx context.Context, route, text string) error

const (
	// maxReplyAttempts is how often a reply is tried before it is dropped.
	maxReplyAttempts = 5
	// claimsPerSweep bounds the ids one poll claims.
	claimsPerSweep = 100
	// maxReplyBackoff caps the wait between a reply's attempts.
	maxReplyBackoff = time.Minute
)

// claimScript takes the first due id of KEYS[1] for ARGV[1] milliseconds.
var claimScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, 1)
if #due == 0 then return false end
redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[1]), due[1])
return due[1]
`)

// laterScript makes ARGV[1] of KEYS[1] due ARGV[2] milliseconds from now,
// if it is still there.
var laterScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[2]), ARGV[1])
`)

// pendingKey is the sorted set of the job ids whose replies the frontend
// owes. On a Redis Cluster it and the replies' hashes carry the hash tag
// {<frontend>}, so the transactions that write both run in one slot.
func (c *Chat) pendingKey() string {
	if wire.IsCluster(c.d.Redis) {
		return pendingKeyPrefix + "{" + c.d.Name + "}"
	}
	return pendingKeyPrefix + c.d.Name
}

// replyKey is the hash saying where job id's reply goes.
func (c *Chat) replyKey(id string) string {
	if wire.IsCluster(c.d.Redis) {
		return replyKeyPrefix + "{" + c.d.Name + "}:" + id
	}
	return replyKeyPrefix + id
}

// lease is how long a claimed id is the claimant's: its deliver deadline
// (2 x SendTimeout) plus time to settle it.
func (c *Chat) lease() time.Duration { return 3 * c.o.SendTimeout }

// expect records that the result of job id goes to route.
func (c *Chat) expect(ctx context.Context, id, route, user string) error {
	ctx, cancel := context.WithTimeout(ctx, redisTimeout)
	defer cancel()
	key := c.replyKey(id)
	_, err := c.d.Redis.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, key, "frontend", c.d.Name, "route", route, "user", user, "attempts", 0)
		p.PExpire(ctx, key, c.p.ReplyWindow)
		p.ZAdd(ctx, c.pendingKey(), redis.Z{Score: 0, Member: id})
		return nil
	})
	return err
}

// Pending returns how many replies the frontend owes, for tests and
// health reports.
func (c *Chat) Pending(ctx context.Context) (int64, error) {
	return c.d.Redis.ZCard(ctx, c.pendingKey()).Result()
}

// RunReplies sends the replies the frontend owes, through send, as the
// jobs finish, until ctx ends; it returns nil then. Redis errors are
// logged, once an outage, and survived. A frontend's Run calls it.
func (c *Chat) RunReplies(ctx context.Context, send SendFunc) error {
	l := &replyLoop{c: c, send: send}
	for {
		l.sweep(ctx)
		if !clock.Sleep(ctx, c.o.Clock, c.o.PollInterval) {
			return nil
		}
	}
}

// replyLoop is one frontend's reply sender; RunReplies owns it.
type replyLoop struct {
	c    *Chat
	send SendFunc
	down bool // the last claim failed: Redis errors are logged once an outage
}

// sweep claims and delivers the due ids, at most claimsPerSweep.
func (l *replyLoop) sweep(ctx context.Context) {
	for range claimsPerSweep {
		if ctx.Err() != nil {
			return
		}
		id, err := l.claim(ctx)
		if err != nil && !errors.Is(err, redis.Nil) {
			if !l.down {
				l.c.d.Logger.WarnContext(ctx, "replies not read from Redis; retrying", "error", err)
				l.down = true
			}
			return
		}
		if l.down {
			l.c.d.Logger.InfoContext(ctx, "replies read from Redis again")
			l.down = false
		}
		if err != nil { // redis.Nil: nothing is due
			return
		}
		l.deliver(ctx, id)
	}
}

func (l *replyLoop) claim(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, redisTimeout)
	defer cancel()
	return claimScript.Run(ctx, l.c.d.Redis, []string{l.c.pendingKey()}, l.c.lease().Milliseconds()).Text()
}

// deliver sends the reply job id owes if the job has ended, or puts the id
// back for the next poll.
func (l *replyLoop) deliver(ctx context.Context, id string) {
	c := l.c
	ctx, cancel := context.WithTimeout(ctx, 2*c.o.SendTimeout)
	defer cancel()
	jctx := logging.With(ctx, logging.KeyJobID, id)
	info, err := c.d.Queue.Get(ctx, id)
	found := !errors.Is(err, jobs.ErrNotFound)
	switch {
	case !found: // the record expired: the user hears that
	case err != nil:
		c.d.Logger.WarnContext(jctx, "job state not read; retrying", "error", err)
		c.later(ctx, id, c.o.PollInterval)
		return
	case info.Status != jobs.StatusSucceeded && info.Status != jobs.StatusFailed:
		c.later(ctx, id, c.o.PollInterval)
		return
	}
	route, err := c.d.Redis.HGetAll(ctx, c.replyKey(id)).Result()
	if err != nil {
		c.d.Logger.WarnContext(jctx, "reply route not read; retrying", "error", err)
		c.later(ctx, id, c.o.PollInterval)
		return
	}
	if len(route) == 0 { // ReplyWindow passed: nobody can be told
		c.settle(jctx, id)
		return
	}
	status := info.Status
	if !found {
		status = "expired"
	}
	sctx, scancel := context.WithTimeout(ctx, c.o.SendTimeout)
	err = l.send(sctx, route["route"], c.result(id, info, found))
	scancel()
	attempt, _ := strconv.Atoi(route["attempts"])
	attempt++
	if err != nil && !errors.Is(err, ErrUndeliverable) && attempt < maxReplyAttempts {
		c.retry(ctx, id, attempt)
		c.logSent(jctx, route["user"], "result", err, "status", status, "attempt", attempt, "retrying", true)
		return
	}
	c.settle(jctx, id)
	c.d.Metrics.JobEnded(c.d.Name, status)
	c.logSent(jctx, route["user"], "result", err, "status", status, "attempt", attempt)
}

// later makes id due again after d.
func (c *Chat) later(ctx context.Context, id string, d time.Duration) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), redisTimeout)
	defer cancel()
	_ = laterScript.Run(ctx, c.d.Redis, []string{c.pendingKey()}, id, d.Milliseconds()).Err()
}

// retry counts a failed attempt at id's reply and makes it due after a
// backoff that doubles from PollInterval.
func (c *Chat) retry(ctx context.Context, id string, attempt int) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), redisTimeout)
	_ = c.d.Redis.HIncrBy(rctx, c.replyKey(id), "attempts", 1).Err()
	cancel()
	c.later(ctx, id, min(c.o.PollInterval<<attempt, maxReplyBackoff))
}

// settle forgets id: its reply was sent, or never will be. It runs on a
// context of its own, so that a reply sent just before the deadline is
// still settled inside the lease.
func (c *Chat) settle(ctx context.Context, id string) {
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), redisTimeout)
	defer cancel()
	_, err := c.d.Redis.TxPipelined(sctx, func(p redis.Pipeliner) error {
		p.ZRem(sctx, c.pendingKey(), id)
		p.Del(sctx, c.replyKey(id))
		return nil
	})
	if err != nil {
		c.d.Logger.WarnContext(ctx, "reply not settled; it may be sent again", "error", err)
	}
}
