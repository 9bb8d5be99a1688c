package buddy

import (
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
)

// Message types, the first byte of every user message buddy sends through
// memberlist (broadcasts and SendReliable alike).
const (
	msgRecord  byte = 1 // one entry (a server's record, possibly a leave marker)
	msgSecrets byte = 2 // a server's secrets, sent only to its buddies
	// msgNameConflict tells a server that another claims its name.
	msgNameConflict byte = 3
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
	flagSigned  = 1 << 2 // the owner's public key and signature follow
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
	// Key and Sig are the owner's Ed25519 public key and its signature of
	// everything above (see signedEntry). Entries without them come only
	// from cluster.db files written before records were signed; peers'
	// unsigned entries are refused.
	Key []byte
	Sig []byte
}

// secretEntry is what one server sent us as its buddy.
type secretEntry struct {
	From    string
	Version uint64
	Body    []byte
	Key     []byte // sender's Ed25519 public key, as for entry
	Sig     []byte
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
	if e.Sig != nil {
		flags |= flagSigned
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
	if e.Sig != nil {
		b = appendBytes(b, e.Key)
		b = appendBytes(b, e.Sig)
	}
	return b
}

// The signed bytes: a context string, so that a signature over a record
// can never be passed off as one over secrets (or anything else), then
// the canonical encoding without key and signature.
const (
	sigContextRecord  = "buddyrec record v1\x00"
	sigContextSecrets = "buddyrec secrets v1\x00"
)

func signedEntry(e entry) []byte {
	e.Key, e.Sig = nil, nil
	return encodeEntry([]byte(sigContextRecord), e)
}

func signedSecret(s secretEntry) []byte {
	s.Key, s.Sig = nil, nil
	return encodeSecret([]byte(sigContextSecrets), s)
}

func encodeSecret(b []byte, s secretEntry) []byte {
	b = binary.AppendUvarint(b, s.Version)
	b = appendBytes(b, []byte(s.From))
	b = appendBytes(b, s.Body)
	if s.Sig != nil {
		b = appendBytes(b, s.Key)
		b = appendBytes(b, s.Sig)
	}
	return b
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
	if flags&flagSigned != 0 {
		e.Key, e.Sig = d.signature()
	}
	return e
}

// signature reads a public key and a signature, checking their sizes.
func (d *decoder) signature() (key, sig []byte) {
	key = d.bytes(ed25519.PublicKeySize)
	sig = d.bytes(ed25519.SignatureSize)
	if d.err == nil && (len(key) != ed25519.PublicKeySize || len(sig) != ed25519.SignatureSize) {
		d.err = fmt.Errorf("signature: key of %d bytes, signature of %d", len(key), len(sig))
	}
	return key, sig
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
	if d.err == nil && len(d.b) > 0 {
		s.Key, s.Sig = d.signature()
	}
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
		size += 1 + 6*maxVarintSz + len(e.Server) + len(e.Body) + len(e.Key) + len(e.Sig)
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

// nameConflict is what a server that saw two servers claim one name tells
// the one it knew first.
type nameConflict struct {
	Name string
	Addr string // the claimant's gossip address
	Key  []byte // the claimant's node key, from its meta (may be empty)
}

func encodeNameConflict(b []byte, nc nameConflict) []byte {
	b = appendBytes(b, []byte(nc.Name))
	b = appendBytes(b, []byte(nc.Addr))
	return appendBytes(b, nc.Key)
}

func decodeNameConflict(b []byte) (nameConflict, error) {
	d := decoder{b: b}
	nc := nameConflict{Name: d.name(), Addr: string(d.bytes(maxNameLen)), Key: d.bytes(ed25519.PublicKeySize)}
	if d.err != nil {
		return nameConflict{}, fmt.Errorf("decode name conflict: %w", d.err)
	}
	return nc, nil
}
