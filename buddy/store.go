package buddy

import (
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
)

// lastSeen is what we remember about a server's membership so that a
// restarted node can still report where a dead server used to live.
type lastSeen struct {
	Addr string `json:"addr"`
	Meta []byte `json:"meta,omitempty"`
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
		for _, b := range [][]byte{bucketRecords, bucketSecrets, bucketMembers} {
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
}

// load reads the whole file. Undecodable values are skipped and reported
// through bad, so one corrupt value never hides the rest of the site.
func (s *store) load() (snap snapshot, bad []string, err error) {
	snap = snapshot{
		records: map[string]entry{},
		secrets: map[string]secretEntry{},
		members: map[string]lastSeen{},
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
