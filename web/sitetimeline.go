package web

import (
	"context"
	"net/url"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/buddyrec/buddyrec/api"
)

// siteTimeline answers GET /api/v1/timeline?scope=site: this server's
// timeline merged with every alive peer's, so any server answers for the
// whole site as the status page does. Peers are asked for their own
// timeline (scope local), so a request fans out once. A peer that does not
// answer is listed in Unreachable under the camera id "*", with the reason.
func (h *handler) siteTimeline(ctx context.Context, tl *Timeline) {
	src := h.o.Source
	self := src.Self()
	type answer struct {
		name string
		tl   *Timeline
		err  error
	}
	var (
		mu      sync.Mutex
		wg      sync.WaitGroup
		answers []answer
	)
	q := url.Values{"from": {tl.From.Format(time.RFC3339Nano)}, "to": {tl.To.Format(time.RFC3339Nano)}}
	for _, s := range src.Cluster() {
		if s.Name == self || (s.State != "alive" && s.State != "suspect") || s.HTTP == "" {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			u := url.URL{Scheme: h.o.PeerScheme, Host: s.HTTP, Path: "/api/v1/timeline", RawQuery: q.Encode()}
			var t Timeline
			err := h.getJSON(ctx, u.String(), &t)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				answers = append(answers, answer{name: s.Name, err: err})
				return
			}
			answers = append(answers, answer{name: s.Name, tl: &t})
		}()
	}
	wg.Wait()
	sort.Slice(answers, func(i, j int) bool { return answers[i].name < answers[j].name })
	for _, a := range answers {
		if a.err != nil {
			h.log.Warn("site timeline: peer unavailable", "peer", a.name, "err", a.err)
			if tl.Unreachable == nil {
				tl.Unreachable = map[string][]api.Unreachable{}
			}
			tl.Unreachable["*"] = append(tl.Unreachable["*"], api.Unreachable{Server: a.name, Reason: "no answer: " + a.err.Error()})
			continue
		}
		for id, spans := range a.tl.Cameras {
			for _, sp := range spans {
				if len(sp.HeldBy) == 0 {
					sp.HeldBy = []string{a.name}
				}
				tl.Cameras[id] = append(tl.Cameras[id], sp)
			}
		}
	}
	for id, spans := range tl.Cameras {
		tl.Cameras[id] = mergeCopies(spans)
	}
}

// mergeCopies sorts spans by start and makes overlapping spans of one
// recorder (copies of the same footage on several servers: a mirror, a
// backfill) one span listing every holder.
func mergeCopies(spans []api.Span) []api.Span {
	sort.SliceStable(spans, func(i, j int) bool { return spans[i].Start.Before(spans[j].Start) })
	var out []api.Span
	last := map[string]int{} // recorded_by → index in out
	for _, sp := range spans {
		if i, ok := last[sp.RecordedBy]; ok && !sp.Start.After(out[i].End) {
			if sp.End.After(out[i].End) {
				out[i].End = sp.End
			}
			for _, h := range sp.HeldBy {
				if !slices.Contains(out[i].HeldBy, h) {
					out[i].HeldBy = append(out[i].HeldBy, h)
				}
			}
			slices.Sort(out[i].HeldBy)
			continue
		}
		last[sp.RecordedBy] = len(out)
		sp.HeldBy = slices.Clone(sp.HeldBy)
		out = append(out, sp)
	}
	return out
}
