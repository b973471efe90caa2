package bot_test

import (
	"context"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/botfleet/botfleet/internal/testbin"
	"github.com/botfleet/botfleet/jobs"
)

// chromiumTab starts headless Chromium for t and returns a tab whose
// actions are bounded by timeout.
func chromiumTab(t *testing.T, timeout time.Duration) context.Context {
	t.Helper()
	exe, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("chromium is not on PATH (make deps installs the Debian package chromium): %v", err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(exe), chromedp.Headless,
		chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.WindowSize(1280, 900))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelBrowser := chromedp.NewContext(actx)
	tctx, cancelTimeout := context.WithTimeout(ctx, timeout)
	t.Cleanup(func() { cancelTimeout(); cancelBrowser(); cancelAlloc() })
	return tctx
}

// page drives one tab: JavaScript evaluated in the page, polled from Go
// (chromedp.Poll compiles its predicate with new Function, which the
// dashboard's CSP forbids).
type page struct {
	t   *testing.T
	ctx context.Context
}

func (p page) open(url string) {
	p.t.Helper()
	if err := chromedp.Do(p.ctx, chromedp.Navigate(url)); err != nil {
		p.t.Fatalf("open %s: %v", url, err)
	}
}

// waitFor polls the predicate expr until it holds.
func (p page) waitFor(what, expr string) {
	p.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ok, err := chromedp.Run(p.ctx, chromedp.Evaluate[bool]("!!("+expr+")"))
		if err == nil && ok {
			return
		}
		if err != nil || time.Now().After(deadline) {
			body, _ := chromedp.Run(p.ctx, chromedp.Evaluate[string]("document.body.innerText"))
			p.t.Fatalf("waiting for %s (err %v); the page shows:\n%s", what, err, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// click waits for the element of selector sel and clicks it.
func (p page) click(what, sel string) {
	p.t.Helper()
	q := "document.querySelector(" + strconv.Quote(sel) + ")"
	p.waitFor(what, q+" && !"+q+".closest('[hidden]')")
	if _, err := chromedp.Run(p.ctx, chromedp.Evaluate[bool](q+".click(), true")); err != nil {
		p.t.Fatalf("click %s: %v", what, err)
	}
}

// TestDashboardRetriesDeadJobAndPausesQueue drives the Jobs and Queues
// pages in Chromium: a click on Retry (and Yes) runs a dead job again and
// the page shows it succeeded; a click on Pause (and Yes) pauses the queue,
// the worker stops taking jobs, a job submitted meanwhile shows as waiting,
// and Resume lets it run.
func TestDashboardRetriesDeadJobAndPausesQueue(t *testing.T) {
	a := startAdminBot(t)
	a.failing.Store(true)
	_, m := a.call(t, "POST", "/api/jobs", submitToken, `{"type":"flaky"}`)
	id := m["id"].(string)
	testbin.WaitFor(t, 15*time.Second, id+" dead", func() bool { return a.status(t, id) == jobs.StatusFailed })
	a.failing.Store(false)

	tab := page{t, chromiumTab(t, 120*time.Second)}
	frag := "#token=" + readToken + "&admin=" + adminToken
	row := `tr[data-job="` + id + `"]`
	tab.open(a.url + "/assets/jobs.html" + frag)
	tab.click("the dead job's Retry button", row+`[data-status="failed"] button[data-action="retry"]`)
	tab.click("the confirmation", `#confirm-yes`)
	tab.waitFor("the job shown succeeded", "document.querySelector('"+row+`[data-status="succeeded"]')`)
	if s := a.status(t, id); s != jobs.StatusSucceeded {
		t.Errorf("job after the dashboard's retry is %s, want succeeded", s)
	}

	q := `tr[data-queue="default"]`
	tab.open(a.url + "/assets/queues.html" + frag)
	tab.click("the queue's Pause button", q+`[data-paused="0"] button[data-action="pause"]`)
	tab.click("the confirmation", `#confirm-yes`)
	tab.waitFor("the queue shown paused", "document.querySelector('"+q+`[data-paused="1"]')`)
	testbin.WaitFor(t, 15*time.Second, "the worker to read the pause", a.worker.Paused)
	_, m = a.call(t, "POST", "/api/jobs", submitToken, `{"type":"flaky"}`)
	held := m["id"].(string)
	tab.waitFor("the job shown waiting", `document.querySelector('tr[data-queue="default"] td.waiting')?.textContent === "1"`)
	if s := a.status(t, held); s != jobs.StatusQueued {
		t.Errorf("job submitted while paused is %s, want queued", s)
	}
	tab.click("the queue's Resume button", q+` button[data-action="resume"]`)
	tab.click("the confirmation", `#confirm-yes`)
	tab.waitFor("the queue shown running", "document.querySelector('"+q+`[data-paused="0"]')`)
	testbin.WaitFor(t, 15*time.Second, "the held job to run after the resume", func() bool { return a.status(t, held) == jobs.StatusSucceeded })

	// A fragment that is not valid percent-encoding (a bare "%") still
	// leaves a working page, as on the dashboard.
	tab.open(a.url + "/assets/jobs.html" + frag + "&note=%zz")
	tab.waitFor("the jobs listed despite a malformed fragment", "document.querySelector('"+row+"')")
}
