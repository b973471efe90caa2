package fleet_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/botfleet/botfleet/fleet"
	"github.com/botfleet/botfleet/heartbeat"
)

var epoch = time.Unix(1688851200, 0).UTC()

func sampleWorker(id, state, health string) fleet.Worker {
	return fleet.Worker{
		Status: heartbeat.Status{
			Identity: heartbeat.Identity{WorkerID: id, Service: "worker", Hostname: "bot-server-01", Region: "us-west-1",
				ContainerID: "a1b2c3d4e5f6", DeploymentEnv: "production", Version: "v1.4.2"},
			State:     state,
			Timestamp: epoch, StartedAt: epoch.Add(-2 * time.Hour), Interval: 30 * time.Second,
			JobsProcessed: 42, JobsFailed: 3, MetricsURL: "http://10.0.3.17:9200/metrics",
			Resources: heartbeat.Resources{MemoryMB: 245.7, MemoryPercent: 2.4, CPUPercent: 15.3, NumThreads: 12, OpenFiles: 9},
			System:    heartbeat.System{Hostname: "bot-server-01", Platform: "linux-6.1.0-amd64", GoVersion: "go1.26.0", PID: 4242},
		},
		Health: health, LastBeatAge: 4200 * time.Millisecond, Uptime: 2*time.Hour + 4200*time.Millisecond,
	}
}

func sampleFleet() fleet.Fleet {
	busy := sampleWorker("worker-2", "BUSY", fleet.Alive)
	busy.CurrentJob = "browser.navigate.abc123,browser.navigate.def456"
	stale := sampleWorker("worker-3", "IDLE", fleet.Stale)
	stale.LastBeatAge = 95 * time.Second
	stale.ClockSkew = 30 * time.Second
	return fleet.Fleet{
		GeneratedAt: epoch,
		Summary: fleet.Summary{Total: 3, Alive: 2, Stale: 1,
			ByState: map[string]int{"STARTING": 0, "IDLE": 1, "BUSY": 1, "STOPPING": 0, "STOPPED": 0}},
		Workers: []fleet.Worker{sampleWorker("worker-1", "IDLE", fleet.Alive), busy, stale},
	}
}

func TestWriteTable(t *testing.T) {
	var b bytes.Buffer
	if err := fleet.WriteTable(&b, sampleFleet(), false); err != nil {
		t.Fatal(err)
	}
	want := `WORKER    SERVICE  STATE  HEALTH  HOST           REGION     UPTIME  MEM   CPU%  DONE/FAILED  CURRENT JOB                       LAST BEAT
worker-1  worker   IDLE   alive   bot-server-01  us-west-1  2h00m   246M  15.3  42/3         -                                 4.2s ago
worker-2  worker   BUSY   alive   bot-server-01  us-west-1  2h00m   246M  15.3  42/3         browser.navigate.abc123,browser…  4.2s ago
worker-3  worker   IDLE   stale   bot-server-01  us-west-1  2h00m   246M  15.3  42/3         -                                 1m35s ago (clock +30s)

3 workers: 2 alive (1 IDLE, 1 BUSY), 1 stale, 0 invalid
`
	if got := b.String(); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

func TestWriteTableColor(t *testing.T) {
	f := sampleFleet()
	f.Workers = append(f.Workers, fleet.Worker{Status: heartbeat.Status{Identity: heartbeat.Identity{WorkerID: "worker-4"}}, Health: fleet.Invalid,
		Error: `heartbeat: field "state": "LOST" is not a known state`})
	f.Summary.Total, f.Summary.Invalid = 4, 1
	var b bytes.Buffer
	if err := fleet.WriteTable(&b, f, true); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(b.String(), "\n")
	tests := []struct {
		name, line, prefix string
	}{
		{"header plain", lines[0], "WORKER"},
		{"alive plain", lines[1], "worker-1"},
		{"stale yellow", lines[3], "\x1b[33mworker-3"},
		{"invalid red", lines[4], "\x1b[31mworker-4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !strings.HasPrefix(tt.line, tt.prefix) {
				t.Errorf("got %q, want it to start with %q", tt.line, tt.prefix)
			}
			if colored := strings.HasPrefix(tt.line, "\x1b"); colored != strings.HasSuffix(tt.line, "\x1b[0m") {
				t.Errorf("colour not reset at the end of %q", tt.line)
			}
		})
	}
	out := b.String()
	for _, want := range []string{"4 workers: 2 alive (1 IDLE, 1 BUSY), 1 stale, 1 invalid", `invalid heartbeat of worker-4: heartbeat: field "state"`} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestSummaryLine(t *testing.T) {
	tests := []struct {
		name string
		s    fleet.Summary
		want string
	}{
		{"empty", fleet.Summary{}, "0 workers: 0 alive, 0 stale, 0 invalid"},
		{"one stale", fleet.Summary{Total: 1, Stale: 1}, "1 worker: 0 alive, 1 stale, 0 invalid"},
		{"states in lifecycle order", fleet.Summary{Total: 4, Alive: 4, ByState: map[string]int{"BUSY": 2, "STARTING": 1, "STOPPING": 1, "IDLE": 0}},
			"4 workers: 4 alive (1 STARTING, 2 BUSY, 1 STOPPING), 0 stale, 0 invalid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := fleet.SummaryLine(tt.s); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestWriteInspect(t *testing.T) {
	var history []fleet.Point
	for i, st := range []string{"STARTING", "IDLE", "IDLE", "BUSY", "BUSY", "IDLE"} {
		history = append(history, fleet.Point{Timestamp: epoch.Add(time.Duration(i) * 30 * time.Second), WorkerID: "worker-1",
			State: st, MemoryMB: 200 + float64(10*i), CPUPercent: float64(5 * i), JobsProcessed: uint64(i)})
	}
	var b bytes.Buffer
	if err := fleet.WriteInspect(&b, sampleWorker("worker-1", "IDLE", fleet.Alive), history); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"Worker:       worker-1",
		"Health:       alive (last beat 4.2s ago, interval 30s)",
		"Started:      2023-07-08T19:20:00.000Z (uptime 2h00m)",
		"Resources:    memory 245.7 MiB (2.4%), CPU 15.3%, 12 threads, 9 open files",
		"System:       bot-server-01, linux-6.1.0-amd64, go1.26.0, pid 4242",
		"Metrics:      http://10.0.3.17:9200/metrics",
		"Recent state changes:\n  2023-07-08T21:20:00.000Z  STARTING\n  2023-07-08T21:20:30.000Z  IDLE\n  2023-07-08T21:21:30.000Z  BUSY\n  2023-07-08T21:22:30.000Z  IDLE\n",
		"memory  ▁▂▄▅▇█  200.0–250.0 MiB",
		"2023-07-08T21:22:30.000Z  IDLE      250.0M  25.0  5/0",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	b.Reset()
	bad := fleet.Worker{Status: heartbeat.Status{Identity: heartbeat.Identity{WorkerID: "bad"}}, Health: fleet.Invalid, Error: `heartbeat: field "interval": missing`}
	if err := fleet.WriteInspect(&b, bad, nil); err != nil {
		t.Fatal(err)
	}
	if out := b.String(); !strings.Contains(out, `Error:   heartbeat: field "interval": missing`) || !strings.Contains(out, "no history") {
		t.Errorf("invalid worker:\n%s", out)
	}
}

// TestTableEscapesTerminalControls: heartbeat fields come from any writer;
// the table and the inspect view show an escape sequence as text, never
// send it to the terminal.
func TestTableEscapesTerminalControls(t *testing.T) {
	w := fleet.Worker{Status: heartbeat.Status{Identity: heartbeat.Identity{WorkerID: "evil\x1b[2J", Service: "worker",
		Hostname: "host\u202eexe.txt"}, State: "IDLE", CurrentJob: "job\r\x07"}, Health: fleet.Alive}
	var table, inspect bytes.Buffer
	if err := fleet.WriteTable(&table, fleet.Fleet{Workers: []fleet.Worker{w}}, false); err != nil {
		t.Fatal(err)
	}
	if err := fleet.WriteInspect(&inspect, w, nil); err != nil {
		t.Fatal(err)
	}
	for name, out := range map[string]string{"table": table.String(), "inspect": inspect.String()} {
		if strings.ContainsAny(out, "\x1b\r\a\u202e") {
			t.Errorf("the %s passes a control character through: %q", name, out)
		}
		if !strings.Contains(out, `evil\x1b[2J`) || !strings.Contains(out, `host\u202eexe.txt`) {
			t.Errorf("the %s does not show the escaped text: %q", name, out)
		}
	}
}
