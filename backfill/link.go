package backfill

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// UnknownLinkMbps is the automatic limit where the speed of the link that
// reaches a peer cannot be read (a virtual NIC that reports none): a fifth
// of a gigabit link, the most common server link.
const UnknownLinkMbps = 200.0

// Link is the network interface through which a peer is reached, as the
// automatic rate limit sees it.
type Link struct {
	// Interface is its name, e.g. "eth0"; empty when not found.
	Interface string
	// Loopback is set when the peer is this machine.
	Loopback bool
	// SpeedMbps is what the interface reports (/sys/class/net/IF/speed);
	// 0 when it reports none.
	SpeedMbps float64
}

// AutoMbps is the automatic limit for copying over l, in Mbit/s, 0
// meaning unlimited. A copy shares the home's link with its cameras'
// streams and its viewers, and a camera's RTP over UDP is lost, not
// delayed, when the link is full: so the copy takes at most half of what
// the link carries. Over loopback (a peer on the same machine) there is
// no link to share, only the disk, and the copy already runs at the
// lowest CPU and I/O priority.
func AutoMbps(l Link) float64 {
	switch {
	case l.Loopback:
		return 0
	case l.SpeedMbps > 0:
		return l.SpeedMbps / 2
	default:
		return UnknownLinkMbps
	}
}

// String says how the limit was chosen, for the page and the API.
func (l Link) String() string {
	switch {
	case l.Loopback:
		return "loopback"
	case l.Interface == "":
		return "link not found"
	case l.SpeedMbps > 0:
		return fmt.Sprintf("%s at %g Mbit/s", l.Interface, l.SpeedMbps)
	default:
		return l.Interface + " reports no speed"
	}
}

// LinkTo finds the interface through which this machine reaches host (an
// IP or name, with or without a port): the kernel's route, asked by
// connecting a UDP socket (which sends nothing), then the interface that
// holds the chosen local address. sysClassNet is where interface speeds
// are read ("/sys/class/net"; tests point it elsewhere).
func LinkTo(host, sysClassNet string) (Link, error) {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	c, err := net.Dial("udp", net.JoinHostPort(host, "9"))
	if err != nil {
		return Link{}, fmt.Errorf("route to %s: %w", host, err)
	}
	local := c.LocalAddr().(*net.UDPAddr).IP
	c.Close()
	if ra, ok := c.RemoteAddr().(*net.UDPAddr); local.IsLoopback() || ok && ra.IP.Equal(local) {
		// a peer on this machine, even at one of its other addresses
		// (routed through lo)
		return Link{Loopback: true, Interface: "lo"}, nil
	}
	ifs, err := net.Interfaces()
	if err != nil {
		return Link{}, fmt.Errorf("list interfaces: %w", err)
	}
	for _, ifc := range ifs {
		addrs, err := ifc.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && n.IP.Equal(local) {
				l := Link{Interface: ifc.Name, Loopback: ifc.Flags&net.FlagLoopback != 0}
				l.SpeedMbps = readSpeed(sysClassNet, ifc.Name)
				return l, nil
			}
		}
	}
	return Link{}, nil
}

// readSpeed reads an interface's speed in Mbit/s; 0 when it has none
// (the kernel answers -1 or an error for virtual and down interfaces).
func readSpeed(sysClassNet, ifc string) float64 {
	b, err := os.ReadFile(filepath.Join(sysClassNet, ifc, "speed"))
	if err != nil {
		return 0
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(string(b)), 64)
	if err != nil || v <= 0 {
		return 0
	}
	return v
}
