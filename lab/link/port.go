package link

import "github.com/geolab/geolab/internal/freeport"

// FreeListen returns a free loopback address outside the kernel's ephemeral
// port range (freeport.Loopback): a cut proxy has closed its listener, and
// its heal binds the same port again, which an ephemeral port could have
// lost to another connection meanwhile.
func FreeListen() (string, error) { return freeport.Loopback() }
