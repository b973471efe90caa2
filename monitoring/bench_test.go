package monitoring

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"testing"
	"time"
)

// benchServer serves a worker's endpoints as `botfleet worker` does: a real
// sampler, the standard collectors plus the worker's metrics with a few job
// types observed, a passing Redis check and a bearer token.
func benchServer(b *testing.B) *Server {
	b.Helper()
	w := NewWorker("worker-1", nil)
	must(b, w.SetState(StateIdle))
	sampler := NewSampler(0)
	sampler.Start(b.Context())
	b.Cleanup(sampler.Stop)
	reg := NewRegistry()
	must(b, RegisterWorkerMetrics(reg, w, sampler, testIdentity, &fakeBeats{}))
	for i, typ := range []string{"scrape", "render", "notify", "cleanup"} {
		w.JobStarted("job", typ)
		w.JobFinished("job", typ, time.Duration(i+1)*300*time.Millisecond, nil)
	}
	m := NewMonitor(MonitorOptions{
		Service: "worker", Worker: w, Sampler: sampler,
		Checks: []Check{{Name: "redis", Critical: true, Run: func(context.Context) error { return nil }}},
	})
	m.Start(b.Context())
	b.Cleanup(m.Stop)
	return startServer(b, ServerOptions{AuthToken: testToken, Gatherer: reg, Monitor: m})
}

// benchGet times b.N sequential GETs over one keep-alive connection and
// reports the 50th and 99th percentile latencies.
func benchGet(b *testing.B, url string) {
	req, err := http.NewRequestWithContext(b.Context(), "GET", url, nil)
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testToken)
	client := &http.Client{Transport: &http.Transport{}} // compresses /metrics, as Prometheus asks
	defer client.CloseIdleConnections()
	took := make([]time.Duration, 0, b.N)
	var size int64
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		took = append(took, time.Since(start))
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("GET %s: %s", url, resp.Status)
		}
		size = n
	}
	b.StopTimer()
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)/2].Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(took[len(took)*99/100].Nanoseconds()), "p99-ns")
	b.ReportMetric(float64(size), "body-bytes")
}

// BenchmarkHealth is a full GET /health round trip over loopback.
func BenchmarkHealth(b *testing.B) {
	s := benchServer(b)
	benchGet(b, s.URL()+"/health")
}

// BenchmarkMetrics is a full scrape of /metrics over loopback, gzipped.
func BenchmarkMetrics(b *testing.B) {
	s := benchServer(b)
	benchGet(b, s.URL()+"/metrics")
}

// BenchmarkHealthParallel measures /health throughput from concurrent
// clients: requests per second = 1e9 / (ns/op).
func BenchmarkHealthParallel(b *testing.B) {
	s := benchServer(b)
	url := s.URL() + "/health"
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	defer client.CloseIdleConnections()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		req, _ := http.NewRequest("GET", url, nil)
		req.Header.Set("Authorization", "Bearer "+testToken)
		for pb.Next() {
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	})
}

// BenchmarkHealthJSON is the server-side cost of /health without HTTP:
// the document from the caches, and its encoding.
func BenchmarkHealthJSON(b *testing.B) {
	w := NewWorker("worker-1", nil)
	must(b, w.SetState(StateIdle))
	m := NewMonitor(MonitorOptions{
		Service: "worker", Worker: w, Sampler: NewSampler(0),
		Checks: []Check{{Name: "redis", Run: func(context.Context) error { return nil }}},
	})
	m.Start(b.Context())
	defer m.Stop()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := json.Marshal(m.Health()); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSample is the cost of one resource sample (four reads of /proc
// through gopsutil). The pct-core-at-5s metric is that cost as a share of
// one core at the default 5s interval: the sampler's idle overhead.
func BenchmarkSample(b *testing.B) {
	s := NewSampler(0)
	s.init(b.Context())
	b.ReportAllocs()
	start := time.Now()
	for b.Loop() {
		s.sampleOnce(b.Context())
	}
	perSample := time.Since(start).Seconds() / float64(b.N)
	b.ReportMetric(100*perSample/DefaultSampleInterval.Seconds(), "pct-core-at-5s")
}
