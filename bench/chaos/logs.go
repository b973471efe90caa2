package main

import (
	"bufio"
	"encoding/json"
	"os"
	"time"
)

// runs is what the workers' logs say about one job id.
type runs struct {
	started   int  // "job started" lines: runs begun, in any life of any worker
	succeeded int  // runs that returned without error
	killedMid bool // a run began in a life ended by SIGKILL and did not end there
	lastStart time.Time
}

// logReport is what the workers' logs say, job by job.
type logReport struct {
	jobs    map[string]*runs
	nonJSON map[string]int // log file -> lines that are not one JSON object
}

// readLogs reads every life of every worker. The queue logs "job started"
// and "job succeeded" at DEBUG (the workers run with LOG_LEVEL=DEBUG) and
// the worker one more "job succeeded" at INFO; successes are counted from
// the DEBUG one, so each run counts once.
func readLogs(workers []*worker) (logReport, error) {
	r := logReport{jobs: map[string]*runs{}, nonJSON: map[string]int{}}
	for _, w := range workers {
		for _, l := range w.lives {
			if err := r.read(l); err != nil {
				return r, err
			}
		}
	}
	return r, nil
}

func (r *logReport) read(l life) error {
	open, err := r.scan(l.log)
	if l.killed {
		for id, n := range open {
			if n > 0 {
				r.job(id).killedMid = true
			}
		}
	}
	return err
}

// running returns the jobs a life's log shows begun and not ended, with
// when each began.
func running(l life) map[string]time.Time {
	r := logReport{jobs: map[string]*runs{}, nonJSON: map[string]int{}}
	open, _ := r.scan(l.log)
	ids := map[string]time.Time{}
	for id, n := range open {
		if n > 0 {
			ids[id] = r.jobs[id].lastStart
		}
	}
	return ids
}

// scan reads one log file into r and returns, per job id, the runs begun
// and not ended in it.
func (r *logReport) scan(path string) (map[string]int, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	open := map[string]int{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var rec struct {
			Level   string    `json:"levelname"`
			Message string    `json:"message"`
			JobID   string    `json:"job_id"`
			Time    time.Time `json:"timestamp"`
		}
		if json.Unmarshal(sc.Bytes(), &rec) != nil {
			r.nonJSON[path]++
			continue
		}
		if rec.JobID == "" || rec.Level == "INFO" {
			continue
		}
		switch rec.Message {
		case "job started":
			r.job(rec.JobID).started++
			r.job(rec.JobID).lastStart = rec.Time
			open[rec.JobID]++
		case "job succeeded":
			r.job(rec.JobID).succeeded++
			open[rec.JobID]--
		case "job failed; will retry", "job failed; dead-lettered":
			open[rec.JobID]--
		}
	}
	return open, sc.Err()
}

func (r *logReport) job(id string) *runs {
	j := r.jobs[id]
	if j == nil {
		j = &runs{}
		r.jobs[id] = j
	}
	return j
}

// nonJSON counts the lines of a log file that are not one JSON object.
func nonJSON(path string) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var v map[string]any
		if json.Unmarshal(sc.Bytes(), &v) != nil {
			n++
		}
	}
	return n, sc.Err()
}
