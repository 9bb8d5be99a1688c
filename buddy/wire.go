package buddy

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Message types, the first byte of every user message buddy sends through
// memberlist (broadcasts and SendReliable alike).
const (
	msgRecord  byte = 1 // one entry (a server's record, possibly a leave marker)
	msgSecrets byte = 2 // a server's secrets, sent only to its buddies
)

// stateVersion prefixes the push/pull state so the format can evolve.
const stateVersion byte = 1

// Limits that keep a malformed or hostile message from making us allocate
// without bound; a real message is far below them.
const (
	maxNameLen  = 256
	maxBodyLen  = 16 << 20
	maxEntries  = 1 << 16
	flagLeft    = 1 << 0
	flagBuddies = 1 << 1 // a buddy list follows the body
	maxBuddies  = 1 << 10
	maxVarintSz = binary.MaxVarintLen64
)

var errShort = errors.New("truncated message")

// entry is a server's record as buddy stores and replicates it. Left marks
// the version a server published while closing, so that peers (and peers
// restarted later) can tell "left" from "dead".
type entry struct {
	Server  string
	Version uint64
	Body    []byte
	Left    bool
	// Buddies are the servers Server hands its secrets to, as of this
	// version; a server not listed forgets the secrets it holds from
	// Server. nil means not stated (older encodings), which revokes nothing.
	Buddies []string
}

// secretEntry is what one server sent us as its buddy.
type secretEntry struct {
	From    string
	Version uint64
	Body    []byte
}

func appendBytes(b, v []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

func encodeEntry(b []byte, e entry) []byte {
	var flags byte
	if e.Left {
		flags |= flagLeft
	}
	if e.Buddies != nil {
		flags |= flagBuddies
	}
	b = append(b, flags)
	b = binary.AppendUvarint(b, e.Version)
	b = appendBytes(b, []byte(e.Server))
	b = appendBytes(b, e.Body)
	if e.Buddies != nil {
		b = binary.AppendUvarint(b, uint64(len(e.Buddies)))
		for _, name := range e.Buddies {
			b = appendBytes(b, []byte(name))
		}
	}
	return b
}

func encodeSecret(b []byte, s secretEntry) []byte {
	b = binary.AppendUvarint(b, s.Version)
	b = appendBytes(b, []byte(s.From))
	return appendBytes(b, s.Body)
}

// decoder reads the encodings above; every read is bounds-checked so that
// garbage yields an error, never a panic.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) byte() byte {
	if d.err != nil {
		return 0
	}
	if len(d.b) < 1 {
		d.err = errShort
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errShort
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) bytes(limit int) []byte {
	n := d.uvarint()
	if d.err != nil {
		return nil
	}
	if n > uint64(limit) {
		d.err = fmt.Errorf("field of %d bytes exceeds limit %d", n, limit)
		return nil
	}
	if uint64(len(d.b)) < n {
		d.err = errShort
		return nil
	}
	v := make([]byte, n)
	copy(v, d.b[:n])
	d.b = d.b[n:]
	return v
}

func (d *decoder) name() string {
	s := d.bytes(maxNameLen)
	if d.err == nil && len(s) == 0 {
		d.err = errors.New("empty server name")
	}
	return string(s)
}

func (d *decoder) entry() entry {
	var e entry
	flags := d.byte()
	e.Left = flags&flagLeft != 0
	e.Version = d.uvarint()
	e.Server = d.name()
	e.Body = d.bytes(maxBodyLen)
	if flags&flagBuddies != 0 {
		n := d.uvarint()
		if d.err == nil && n > maxBuddies {
			d.err = fmt.Errorf("%d buddies exceeds limit %d", n, maxBuddies)
		}
		e.Buddies = []string{}
		for i := uint64(0); i < n && d.err == nil; i++ {
			e.Buddies = append(e.Buddies, d.name())
		}
	}
	return e
}

func decodeEntry(b []byte) (entry, error) {
	d := decoder{b: b}
	e := d.entry()
	if d.err != nil {
		return entry{}, fmt.Errorf("decode record: %w", d.err)
	}
	return e, nil
}

func decodeSecret(b []byte) (secretEntry, error) {
	d := decoder{b: b}
	var s secretEntry
	s.Version = d.uvarint()
	s.From = d.name()
	s.Body = d.bytes(maxBodyLen)
	if d.err != nil {
		return secretEntry{}, fmt.Errorf("decode secrets: %w", d.err)
	}
	return s, nil
}

// encodeState is the push/pull payload: every record this node knows,
// including records of dead and departed servers.
func encodeState(entries []entry) []byte {
	size := 1 + maxVarintSz
	for _, e := range entries {
		size += 1 + 4*maxVarintSz + len(e.Server) + len(e.Body)
		for _, name := range e.Buddies {
			size += maxVarintSz + len(name)
		}
	}
	// Sized once: a site's state is every server's inventory, and growing
	// it by appends was a quarter of a busy member's CPU (bench planner).
	b := make([]byte, 0, size)
	b = append(b, stateVersion)
	b = binary.AppendUvarint(b, uint64(len(entries)))
	for _, e := range entries {
		b = encodeEntry(b, e)
	}
	return b
}

func decodeState(b []byte) ([]entry, error) {
	d := decoder{b: b}
	if v := d.byte(); d.err == nil && v != stateVersion {
		return nil, fmt.Errorf("decode state: unknown version %d", v)
	}
	n := d.uvarint()
	if d.err == nil && n > maxEntries {
		return nil, fmt.Errorf("decode state: %d entries exceeds limit %d", n, maxEntries)
	}
	var out []entry
	for i := uint64(0); i < n && d.err == nil; i++ {
		e := d.entry()
		if d.err == nil {
			out = append(out, e)
		}
	}
	if d.err != nil {
		return nil, fmt.Errorf("decode state: %w", d.err)
	}
	return out, nil
}
