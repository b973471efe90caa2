package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/botfleet/botfleet/bot/discord"
	"github.com/botfleet/botfleet/jobs"
)

func init() {
	register(command{name: "discord", summary: "connect the Discord frontend: register-commands [-guild ID] installs the slash commands", run: runDiscord})
}

const discordUsage = `Usage:
  botfleet discord register-commands [-guild ID] [-types echo,http.fetch,...]

Replaces the application's slash commands with /status, /run, /job and
/help, globally or in one guild (where changes show at once). Reads
DISCORD_APPLICATION_ID, DISCORD_BOT_TOKEN and DISCORD_API_URL. Then set the
application's Interactions Endpoint URL to https://<public host>` + discord.InteractionsPath + `.`

// runDiscord registers the slash commands with Discord.
func runDiscord(ctx context.Context, env *Env, args []string) error {
	if len(args) == 0 || args[0] != "register-commands" {
		fmt.Fprintln(env.Stderr, discordUsage)
		return errUsage
	}
	builtins := jobs.NewMux()
	jobs.Builtins(builtins, nil)
	fs := newFlags(env, "discord register-commands", "[-guild ID] [-types T1,T2]")
	guild := fs.String("guild", "", "register in this guild (server) id only")
	types := fs.String("types", strings.Join(builtins.Types(), ","), "the job types /run offers as choices; empty lets users type any")
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	o, err := discord.FromEnv(env.Getenv)
	if err := badEnvironment(err, unset(env, "DISCORD_APPLICATION_ID", "DISCORD_BOT_TOKEN")); err != nil {
		return err
	}
	var offered []string
	for _, t := range strings.Split(*types, ",") {
		if t = strings.TrimSpace(t); t != "" {
			offered = append(offered, t)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, platformTimeout)
	defer cancel()
	got, err := discord.NewClient(o).RegisterCommands(ctx, *guild, discord.Commands(offered))
	if err != nil {
		return err
	}
	where := "globally"
	if *guild != "" {
		where = "in guild " + *guild
	}
	names := make([]string, len(got))
	for i, c := range got {
		names[i] = "/" + c.Name
	}
	fmt.Fprintf(env.Stdout, "Registered %s %s. Interactions Endpoint URL: https://<public host>%s\n", strings.Join(names, ", "), where, discord.InteractionsPath)
	return nil
}
