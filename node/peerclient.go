package node

import (
	"crypto/tls"
	"net/http"
	"time"

	"github.com/buddyrec/buddyrec/config"
)

// peerResponseTimeout bounds how long a peer may take to start answering.
// There is no overall timeout: an export streams segments from peers for as
// long as the footage lasts. Short calls (the status page, acks) bound
// themselves with a context.
const peerResponseTimeout = 10 * time.Second

// newPeerClient builds the one client this server uses to call its peers
// (status page, forwarded acks, exports). With a ca_file, peers' HTTPS
// certificates are checked against the system store plus that file's
// certificates, since a site usually signs its servers with its own CA;
// without one, the system store alone, as Go does by default.
func newPeerClient(caFile string) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.ResponseHeaderTimeout = peerResponseTimeout
	roots, err := config.SiteRoots(caFile)
	if err != nil {
		return nil, err
	}
	if roots != nil {
		tr.TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	}
	return &http.Client{Transport: tr}, nil
}
