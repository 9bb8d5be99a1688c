package storage

import (
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"

	cameraid "github.com/buddyrec/buddyrec/camera"
)

// IndexUpdate is one change to the index, as a Store without an index of
// its own (Options.Commit: a worker process) hands it to the process that
// owns index.db, which applies it with Apply. It is JSON so that it can
// cross a socket; the fields are the index entry's.
type IndexUpdate struct {
	Camera string `json:"camera"`
	// Delete removes the entry starting at Start (an empty segment).
	Delete bool `json:"delete,omitempty"`
	entry
}

// A Store opened with Options.Commit writes and syncs segment files like
// any other, but has no index: each sync round's updates go to Commit
// instead of a bbolt transaction. Such a store does no recovery and no
// retention (the index owner does both), and its queries answer nothing.
func (s *Store) remote() bool { return s.db == nil }

func toWire(us []indexUpdate) []IndexUpdate {
	out := make([]IndexUpdate, len(us))
	for i, u := range us {
		out[i] = IndexUpdate{Camera: u.camera, Delete: u.delete, entry: u.e}
	}
	return out
}

// Apply commits updates a worker's store sent (see IndexUpdate) in one
// transaction. The worker made the data they describe durable before it
// sent them, so the index still names only durable footage. Applying an
// update twice is harmless: entries are keyed by camera and start.
func (s *Store) Apply(us []IndexUpdate) error {
	if s.remote() {
		return errors.New("apply index updates: this store has no index")
	}
	in := make([]indexUpdate, 0, len(us))
	for _, u := range us {
		if _, err := cameraid.Parse(u.Camera); err != nil {
			return fmt.Errorf("apply index update: %w", err)
		}
		in = append(in, indexUpdate{camera: u.Camera, e: u.entry, delete: u.Delete})
	}
	if err := s.commitUpdates(in); err != nil {
		return fmt.Errorf("apply index updates: %w", err)
	}
	return nil
}

// RecoverCameras runs crash recovery for the given cameras only, while the
// store is open: their open entries are closed at the last complete
// fragment of their files, and their segment files the index lacks are
// indexed. The supervisor calls it when a worker that wrote those cameras
// died: whatever the worker wrote but could not report is in the files,
// and the files are the truth. No Writer of this process may write those
// cameras meanwhile, and no other process either.
func (s *Store) RecoverCameras(cameras []string) error {
	if s.remote() {
		return errors.New("recover cameras: this store has no index")
	}
	only := make(map[string]bool, len(cameras))
	for _, c := range cameras {
		only[c] = true
	}
	return s.recoverSome(func(camera string) bool { return only[camera] })
}

// dbView runs fn on the index; a store without one (see IndexUpdate) has
// nothing to read.
func (s *Store) dbView(fn func(*bolt.Tx) error) error {
	if s.remote() {
		return nil
	}
	return s.db.View(fn)
}

// CutSegments asks every Writer of this store to close its segment at
// its next keyframe, so that retention can delete the footage: what
// retention does when only open segments are left, and what a worker does
// when the supervisor's retention asks it to (Options.OnCut).
func (s *Store) CutSegments() { s.cutGen.Add(1) }

// openRemote returns a store without an index (Options.Commit set).
func openRemote(opts Options) (*Store, error) {
	s := newStore(opts)
	commit := opts.Commit
	s.sync.commit = func(us []indexUpdate) error { return commit(toWire(us)) }
	if err := s.startSyncer(); err != nil {
		return nil, fmt.Errorf("open storage %s: %w", opts.Dir, err)
	}
	return s, nil
}
