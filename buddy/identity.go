package buddy

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/buddyrec/buddyrec/internal/atomicfile"
)

// NodeKeyFile is the name of a server's signing key inside its state
// directory (data_dir). It is made at first start and never leaves the
// server; a server whose data_dir is replaced starts with a new key, and
// peers that pinned the old one refuse it until `buddyrec forget` clears
// the pin.
const NodeKeyFile = "node.key"

// LoadOrCreateNodeKey reads dir/node.key (PKCS#8 PEM, as openssl writes
// Ed25519 keys), creating it with mode 0600 when it does not exist.
func LoadOrCreateNodeKey(dir string) (ed25519.PrivateKey, error) {
	p := filepath.Join(dir, NodeKeyFile)
	b, err := os.ReadFile(p)
	switch {
	case err == nil:
		blk, _ := pem.Decode(b)
		if blk == nil || blk.Type != "PRIVATE KEY" {
			return nil, fmt.Errorf("node key %s: not a PEM private key", p)
		}
		k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("node key %s: %w", p, err)
		}
		ek, ok := k.(ed25519.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("node key %s: not an Ed25519 key", p)
		}
		return ek, nil
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("node key: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("node key: create %s: %w", dir, err)
	}
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("node key: generate: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, fmt.Errorf("node key: encode: %w", err)
	}
	// Crash-safe, so that a crash never leaves half a key (which would
	// make the next start refuse to run).
	if err := atomicfile.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return nil, fmt.Errorf("node key: %w", err)
	}
	return k, nil
}

// Fingerprint names a public key the way operators compare them:
// "SHA256:" and the unpadded base64 of its SHA-256, as ssh-keygen -l does.
func Fingerprint(pub []byte) string {
	sum := sha256.Sum256(pub)
	return "SHA256:" + base64.RawStdEncoding.EncodeToString(sum[:])
}
