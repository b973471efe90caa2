package bot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode"

	"github.com/botfleet/botfleet/fleet"
	"github.com/botfleet/botfleet/jobs"
	"github.com/botfleet/botfleet/logging"
)

// The commands of the chat language, and the name of anything else.
const (
	CommandStatus  = "status"
	CommandRun     = "run"
	CommandJob     = "job"
	CommandHelp    = "help"
	CommandUnknown = "unknown"
)

// Command is one command of the chat language:
//
//	status                     the fleet's workers by state, and the queue
//	run <type> [payload JSON]  queue a job; its result comes back to the chat
//	job <id>                   a job's state and result
//	help                       the commands
type Command struct {
	Name    string // CommandStatus, ..., CommandUnknown
	Arg     string // run: the job type; job: the id; unknown: the word given
	Payload string // run: the payload's JSON text; "" means {}
}

// ParseCommand reads a chat message as a command. A leading '/' and a
// Telegram "@botname" suffix are dropped from the command word, whose case
// does not matter ("/Run@fleet_bot echo {}"); an empty message and
// Telegram's /start ask for help.
func ParseCommand(text string) Command {
	word, rest := nextWord(text)
	word = strings.TrimPrefix(word, "/")
	if at := strings.IndexByte(word, '@'); at >= 0 {
		word = word[:at]
	}
	switch name := strings.ToLower(word); name {
	case CommandStatus, CommandHelp:
		return Command{Name: name}
	case "", "start":
		return Command{Name: CommandHelp}
	case CommandRun:
		typ, payload := nextWord(rest)
		return Command{Name: CommandRun, Arg: typ, Payload: strings.TrimSpace(payload)}
	case CommandJob:
		id, _ := nextWord(rest)
		return Command{Name: CommandJob, Arg: id}
	default:
		return Command{Name: CommandUnknown, Arg: word}
	}
}

// nextWord splits s after its first word, blanks around it dropped.
func nextWord(s string) (word, rest string) {
	s = strings.TrimLeftFunc(s, unicode.IsSpace)
	i := strings.IndexFunc(s, unicode.IsSpace)
	if i < 0 {
		return s, ""
	}
	return s[:i], strings.TrimLeftFunc(s[i:], unicode.IsSpace)
}

// Help lists the commands and the job types.
func (c *Chat) Help() string {
	return "Commands:\n" +
		"status - the fleet's workers and the queue\n" +
		"run <type> [payload JSON] - queue a job; its result comes back here\n" +
		"job <id> - a job's state and result\n" +
		"help - this text\n" +
		"Job types: " + strings.Join(c.d.Types.Types(), ", ")
}

// status summarizes the fleet and the queue.
func (c *Chat) status(ctx context.Context) string {
	ctx, cancel := context.WithTimeout(ctx, redisTimeout)
	defer cancel()
	s, _, err := c.fleet.Summary(ctx)
	if err != nil {
		c.d.Logger.ErrorContext(ctx, "fleet not read", "error", err)
		return "The fleet cannot be read right now; try again."
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Workers: %d alive", s.Alive)
	var states []string
	for _, st := range fleet.States {
		if n := s.ByState[st]; n > 0 {
			states = append(states, fmt.Sprintf("%d %s", n, st))
		}
	}
	if len(states) > 0 {
		fmt.Fprintf(&b, " (%s)", strings.Join(states, ", "))
	}
	fmt.Fprintf(&b, ", %d stale", s.Stale)
	if s.Invalid > 0 {
		fmt.Fprintf(&b, ", %d invalid", s.Invalid)
	}
	b.WriteString(".")
	if st, err := c.d.Queue.Stats(ctx); err == nil {
		fmt.Fprintf(&b, "\nQueue %s: %d waiting or running, %d retrying, %d dead letters.",
			c.d.Queue.Name(), st.Length, st.Retrying, st.DeadLetters)
	}
	return b.String()
}

// run queues a job and records where its result goes.
func (c *Chat) run(ctx context.Context, m Message, user string, cmd Command) Reply {
	types := strings.Join(c.d.Types.Types(), ", ")
	if cmd.Arg == "" {
		return Reply{Text: "Usage: run <type> [payload JSON]. Types: " + types}
	}
	if !c.d.Types.Has(cmd.Arg) {
		return Reply{Text: fmt.Sprintf("Unknown job type %q; one of %s.", cmd.Arg, types)}
	}
	payload := cmd.Payload
	if payload == "" {
		payload = "{}"
	}
	if len(payload) > c.o.MaxPayload {
		return Reply{Text: fmt.Sprintf("The payload is %d bytes; at most %d are taken.", len(payload), c.o.MaxPayload)}
	}
	if err := c.d.Types.Validate(cmd.Arg, json.RawMessage(payload)); err != nil {
		return Reply{Text: "Not queued: " + err.Error()}
	}
	qctx, cancel := context.WithTimeout(ctx, redisTimeout)
	defer cancel()
	info, err := c.d.Queue.Enqueue(qctx, cmd.Arg, json.RawMessage(payload))
	switch {
	case errors.Is(err, jobs.ErrBacklogFull):
		c.d.Logger.WarnContext(ctx, "job not queued: the backlog is full", "type", cmd.Arg, "user", user)
		return Reply{Text: "The job queue is full; try again later."}
	case err != nil:
		c.d.Logger.ErrorContext(ctx, "job not queued", "type", cmd.Arg, "user", user, "error", err)
		return Reply{Text: "The job queue is unavailable; try again."}
	}
	c.d.Metrics.Submitted(cmd.Arg, c.d.Name)
	ctx = logging.With(ctx, logging.KeyJobID, info.ID)
	c.d.Logger.InfoContext(ctx, "job submitted", "type", cmd.Arg, "user", user)
	if err := c.expect(ctx, info.ID, m.Route, user); err != nil {
		c.d.Logger.ErrorContext(ctx, "reply route not recorded", "error", err)
		return Reply{JobID: info.ID, Text: fmt.Sprintf("Queued job %s, but its result cannot be sent here; ask with: job %s", info.ID, info.ID)}
	}
	return Reply{JobID: info.ID, Text: fmt.Sprintf("Queued job %s. Its result comes here when it finishes.", info.ID)}
}

// job describes a job's record.
func (c *Chat) job(ctx context.Context, id string) string {
	if id == "" {
		return "Usage: job <id>, the id a run command answered."
	}
	ctx, cancel := context.WithTimeout(ctx, redisTimeout)
	defer cancel()
	info, err := c.d.Queue.Get(ctx, id)
	switch {
	case errors.Is(err, jobs.ErrNotFound):
		return fmt.Sprintf("No job %q (unknown, or its record expired).", id)
	case err != nil:
		c.d.Logger.ErrorContext(ctx, "job lookup failed", "error", err)
		return "The job store is unavailable; try again."
	}
	return describe(info)
}
