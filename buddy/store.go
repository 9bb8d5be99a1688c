package buddy

import (
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Bucket names in cluster.db.
var (
	bucketRecords = []byte("records") // server name → encoded entry
	bucketSecrets = []byte("secrets") // sender name → encoded secretEntry
	bucketMembers = []byte("members") // server name → JSON lastSeen
	// bucketPins holds the node key first seen per server (trust on first
	// use, like SSH known_hosts): server name → 32-byte Ed25519 public key.
	bucketPins = []byte("pins")
	// bucketForgotten holds tombstones of pruned servers: server name →
	// 8-byte big-endian version. A copy of the record no newer than that,
	// pushed by a peer that has not pruned it yet, is not taken back.
	bucketForgotten = []byte("forgotten")
)

// lastSeen is what we remember about a server's membership so that a
// restarted node can still report where a dead server used to live.
type lastSeen struct {
	Addr string `json:"addr"`
	Meta []byte `json:"meta,omitempty"`
	// Gone is when this node saw the server die or leave (or first heard
	// of it while it was gone); zero while alive. Pruning counts from it.
	Gone time.Time `json:"gone,omitzero"`
}

// store persists what peers replicated to us. Secrets are stored as
// received: the file is created 0600 inside StateDir.
type store struct {
	db   *bolt.DB
	path string
}

func openStore(dir string) (*store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create state dir %s: %w", dir, err)
	}
	p := filepath.Join(dir, "cluster.db")
	db, err := bolt.Open(p, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		if errors.Is(err, bolt.ErrTimeout) {
			return nil, fmt.Errorf("open cluster state %s: locked by another process: %w", p, err)
		}
		return nil, fmt.Errorf("open cluster state %s: %w", p, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketRecords, bucketSecrets, bucketMembers, bucketPins, bucketForgotten} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("init cluster state %s: %w", p, err)
	}
	return &store{db: db, path: p}, nil
}

// snapshot is everything the store holds; load returns it and save writes
// (a subset of) it.
type snapshot struct {
	records map[string]entry
	secrets map[string]secretEntry
	members map[string]lastSeen
	// forget names servers whose secrets save deletes: this server is no
	// longer their buddy.
	forget map[string]bool
	pins   map[string][]byte
	unpin  map[string]bool
	// pruned names servers whose record, secrets and membership save
	// deletes, with the tombstone version it keeps.
	pruned    map[string]uint64
	forgotten map[string]uint64 // load only: the tombstones
}

// load reads the whole file. Undecodable values are skipped and reported
// through bad, so one corrupt value never hides the rest of the site.
func (s *store) load() (snap snapshot, bad []string, err error) {
	snap = snapshot{
		records:   map[string]entry{},
		secrets:   map[string]secretEntry{},
		members:   map[string]lastSeen{},
		pins:      map[string][]byte{},
		forgotten: map[string]uint64{},
	}
	err = s.db.View(func(tx *bolt.Tx) error {
		_ = tx.Bucket(bucketRecords).ForEach(func(k, v []byte) error {
			e, err := decodeEntry(v)
			if err != nil || e.Server != string(k) {
				bad = append(bad, "record "+string(k))
				return nil
			}
			snap.records[e.Server] = e
			return nil
		})
		_ = tx.Bucket(bucketSecrets).ForEach(func(k, v []byte) error {
			se, err := decodeSecret(v)
			if err != nil || se.From != string(k) {
				bad = append(bad, "secrets "+string(k))
				return nil
			}
			snap.secrets[se.From] = se
			return nil
		})
		_ = tx.Bucket(bucketPins).ForEach(func(k, v []byte) error {
			if len(v) != ed25519.PublicKeySize {
				bad = append(bad, "pin "+string(k))
				return nil
			}
			snap.pins[string(k)] = bytes.Clone(v)
			return nil
		})
		_ = tx.Bucket(bucketForgotten).ForEach(func(k, v []byte) error {
			if len(v) != 8 {
				bad = append(bad, "forgotten "+string(k))
				return nil
			}
			snap.forgotten[string(k)] = binary.BigEndian.Uint64(v)
			return nil
		})
		return tx.Bucket(bucketMembers).ForEach(func(k, v []byte) error {
			var ls lastSeen
			if err := json.Unmarshal(v, &ls); err != nil {
				bad = append(bad, "member "+string(k))
				return nil
			}
			snap.members[string(k)] = ls
			return nil
		})
	})
	if err != nil {
		return snapshot{}, nil, fmt.Errorf("load cluster state %s: %w", s.path, err)
	}
	return snap, bad, nil
}

// save writes the given values in one transaction.
func (s *store) save(snap snapshot) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		rb := tx.Bucket(bucketRecords)
		for name, e := range snap.records {
			if err := rb.Put([]byte(name), encodeEntry(nil, e)); err != nil {
				return err
			}
		}
		sb := tx.Bucket(bucketSecrets)
		for name := range snap.forget {
			if err := sb.Delete([]byte(name)); err != nil {
				return err
			}
		}
		for name, se := range snap.secrets {
			if err := sb.Put([]byte(name), encodeSecret(nil, se)); err != nil {
				return err
			}
		}
		mb := tx.Bucket(bucketMembers)
		for name, ls := range snap.members {
			v, err := json.Marshal(ls)
			if err != nil {
				return err
			}
			if err := mb.Put([]byte(name), v); err != nil {
				return err
			}
		}
		pb := tx.Bucket(bucketPins)
		for name := range snap.unpin {
			if err := pb.Delete([]byte(name)); err != nil {
				return err
			}
		}
		for name, k := range snap.pins {
			if err := pb.Put([]byte(name), k); err != nil {
				return err
			}
		}
		fb := tx.Bucket(bucketForgotten)
		for name, v := range snap.pruned {
			for _, b := range []*bolt.Bucket{rb, sb, mb} {
				if err := b.Delete([]byte(name)); err != nil {
					return err
				}
			}
			if err := fb.Put([]byte(name), binary.BigEndian.AppendUint64(nil, v)); err != nil {
				return err
			}
		}
		for name := range snap.records {
			// The server is back: its tombstone has served.
			if err := fb.Delete([]byte(name)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("save cluster state %s: %w", s.path, err)
	}
	return nil
}

func (s *store) close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close cluster state %s: %w", s.path, err)
	}
	return nil
}

// ForgetPin clears the node key pinned for server in dir/cluster.db, for
// use while the server that owns dir is stopped (a running server holds
// the file's lock; ask it through its API instead, see Cluster.Forget).
// It reports whether a pin was there.
func ForgetPin(dir, server string) (bool, error) {
	p := filepath.Join(dir, "cluster.db")
	if _, err := os.Stat(p); err != nil {
		return false, fmt.Errorf("forget %s: %w", server, err)
	}
	st, err := openStore(dir)
	if err != nil {
		return false, fmt.Errorf("forget %s: %w", server, err)
	}
	defer st.close()
	had := false
	err = st.db.Update(func(tx *bolt.Tx) error {
		had = tx.Bucket(bucketPins).Get([]byte(server)) != nil
		return tx.Bucket(bucketPins).Delete([]byte(server))
	})
	if err != nil {
		return false, fmt.Errorf("forget %s in %s: %w", server, st.path, err)
	}
	return had, nil
}
