package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// kind classifies an answer to POST /api/jobs by what it says about the
// job.
type kind int

const (
	queued   kind = iota // 202: queued now
	replayed             // 200 Idempotent-Replayed: the key queued it before
	refused              // 4xx, or 503 without an id: not queued
	unknown              // 503 with an id ("unknown", "exists"): look it up
	noAnswer             // transport error or client timeout
)

func (k kind) String() string {
	return [...]string{"queued", "replayed", "refused", "unknown", "no-answer"}[k]
}

// answer is one response to one POST.
type answer struct {
	kind       kind
	code       int
	id         string
	status     string
	err        string
	retryAfter time.Duration
	took       time.Duration
}

// submission is one job as a client sees it: its key, its body, every
// answer it got, and the id it ended with.
type submission struct {
	key    string
	typ    string
	marker string // echo jobs: the value of "marker" in the payload
	body   []byte
	sent   bool

	// lookupFirst makes the client follow the README's other advice after
	// an "unknown" answer: GET the id, and send again only on a 404.
	lookupFirst bool

	answers []answer
	lookups []lookup
	id      string // the id of the final 202 or 200, or of a lookup that found it; "" if none
}

// lookup is a GET /api/jobs/{id} a client made after an "unknown" answer.
type lookup struct {
	id    string
	found bool
}

// client submits jobs as the README tells a client to: a 503 with an id,
// a 503 without one, or no answer at all is retried with the same
// Idempotency-Key after a short backoff; a 429 after its Retry-After.
// A submission is given up after budget.
type client struct {
	http   *http.Client
	url    string
	budget time.Duration
}

func (c *client) submit(ctx context.Context, s *submission) {
	s.sent = true
	deadline := time.Now().Add(c.budget)
	backoff := 250 * time.Millisecond
	for {
		a := c.post(ctx, s)
		s.answers = append(s.answers, a)
		var wait time.Duration
		switch a.kind {
		case queued, replayed:
			s.id = a.id
			return
		case refused:
			if a.code != http.StatusTooManyRequests && a.code != http.StatusServiceUnavailable {
				return // a 4xx that retrying cannot change
			}
			wait = a.retryAfter
		case unknown:
			if s.lookupFirst {
				if info, err := c.lookup(ctx, a.id); err == nil {
					s.lookups = append(s.lookups, lookup{id: a.id, found: info.found})
					if info.found {
						s.id = a.id
						return
					}
				}
			}
		}
		if wait == 0 {
			wait, backoff = backoff, min(2*backoff, 4*time.Second)
		}
		if time.Now().Add(wait).After(deadline) {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

func (c *client) post(ctx context.Context, s *submission) answer {
	start := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url+"/api/jobs", bytes.NewReader(s.body))
	if err != nil {
		return answer{kind: noAnswer, err: err.Error()}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", s.key)
	resp, err := c.http.Do(req)
	if err != nil {
		return answer{kind: noAnswer, err: err.Error(), took: time.Since(start)}
	}
	defer resp.Body.Close()
	var body struct {
		ID     string `json:"id"`
		Status string `json:"status"`
		Error  string `json:"error"`
	}
	decodeErr := json.NewDecoder(resp.Body).Decode(&body)
	a := answer{code: resp.StatusCode, id: body.ID, status: body.Status, err: body.Error, took: time.Since(start)}
	if secs, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil {
		a.retryAfter = time.Duration(secs) * time.Second
	}
	switch {
	case decodeErr != nil:
		a.kind, a.err = noAnswer, "undecodable body: "+decodeErr.Error()
	case resp.StatusCode == http.StatusAccepted && body.ID != "":
		a.kind = queued
	case resp.StatusCode == http.StatusOK && body.ID != "" && resp.Header.Get("Idempotent-Replayed") == "true":
		a.kind = replayed
	case resp.StatusCode == http.StatusServiceUnavailable && body.ID != "":
		a.kind = unknown
	case resp.StatusCode >= 400 && resp.StatusCode < 600 && body.ID == "":
		a.kind = refused
	default:
		a.kind, a.err = noAnswer, "unexpected answer "+resp.Status
	}
	return a
}

// submitAll submits subs at rate per second from n concurrent clients,
// as fast as the clients allow when they fall behind, and returns when
// every submission has its final answer.
func (c *client) submitAll(ctx context.Context, subs []*submission, rate float64, n int) {
	ch := make(chan *submission)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			for s := range ch {
				c.submit(ctx, s)
			}
		})
	}
	tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
	defer tick.Stop()
	defer wg.Wait()
	defer close(ch)
	for _, s := range subs {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		select {
		case <-ctx.Done():
			return
		case ch <- s:
		}
	}
}

// jobInfo is the part of GET /api/jobs/{id} the checks read.
type jobInfo struct {
	found  bool
	Status string          `json:"status"`
	Result json.RawMessage `json:"result"`
}

// lookup asks GET /api/jobs/{id}, retrying a 503 or no answer for up to
// 30 s, as a client would.
func (c *client) lookup(ctx context.Context, id string) (jobInfo, error) {
	var info jobInfo
	err := poll(ctx, 30*time.Second, "an answer to GET /api/jobs/"+id, func() bool {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.url+"/api/jobs/"+id, nil)
		resp, err := c.http.Do(req)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		switch resp.StatusCode {
		case http.StatusNotFound:
			info = jobInfo{}
			return true
		case http.StatusOK:
			info = jobInfo{}
			info.found = json.NewDecoder(resp.Body).Decode(&info) == nil
			return info.found
		}
		return false
	})
	return info, err
}
