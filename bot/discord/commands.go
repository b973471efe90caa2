package discord

import (
	"encoding/json"
	"strings"

	"github.com/botfleet/botfleet/bot"
)

// ApplicationCommand is a slash command as Discord registers it.
type ApplicationCommand struct {
	ID          string          `json:"id,omitempty"`
	Name        string          `json:"name"`
	Type        int             `json:"type"` // 1: CHAT_INPUT, a slash command
	Description string          `json:"description"`
	Options     []CommandOption `json:"options,omitempty"`
}

// CommandOption is one option of a slash command.
type CommandOption struct {
	Type        int      `json:"type"` // 3: STRING
	Name        string   `json:"name"`
	Description string   `json:"description"`
	Required    bool     `json:"required,omitempty"`
	MaxLength   int      `json:"max_length,omitempty"`
	Choices     []Choice `json:"choices,omitempty"`
}

// Choice is a value a string option offers.
type Choice struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

const (
	commandChatInput = 1
	optionString     = 3
	// maxChoices is how many choices Discord lets an option offer.
	maxChoices = 25
	// maxOptionLength is the longest string option Discord takes.
	maxOptionLength = 6000
)

// Commands returns the slash commands of the chat language: /status,
// /run type: payload:, /job id:, /help. The run command offers types as
// its type option's choices when they are few enough for Discord.
func Commands(types []string) []ApplicationCommand {
	typ := CommandOption{Type: optionString, Name: "type", Description: "The job type", Required: true, MaxLength: 100}
	if len(types) <= maxChoices {
		for _, t := range types {
			typ.Choices = append(typ.Choices, Choice{Name: t, Value: t})
		}
	}
	return []ApplicationCommand{
		{Name: bot.CommandStatus, Type: commandChatInput, Description: "The fleet's workers and the job queue"},
		{Name: bot.CommandRun, Type: commandChatInput, Description: "Queue a job; its result comes back here", Options: []CommandOption{
			typ,
			{Type: optionString, Name: "payload", Description: `The job's payload, JSON (default {})`, MaxLength: maxOptionLength},
		}},
		{Name: bot.CommandJob, Type: commandChatInput, Description: "A job's state and result", Options: []CommandOption{
			{Type: optionString, Name: "id", Description: "The id /run answered", Required: true, MaxLength: 200},
		}},
		{Name: bot.CommandHelp, Type: commandChatInput, Description: "The commands and job types"},
	}
}

// command reads a slash command as the chat language's, and writes it as
// a user would type it (for the logs' byte count).
func command(d *CommandData) (bot.Command, string) {
	opt := func(name string) string {
		for _, o := range d.Options {
			var s string
			if o.Name == name && json.Unmarshal(o.Value, &s) == nil {
				return s
			}
		}
		return ""
	}
	var c bot.Command
	switch d.Name {
	case bot.CommandStatus, bot.CommandHelp:
		c = bot.Command{Name: d.Name}
	case bot.CommandRun:
		c = bot.Command{Name: bot.CommandRun, Arg: opt("type"), Payload: strings.TrimSpace(opt("payload"))}
	case bot.CommandJob:
		c = bot.Command{Name: bot.CommandJob, Arg: strings.TrimSpace(opt("id"))}
	default:
		c = bot.Command{Name: bot.CommandUnknown, Arg: d.Name}
	}
	return c, strings.TrimSpace("/" + d.Name + " " + c.Arg + " " + c.Payload)
}
