package heartbeat

import (
	"errors"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func stamped(w *worker) Status {
	s := w.Report()
	s.Timestamp = epoch
	s.Interval = 30 * time.Second
	return s
}

func TestFieldsFormats(t *testing.T) {
	s := stamped(newWorker("worker-1"))
	s.Interval = 1500 * time.Millisecond
	s.CurrentJob = "browser.navigate.abc123,browser.click.def456"
	got := s.Fields()

	want := map[string]string{
		"worker_id":      "worker-1",
		"state":          "IDLE",
		"timestamp":      "1688851200.123",
		"interval":       "1.5",
		"service":        "worker",
		"hostname":       "bot-server-01",
		"container_id":   "a1b2c3d4e5f6",
		"deployment_env": "production",
		"region":         "us-west-1",
		"version":        "v1.4.2",
		"started_at":     "1688847600.123",
		"jobs_processed": "42",
		"jobs_failed":    "3",
		"current_job":    "browser.navigate.abc123,browser.click.def456",
		"metrics_url":    "http://10.0.3.17:9200/metrics",
		"resources":      `{"memory_mb":245.7,"memory_percent":2.4,"cpu_percent":15.3,"num_threads":12,"open_files":9}`,
		"system":         `{"hostname":"bot-server-01","platform":"linux-6.1.0-amd64","go_version":"go1.26.0","pid":4242}`,
	}
	if !maps.Equal(got, want) {
		for _, k := range slices.Sorted(maps.Keys(want)) {
			if got[k] != want[k] {
				t.Errorf("field %s: got %q, want %q", k, got[k], want[k])
			}
		}
		if len(got) != len(want) {
			t.Errorf("got %d fields, want %d: %v", len(got), len(want), slices.Sorted(maps.Keys(got)))
		}
	}
}

func TestFieldsIntervalAndOptionalForms(t *testing.T) {
	tests := []struct {
		name     string
		interval time.Duration
		want     string
	}{
		{"whole seconds", 30 * time.Second, "30"},
		{"fraction", 1500 * time.Millisecond, "1.5"},
		{"milliseconds", 250 * time.Millisecond, "0.25"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := (Status{Interval: tt.interval}).Fields()["interval"]; got != tt.want {
				t.Errorf("interval: got %q, want %q", got, tt.want)
			}
		})
	}
	if got := (Status{}).Fields()["started_at"]; got != "" {
		t.Errorf("zero started_at: got %q, want \"\"", got)
	}
}

func TestDecodeRoundTrip(t *testing.T) {
	want := stamped(newWorker("worker-7"))
	want.State = "BUSY"
	want.CurrentJob = "job-1,job-2"
	got, err := Decode(want.Fields())
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Decode(Fields()):\n got %+v\nwant %+v", got, want)
	}
}

func TestDecodeTolerates(t *testing.T) {
	minimal := map[string]string{"worker_id": "w", "state": "IDLE", "timestamp": "1688851200", "interval": "30"}
	tests := []struct {
		name  string
		edit  func(map[string]string)
		check func(t *testing.T, s Status)
	}{
		{"only the required fields", func(map[string]string) {}, func(t *testing.T, s Status) {
			if !s.StartedAt.IsZero() || s.JobsProcessed != 0 || s.Resources.MemoryMB != 0 {
				t.Errorf("optional fields: got %+v, want zero", s)
			}
		}},
		{"unknown extra fields", func(m map[string]string) { m["gpu"] = "A100"; m["queue"] = "" }, nil},
		{"empty optional fields", func(m map[string]string) {
			for _, k := range []string{"started_at", "jobs_processed", "jobs_failed", "resources", "system", "current_job"} {
				m[k] = ""
			}
		}, nil},
		{"unknown members in resources", func(m map[string]string) {
			m["resources"] = `{"memory_mb":1.5,"gpu_percent":80}`
		}, func(t *testing.T, s Status) {
			if s.Resources.MemoryMB != 1.5 {
				t.Errorf("memory_mb: got %v, want 1.5", s.Resources.MemoryMB)
			}
		}},
		{"lower-case state", func(m map[string]string) { m["state"] = "busy" }, func(t *testing.T, s Status) {
			if s.State != "BUSY" {
				t.Errorf("state: got %q, want BUSY", s.State)
			}
		}},
		{"Python time.time() timestamp", func(m map[string]string) { m["timestamp"] = "1688851200.1234567" }, func(t *testing.T, s Status) {
			if want := time.Unix(1688851200, 123456700); !s.Timestamp.Equal(want) {
				t.Errorf("timestamp: got %v, want %v", s.Timestamp, want)
			}
		}},
		{"exponent timestamp", func(m map[string]string) { m["timestamp"] = "1.6888512e9" }, func(t *testing.T, s Status) {
			if want := time.Unix(1688851200, 0); !s.Timestamp.Equal(want) {
				t.Errorf("timestamp: got %v, want %v", s.Timestamp, want)
			}
		}},
		{"fractional interval", func(m map[string]string) { m["interval"] = "0.5" }, func(t *testing.T, s Status) {
			if s.Interval != 500*time.Millisecond {
				t.Errorf("interval: got %v, want 500ms", s.Interval)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := maps.Clone(minimal)
			tt.edit(m)
			s, err := Decode(m)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if tt.check != nil {
				tt.check(t, s)
			}
		})
	}
}

func TestDecodeRejects(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(map[string]string)
		field string
		why   string // part of the reason
	}{
		{"missing worker_id", func(m map[string]string) { delete(m, "worker_id") }, "worker_id", "missing"},
		{"empty worker_id", func(m map[string]string) { m["worker_id"] = "" }, "worker_id", "missing"},
		{"missing state", func(m map[string]string) { delete(m, "state") }, "state", "missing"},
		{"unknown state", func(m map[string]string) { m["state"] = "SLEEPING" }, "state", "not a known state"},
		{"missing timestamp", func(m map[string]string) { delete(m, "timestamp") }, "timestamp", "missing"},
		{"timestamp not a number", func(m map[string]string) { m["timestamp"] = "yesterday" }, "timestamp", "not a number"},
		{"timestamp negative", func(m map[string]string) { m["timestamp"] = "-5" }, "timestamp", "negative"},
		{"timestamp NaN", func(m map[string]string) { m["timestamp"] = "NaN" }, "timestamp", "not a finite number"},
		{"timestamp RFC 3339", func(m map[string]string) { m["timestamp"] = "2023-07-08T21:20:00Z" }, "timestamp", "not Unix seconds"},
		{"missing interval", func(m map[string]string) { delete(m, "interval") }, "interval", "missing"},
		{"interval with unit", func(m map[string]string) { m["interval"] = "30s" }, "interval", "not a number"},
		{"interval zero", func(m map[string]string) { m["interval"] = "0" }, "interval", "more than 0"},
		{"started_at not a number", func(m map[string]string) { m["started_at"] = "boot" }, "started_at", "not Unix seconds"},
		{"jobs_processed negative", func(m map[string]string) { m["jobs_processed"] = "-1" }, "jobs_processed", "non-negative integer"},
		{"jobs_failed fraction", func(m map[string]string) { m["jobs_failed"] = "1.5" }, "jobs_failed", "non-negative integer"},
		{"resources not JSON", func(m map[string]string) { m["resources"] = "memory=245" }, "resources", "not a JSON object"},
		{"resources a JSON array", func(m map[string]string) { m["resources"] = "[1,2]" }, "resources", "not a JSON object"},
		{"resources a Python dict", func(m map[string]string) { m["resources"] = "{'memory_mb': 245.7}" }, "resources", "not the JSON object"},
		{"resources wrong member type", func(m map[string]string) { m["resources"] = `{"memory_mb":"lots"}` }, "resources", "memory_mb"},
		{"system truncated", func(m map[string]string) { m["system"] = `{"hostname":"h"` }, "system", "not the JSON object"},
		{"system pid a string", func(m map[string]string) { m["system"] = `{"pid":"42"}` }, "system", "pid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := stamped(newWorker("worker-1")).Fields()
			tt.edit(m)
			_, err := Decode(m)
			if err == nil {
				t.Fatal("Decode: got nil error")
			}
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v: got %T, want *FieldError", err, err)
			}
			if fe.Field != tt.field {
				t.Errorf("field: got %q, want %q (%v)", fe.Field, tt.field, err)
			}
			if !strings.Contains(err.Error(), `"`+tt.field+`"`) || !strings.Contains(err.Error(), tt.why) {
				t.Errorf("error %q: want it to name %q and say %q", err, tt.field, tt.why)
			}
		})
	}
}

func TestFieldNames(t *testing.T) {
	w := stamped(newWorker("w"))
	w.Quiet = true // every field, the optional ones too
	kv := w.appendArgs(nil)
	var want []string
	for i := 0; i < len(kv); i += 2 {
		want = append(want, kv[i].(string))
	}
	if got := FieldNames(); !slices.Equal(got, want) {
		t.Errorf("FieldNames: got %v, want the order of a beat, %v", got, want)
	}
}

// TestFieldCaps: a writer cuts oversize fields to their caps (current_job
// keeping whole ids), and Decode reports an oversize field by name, so a
// 5 MiB current_job can neither be written nor swell a fleet listing.
func TestFieldCaps(t *testing.T) {
	ids := strings.Repeat("echo.abcdefghijkl,", 500) // 9,000 bytes of ids
	s := Status{Identity: Identity{WorkerID: "w", Hostname: strings.Repeat("h", 1000)}, State: "BUSY", CurrentJob: ids,
		Timestamp: time.Unix(1688851200, 0), Interval: time.Second}
	f := s.Fields()
	if got := len(f["hostname"]); got != MaxFieldLen {
		t.Errorf("hostname written with %d bytes, want cut to %d", got, MaxFieldLen)
	}
	cj := f["current_job"]
	if len(cj) > MaxCurrentJobLen || strings.HasSuffix(cj, ",") || !strings.HasSuffix(cj, "echo.abcdefghijkl") {
		t.Errorf("current_job written as %d bytes ending %q, want at most %d bytes of whole ids", len(cj), cj[len(cj)-20:], MaxCurrentJobLen)
	}
	if _, err := Decode(f); err != nil {
		t.Errorf("Decode of a capped beat: %v", err)
	}
	tests := []struct{ field, value string }{
		{"current_job", strings.Repeat("x", 5<<20)},
		{"hostname", strings.Repeat("h", MaxFieldLen+1)},
		{"metrics_url", "http://" + strings.Repeat("a", MaxURLLen)},
		{"some_future_field", strings.Repeat("f", MaxCurrentJobLen+1)},
	}
	for _, tt := range tests {
		t.Run(tt.field, func(t *testing.T) {
			raw := maps.Clone(f)
			raw[tt.field] = tt.value
			_, err := Decode(raw)
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != tt.field || !strings.Contains(err.Error(), "allowed") {
				t.Errorf("Decode with an oversize %s: %v, want a FieldError naming it", tt.field, err)
			}
		})
	}
}
