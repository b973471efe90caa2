package deploy

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
)

// HTTP for TestPrometheusE2E: its requests, and the parts of Prometheus's
// HTTP API it reads (instant queries, label values, rules, targets, alerts;
// https://prometheus.io/docs/prometheus/latest/querying/api/).

// do sends a request, with a bearer token when token is set.
func (e *e2e) do(method, target, token string, body io.Reader) (int, []byte, error) {
	req, err := http.NewRequest(method, target, body)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := e.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// promError is an answer of Prometheus's API with status "error".
type promError struct{ Type, Msg string }

func (e *promError) Error() string { return e.Type + ": " + e.Msg }

// api GETs a Prometheus HTTP API path and decodes its data into v.
func (e *e2e) api(path string, params url.Values, v any) error {
	_, body, err := e.do(http.MethodGet, e.prom+path+"?"+params.Encode(), "", nil)
	if err != nil {
		return err
	}
	var resp struct {
		Status, ErrorType, Error string
		Data                     json.RawMessage
	}
	if err := json.Unmarshal(body, &resp); err != nil {
		return fmt.Errorf("%s: %v: %s", path, err, body)
	}
	if resp.Status != "success" {
		return &promError{resp.ErrorType, resp.Error}
	}
	return json.Unmarshal(resp.Data, v)
}

// promSample is one series of an instant query's result.
type promSample struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
}

func (s promSample) number() float64 {
	v, err := strconv.ParseFloat(fmt.Sprint(s.Value[1]), 64)
	if err != nil {
		return math.NaN()
	}
	return v
}

// query runs an instant query; a scalar comes back as one sample.
func (e *e2e) query(expr string) ([]promSample, error) {
	var data struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	}
	if err := e.api("/api/v1/query", url.Values{"query": {expr}}, &data); err != nil {
		return nil, err
	}
	var samples []promSample
	var err error
	switch data.ResultType {
	case "vector":
		err = json.Unmarshal(data.Result, &samples)
	case "scalar":
		samples = make([]promSample, 1)
		err = json.Unmarshal(data.Result, &samples[0].Value)
	default:
		err = fmt.Errorf("result type %q", data.ResultType)
	}
	return samples, err
}

type promTarget struct {
	ScrapePool string            `json:"scrapePool"`
	Labels     map[string]string `json:"labels"`
	Health     string            `json:"health"`
	LastError  string            `json:"lastError"`
}

func (e *e2e) targets() ([]promTarget, error) {
	var data struct {
		ActiveTargets []promTarget `json:"activeTargets"`
	}
	err := e.api("/api/v1/targets", url.Values{"state": {"active"}}, &data)
	return data.ActiveTargets, err
}

type promAlert struct {
	Labels map[string]string `json:"labels"`
	State  string            `json:"state"`
}

// alert returns the active alert named name whose labels include labels,
// or nil, and every active alert for failure messages.
func (e *e2e) alert(name string, labels map[string]string) (*promAlert, string) {
	var data struct {
		Alerts []promAlert `json:"alerts"`
	}
	if err := e.api("/api/v1/alerts", nil, &data); err != nil {
		return nil, err.Error()
	}
	for i, a := range data.Alerts {
		match := a.Labels["alertname"] == name
		for k, v := range labels {
			match = match && a.Labels[k] == v
		}
		if match {
			return &data.Alerts[i], fmt.Sprint(data.Alerts)
		}
	}
	return nil, fmt.Sprintf("active alerts: %v", data.Alerts)
}
