// Package httpserve holds the timeouts every geolab HTTP server sets: the
// gateway's, the bridge's, the lab's control API and the resolver. A server
// without them holds a connection whose client sends half a header, or an
// idle keep-alive connection, for ever.
package httpserve

import (
	"net/http"
	"time"
)

const (
	// ReadHeaderTimeout bounds the reading of a request's header.
	ReadHeaderTimeout = 5 * time.Second
	// IdleTimeout is how long an idle keep-alive connection is kept before
	// the server closes it: above the 60 s idle timeout of common load
	// balancers, so that it is the balancer that closes first.
	IdleTimeout = 2 * time.Minute
)

// New returns a server of h with ReadHeaderTimeout and IdleTimeout set.
func New(h http.Handler) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: ReadHeaderTimeout, IdleTimeout: IdleTimeout}
}
