package heartbeat

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/botfleet/botfleet/internal/wire"
)

// The Redis keys. Their names are a contract with the readers of the fleet
// and with workers written in other languages (docs/wire-format.md).
const (
	// KeyPrefix followed by a worker id names the worker's latest status: a
	// hash of the Fields, with a TTL, so a worker that dies without saying
	// goodbye disappears by itself.
	KeyPrefix = "worker:heartbeat:"
	// IndexKey is a sorted set of worker ids scored by the Unix seconds of
	// their last beat, so readers list the fleet without SCAN.
	IndexKey = "worker:index"
	// StreamKey is a stream holding every beat's fields, trimmed with
	// MAXLEN ~ so the time series stays bounded.
	StreamKey = "worker:status"
)

// The hash and stream field names, in the order a beat writes them.
const (
	fieldWorkerID      = "worker_id"
	fieldState         = "state"
	fieldTimestamp     = "timestamp"
	fieldInterval      = "interval"
	fieldService       = "service"
	fieldHostname      = "hostname"
	fieldContainerID   = "container_id"
	fieldDeploymentEnv = "deployment_env"
	fieldRegion        = "region"
	fieldVersion       = "version"
	fieldStartedAt     = "started_at"
	fieldJobsProcessed = "jobs_processed"
	fieldJobsFailed    = "jobs_failed"
	fieldCurrentJob    = "current_job"
	fieldMetricsURL    = "metrics_url"
	fieldResources     = "resources"
	fieldSystem        = "system"
	// fieldQuiet is optional: "1" while the worker takes no new jobs
	// (quieted through its control key), absent otherwise.
	fieldQuiet = "quiet"
)

// numFields is how many fields a beat writes.
const numFields = 17

// Status is one beat: what a worker says about itself. Fields encodes it for
// Redis and Decode reads it back.
type Status struct {
	// Identity says who the worker is; WorkerID is required.
	Identity
	State         string    // a State's name: STARTING, IDLE, BUSY, STOPPING, STOPPED
	Timestamp     time.Time // when the beat was written
	StartedAt     time.Time // when the worker started; zero when unknown
	Interval      time.Duration
	JobsProcessed uint64
	JobsFailed    uint64
	// CurrentJob holds the ids of the running jobs, comma-separated when
	// several run at once; "" when idle.
	CurrentJob string
	// MetricsURL is where this worker's /metrics can be scraped (service
	// discovery).
	MetricsURL string
	Resources  Resources
	System     System
	// Quiet is set while the worker finishes its running jobs and takes
	// no new ones (an operator quieted it); written as quiet "1", left
	// out when false.
	Quiet bool
}

// Fields returns the hash fields of s, all strings: times in Unix seconds
// with a millisecond fraction, the interval in seconds, resources and system
// as JSON objects.
func (s Status) Fields() map[string]string {
	kv := s.appendArgs(make([]any, 0, 2*numFields))
	m := make(map[string]string, numFields)
	for i := 0; i < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1].(string)
	}
	return m
}

// appendArgs appends the fields of s as alternating names and values, in a
// fixed order, ready for HSET and XADD.
func (s Status) appendArgs(dst []any) []any {
	s = s.capped()
	dst = append(dst,
		fieldWorkerID, s.WorkerID,
		fieldState, s.State,
		fieldTimestamp, wire.FormatUnix(s.Timestamp),
		fieldInterval, wire.FormatSeconds(s.Interval),
		fieldService, s.Service,
		fieldHostname, s.Hostname,
		fieldContainerID, s.ContainerID,
		fieldDeploymentEnv, s.DeploymentEnv,
		fieldRegion, s.Region,
		fieldVersion, s.Version,
		fieldStartedAt, wire.FormatUnix(s.StartedAt),
		fieldJobsProcessed, strconv.FormatUint(s.JobsProcessed, 10),
		fieldJobsFailed, strconv.FormatUint(s.JobsFailed, 10),
		fieldCurrentJob, s.CurrentJob,
		fieldMetricsURL, s.MetricsURL,
		fieldResources, mustJSON(s.Resources),
		fieldSystem, mustJSON(s.System),
	)
	if s.Quiet {
		dst = append(dst, fieldQuiet, "1")
	}
	return dst
}

// Size caps of the fields, in bytes: a beat is a few hundred bytes, and a
// field past its cap is a bug or an attack that would swell every fleet
// listing and event stream. Writers cut a field to its cap (Fields does);
// Decode reports a longer one as invalid, naming it.
const (
	MaxFieldLen      = 256  // worker_id, service, hostname, container_id, deployment_env, region, version, state, times, counts
	MaxCurrentJobLen = 4096 // current_job: the running jobs' ids, comma-separated
	MaxURLLen        = 2048 // metrics_url
	MaxObjectLen     = 1024 // resources, system: small JSON objects
)

// fieldCap returns the cap of a field.
func fieldCap(name string) int {
	switch name {
	case fieldCurrentJob:
		return MaxCurrentJobLen
	case fieldMetricsURL:
		return MaxURLLen
	case fieldResources, fieldSystem:
		return MaxObjectLen
	case fieldWorkerID, fieldState, fieldTimestamp, fieldInterval, fieldService, fieldHostname, fieldContainerID,
		fieldDeploymentEnv, fieldRegion, fieldVersion, fieldStartedAt, fieldJobsProcessed, fieldJobsFailed:
		return MaxFieldLen
	}
	return MaxCurrentJobLen // a field of a newer writer
}

// capped returns s with every string field cut to its cap; current_job
// keeps whole ids.
func (s Status) capped() Status {
	for _, f := range []*string{&s.WorkerID, &s.Service, &s.Hostname, &s.ContainerID, &s.DeploymentEnv, &s.Region, &s.Version, &s.State} {
		*f = cutUTF8(*f, MaxFieldLen)
	}
	s.MetricsURL = cutUTF8(s.MetricsURL, MaxURLLen)
	if len(s.CurrentJob) > MaxCurrentJobLen {
		cut := cutUTF8(s.CurrentJob, MaxCurrentJobLen)
		if i := strings.LastIndexByte(cut, ','); i > 0 {
			cut = cut[:i]
		}
		s.CurrentJob = cut
	}
	return s
}

// cutUTF8 shortens v to at most n bytes without splitting a character.
func cutUTF8(v string, n int) string {
	if len(v) <= n {
		return v
	}
	for n > 0 && !utf8.RuneStart(v[n]) {
		n--
	}
	return v[:n]
}

// checkCaps reports the field longer than its cap that sorts first.
func checkCaps(fields map[string]string) error {
	bad := ""
	for name, v := range fields {
		if len(v) > fieldCap(name) && (bad == "" || name < bad) {
			bad = name
		}
	}
	if bad == "" {
		return nil
	}
	return fieldErr(bad, "%d bytes: more than the %d allowed", len(fields[bad]), fieldCap(bad))
}

// mustJSON encodes a struct of plain fields, which cannot fail but for a
// NaN or infinite float; those are written as the empty object rather than
// losing the whole beat.
func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return "{}"
	}
	return string(b)
}

// FieldError reports a malformed field of a heartbeat entry; its Entry
// is "heartbeat".
type FieldError = wire.FieldError

func fieldErr(field, format string, args ...any) error {
	return wire.FieldErrorf("heartbeat", field, format, args...)
}

// Decode reads a heartbeat hash or stream entry back into a Status. It
// requires worker_id, a known state, timestamp and a positive interval, and
// checks the form of every other field that is present and not empty;
// unknown fields are ignored, so newer writers can add some. The error, a
// *FieldError, names the first field found wrong.
func Decode(fields map[string]string) (Status, error) {
	if err := checkCaps(fields); err != nil {
		return Status{}, err
	}
	s := Status{
		Identity: Identity{
			WorkerID:      fields[fieldWorkerID],
			Service:       fields[fieldService],
			Hostname:      fields[fieldHostname],
			ContainerID:   fields[fieldContainerID],
			DeploymentEnv: fields[fieldDeploymentEnv],
			Region:        fields[fieldRegion],
			Version:       fields[fieldVersion],
		},
		CurrentJob: fields[fieldCurrentJob],
		MetricsURL: fields[fieldMetricsURL],
		Quiet:      fields[fieldQuiet] == "1",
	}
	if s.WorkerID == "" {
		return Status{}, fieldErr(fieldWorkerID, "missing")
	}
	state, err := decodeState(fields)
	if err != nil {
		return Status{}, err
	}
	s.State = state
	if s.Timestamp, err = decodeTime(fields, fieldTimestamp, true); err != nil {
		return Status{}, err
	}
	if s.Interval, err = decodeInterval(fields); err != nil {
		return Status{}, err
	}
	if s.StartedAt, err = decodeTime(fields, fieldStartedAt, false); err != nil {
		return Status{}, err
	}
	if s.JobsProcessed, err = decodeCount(fields, fieldJobsProcessed); err != nil {
		return Status{}, err
	}
	if s.JobsFailed, err = decodeCount(fields, fieldJobsFailed); err != nil {
		return Status{}, err
	}
	if err := decodeObject(fields, fieldResources, &s.Resources); err != nil {
		return Status{}, err
	}
	if err := decodeObject(fields, fieldSystem, &s.System); err != nil {
		return Status{}, err
	}
	return s, nil
}

func decodeState(fields map[string]string) (string, error) {
	v, ok := fields[fieldState]
	if !ok || v == "" {
		return "", fieldErr(fieldState, "missing")
	}
	st, err := ParseState(v)
	if err != nil {
		return "", fieldErr(fieldState, "%q is not a known state: want one of STARTING, IDLE, BUSY, STOPPING, STOPPED", v)
	}
	return st.String(), nil
}

// decodeTime reads Unix seconds; an empty optional field is the zero time.
func decodeTime(fields map[string]string, name string, required bool) (time.Time, error) {
	v := fields[name]
	if v == "" {
		if required {
			return time.Time{}, fieldErr(name, "missing")
		}
		return time.Time{}, nil
	}
	t, err := wire.ParseUnix(v)
	if err != nil {
		return time.Time{}, fieldErr(name, "%q is not Unix seconds: %v", v, err)
	}
	return t, nil
}

func decodeInterval(fields map[string]string) (time.Duration, error) {
	v := fields[fieldInterval]
	if v == "" {
		return 0, fieldErr(fieldInterval, "missing")
	}
	f, err := wire.ParseSeconds(v)
	if err != nil {
		return 0, fieldErr(fieldInterval, "%q is not a number of seconds: %v", v, err)
	}
	d := time.Duration(f * float64(time.Second))
	if d <= 0 {
		return 0, fieldErr(fieldInterval, "%q: want more than 0 seconds", v)
	}
	return d, nil
}

func decodeCount(fields map[string]string, name string) (uint64, error) {
	v := fields[name]
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, fieldErr(name, "%q is not a non-negative integer", v)
	}
	return n, nil
}

// decodeObject reads a JSON object into dst; unknown members are ignored,
// as unknown fields are.
func decodeObject(fields map[string]string, name string, dst any) error {
	v := fields[name]
	if v == "" {
		return nil
	}
	trimmed := bytes.TrimSpace([]byte(v))
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return fieldErr(name, "%.40q is not a JSON object", v)
	}
	if err := json.Unmarshal(trimmed, dst); err != nil {
		return fieldErr(name, "not the JSON object expected: %v", err)
	}
	return nil
}
