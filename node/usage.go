package node

import (
	"sync"
	"time"

	"github.com/buddyrec/buddyrec/api"
	"github.com/buddyrec/buddyrec/storage"
)

// usageEvery is the least time between two walks of the index for the
// storage figures; a walk that took long spaces the next one further
// (usageCost), so the figures never cost more than about 5 % of a core.
const (
	usageEvery = time.Minute
	usageCost  = 20
)

// usageCache keeps the last storage.Usage so that the status page and the
// API never walk the index themselves: a month of one-minute segments of
// 250 cameras is ten million entries.
type usageCache struct {
	mu      sync.Mutex
	u       storage.Usage
	at      time.Time
	took    time.Duration
	running bool
}

// storageUsage returns the cached usage, refreshing it in the background
// once stale. The first call walks the index itself, so the figures are
// there from the first page on.
func (n *Node) storageUsage() storage.Usage {
	c := &n.usage
	c.mu.Lock()
	if c.at.IsZero() {
		c.mu.Unlock()
		n.refreshUsage()
		c.mu.Lock()
	} else if !c.running && time.Since(c.at) > max(usageEvery, usageCost*c.took) {
		c.running = true
		go n.refreshUsage()
	}
	u := c.u
	c.mu.Unlock()
	return u
}

func (n *Node) refreshUsage() {
	start := time.Now()
	u, err := n.store.Usage()
	c := &n.usage
	c.mu.Lock()
	defer c.mu.Unlock()
	c.running = false
	c.at, c.took = time.Now(), time.Since(start)
	if err != nil {
		n.log.Warn("storage figures", "err", err)
		return
	}
	c.u = u
}

// currentLoad is this server's load measured now, with the figures the
// gossiped record leaves out or rounds: exact resident memory and
// buddyrec's own disk use.
func (n *Node) currentLoad() api.Load {
	l := n.measureLoad(time.Now())
	l.MemoryBytes = residentBytes()
	used, total := diskUsage(n.cfg.DataDir)
	l.DiskUsed, l.DiskTotal = used, total
	u := n.storageUsage()
	l.RecordingBytes = uint64(u.SegmentBytes + u.IndexBytes)
	return l
}

// footage is, per camera, what this server's storage holds.
func (n *Node) footage() map[string]api.Footage {
	u := n.storageUsage()
	out := make(map[string]api.Footage, len(u.Cameras))
	for id, cu := range u.Cameras {
		out[id] = api.Footage{Bytes: uint64(cu.Bytes), Oldest: cu.Oldest}
	}
	return out
}
