// Package certs makes a throwaway certificate authority and one server
// certificate it signs, as PEM files, for the lab's TLS regions and for
// tests that run redis-server with TLS. Nothing here is for production: the
// CA's key is written next to the certificates and thrown away with them.
//
//	Write(dir, 127.0.0.1) ─▶ dir/ca.pem          the CA: what clients trust (--redis-ca-file, ca_file)
//	                         dir/server.pem      the server's certificate, IP SANs as asked, signed by the CA
//	                         dir/server-key.pem  its key (mode 0600)
//
// The certificate must name the address clients dial. In the lab they dial
// a Toxiproxy proxy on 127.0.0.1, which forwards TCP: TLS passes through it
// untouched, and a certificate for 127.0.0.1 holds for every port.
package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// Validity is how long a certificate Write makes is valid, from an hour
// before it was made (clock skew): long enough for any lab run.
const Validity = 30 * 24 * time.Hour

// Files are the PEM files Write made.
type Files struct {
	CA   string // the CA certificate: what a client trusts
	Cert string // the server certificate, signed by the CA
	Key  string // the server certificate's private key (mode 0600)
}

// Write creates dir (mode 0700) and writes a new CA and a server
// certificate valid for ips (at least one) and the name localhost. Each
// call makes new keys.
func Write(dir string, ips ...net.IP) (Files, error) {
	if len(ips) == 0 {
		return Files{}, errors.New("certs: no IP address for the server certificate: give the address clients dial, e.g. 127.0.0.1")
	}
	for _, ip := range ips {
		if ip == nil {
			return Files{}, errors.New("certs: a nil IP address for the server certificate")
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return Files{}, fmt.Errorf("certs: %w", err)
	}
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return Files{}, fmt.Errorf("certs: CA key: %w", err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "geolab throwaway CA", Organization: []string{"geolab lab"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(Validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return Files{}, fmt.Errorf("certs: CA certificate: %w", err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return Files{}, fmt.Errorf("certs: CA certificate: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return Files{}, fmt.Errorf("certs: server key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: ips[0].String(), Organization: []string{"geolab lab"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(Validity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  ips,
		DNSNames:     []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return Files{}, fmt.Errorf("certs: server certificate: %w", err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return Files{}, fmt.Errorf("certs: server key: %w", err)
	}
	f := Files{CA: filepath.Join(dir, "ca.pem"), Cert: filepath.Join(dir, "server.pem"), Key: filepath.Join(dir, "server-key.pem")}
	for _, w := range []struct {
		path, typ string
		der       []byte
		mode      os.FileMode
	}{
		{f.CA, "CERTIFICATE", caDER, 0o644},
		{f.Cert, "CERTIFICATE", der, 0o644},
		{f.Key, "EC PRIVATE KEY", keyDER, 0o600},
	} {
		b := pem.EncodeToMemory(&pem.Block{Type: w.typ, Bytes: w.der})
		if err := os.WriteFile(w.path, b, w.mode); err != nil {
			return Files{}, fmt.Errorf("certs: %w", err)
		}
	}
	return f, nil
}

// serial is a random 128-bit serial number.
func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		panic("certs: crypto/rand failed: " + err.Error())
	}
	return n
}
