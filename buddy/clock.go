package buddy

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/hashicorp/memberlist"
)

// Clocks. Footage recorded by several servers is joined by their clocks,
// so each server carries its time in the acks of memberlist's probes
// (AckPayload), and the prober compares: a peer's offset is its time at
// the ack minus ours half a round trip earlier, an error of at most
// rtt/2. A sample counts only when rtt/2 is under a fifth of the limit;
// skewSamples samples in a row beyond the limit raise AlarmClockSkew,
// and as many within it clear it, so one delayed ack neither raises nor
// clears anything.
const skewSamples = 3

// clockState is what this server measured of one peer's clock.
type clockState struct {
	offset time.Duration // last sample
	over   int           // consecutive samples beyond the limit
	under  int           // consecutive samples within it
	skewed bool          // alarm raised and not cleared
}

// AckPayload carries our clock (Unix nanoseconds) to the prober.
func (d *mlDelegate) AckPayload() []byte {
	return binary.BigEndian.AppendUint64(nil, uint64(d.c.o.Now().UnixNano()))
}

// NotifyPingComplete clears a suspicion when the node answers our probe,
// and measures its clock.
func (d *mlDelegate) NotifyPingComplete(other *memberlist.Node, rtt time.Duration, payload []byte) {
	c := d.c
	now := c.o.Now()
	c.mu.Lock()
	m, ok := c.members[other.Name]
	cleared := ok && m.state == StateSuspect
	if cleared {
		m.state, m.since = StateAlive, time.Now()
	}
	c.mu.Unlock()
	if cleared {
		c.notify()
	}
	if len(payload) == 8 && other.Name != c.o.Name {
		peer := time.Unix(0, int64(binary.BigEndian.Uint64(payload)))
		c.clockSample(other.Name, other.Address(), peer.Sub(now.Add(-rtt/2)), rtt)
	}
}

func (c *Cluster) clockSample(name, addr string, offset, rtt time.Duration) {
	limit := c.o.ClockSkewLimit
	if rtt/2 > limit/5 {
		return // too imprecise to judge either way
	}
	c.mu.Lock()
	cs, ok := c.clocks[name]
	if !ok {
		cs = &clockState{}
		c.clocks[name] = cs
	}
	cs.offset = offset
	var raise, clear bool
	if offset > limit || offset < -limit {
		cs.over, cs.under = cs.over+1, 0
		if !cs.skewed && cs.over >= skewSamples {
			cs.skewed, raise = true, true
		}
	} else {
		cs.under, cs.over = cs.under+1, 0
		if cs.skewed && cs.under >= skewSamples {
			cs.skewed, clear = false, true
		}
	}
	c.mu.Unlock()
	switch {
	case raise:
		detail := fmt.Sprintf("the clock of %s (%s) is %s from this server's (limit %s): footage joined across servers will not line up; run NTP (chrony) on every server",
			name, addr, fmtOffset(offset), limit)
		c.log.Warn(detail, "peer", name, "offset", offset)
		c.alarm(Alarm{Kind: AlarmClockSkew, Server: name, Addr: addr, Offset: offset, Detail: detail})
	case clear:
		detail := fmt.Sprintf("the clock of %s (%s) is back within %s of this server's (%s)", name, addr, limit, fmtOffset(offset))
		c.log.Info(detail, "peer", name, "offset", offset)
		c.alarm(Alarm{Kind: AlarmClockSkew, Server: name, Addr: addr, Offset: offset, Detail: detail, Cleared: true})
	}
}

func fmtOffset(d time.Duration) string {
	if d >= 0 {
		return "+" + d.Round(time.Millisecond).String() + " ahead"
	}
	return (-d).Round(time.Millisecond).String() + " behind"
}

// ClockOffset is the last measured offset of server's clock from ours
// (its time minus ours), and whether one was measured.
func (c *Cluster) ClockOffset(server string) (time.Duration, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cs, ok := c.clocks[server]
	if !ok {
		return 0, false
	}
	return cs.offset, true
}
