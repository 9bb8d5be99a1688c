package webhook

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"
)

// TestResult is the outcome of SendTest for one target.
type TestResult struct {
	Target  string        `json:"target"`
	URL     string        `json:"url"` // without userinfo or query
	ID      string        `json:"id"`  // webhook-id sent
	Status  int           `json:"status"`
	Latency time.Duration `json:"latency"`
	Err     string        `json:"error,omitempty"`
}

// OK reports whether the receiver accepted the notice.
func (r TestResult) OK() bool { return r.Err == "" }

// SendTest sends one signed "test" notice from server directly to each
// target, bypassing the outbox, all targets at once, one attempt each
// (10 s timeout), and reports per target. It is what
// `buddyrec webhook test -config FILE` prints. client nil means Client(nil).
func SendTest(ctx context.Context, client *http.Client, targets []Target, server string) []TestResult {
	if client == nil {
		client = defaultClient()
	}
	return sendTest(ctx, client, targets, server)
}

func sendTest(ctx context.Context, c *http.Client, targets []Target, server string) []TestResult {
	out := make([]TestResult, len(targets))
	var wg sync.WaitGroup
	for i, tg := range targets {
		out[i] = TestResult{Target: tg.Name, URL: SafeURL(tg.URL)}
		if err := tg.Validate(); err != nil {
			out[i].Err = err.Error()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := Notice{
				Type:   TypeTest,
				ID:     newID(),
				Time:   time.Now().UTC(),
				Server: server,
				Text:   fmt.Sprintf("test notice from %s", server),
			}
			body, err := json.Marshal(n)
			if err != nil {
				out[i].Err = err.Error()
				return
			}
			key, _ := ParseSecret(tg.Secret)
			t := &target{t: tg, key: key, safeURL: out[i].URL}
			start := time.Now()
			status, err := deliver(ctx, c, DefaultRequestTimeout, t, n.ID, body)
			out[i].Latency = time.Since(start)
			out[i].ID, out[i].Status = n.ID, status
			if err != nil {
				out[i].Err = err.Error()
			}
		}()
	}
	wg.Wait()
	return out
}
