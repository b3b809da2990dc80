package bus_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"
	"go.uber.org/zap"

	"github.com/ork-go/ork/pkg/bus"
)

// testPKI is a CA with a server certificate for 127.0.0.1 and a client certificate, as PEM files.
type testPKI struct {
	dir                           string
	caFile, serverCert, serverKey string
	clientCert, clientKey         string
	pool                          *x509.CertPool
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	p := &testPKI{dir: t.TempDir()}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ork test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	p.pool = x509.NewCertPool()
	p.pool.AddCert(ca)
	p.caFile = p.write(t, "ca.pem", "CERTIFICATE", caDER)
	leaf := func(name string, serial int64, usage x509.ExtKeyUsage) (string, string) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			ExtKeyUsage: []x509.ExtKeyUsage{usage}, KeyUsage: x509.KeyUsageDigitalSignature,
			IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		keyDER, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		return p.write(t, name+".pem", "CERTIFICATE", der), p.write(t, name+"-key.pem", "EC PRIVATE KEY", keyDER)
	}
	p.serverCert, p.serverKey = leaf("server", 2, x509.ExtKeyUsageServerAuth)
	p.clientCert, p.clientKey = leaf("client", 3, x509.ExtKeyUsageClientAuth)
	return p
}

func (p *testPKI) write(t *testing.T, name, typ string, der []byte) string {
	t.Helper()
	path := filepath.Join(p.dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// startTLSServer starts an in-process nats-server that requires TLS, and client certificates when
// mutual is set.
func startTLSServer(t *testing.T, p *testPKI, mutual bool) string {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(p.serverCert, p.serverKey)
	if err != nil {
		t.Fatal(err)
	}
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if mutual {
		tc.ClientCAs, tc.ClientAuth = p.pool, tls.RequireAndVerifyClientCert
	}
	s, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true,
		TLSConfig: tc, TLS: true, TLSVerify: mutual, TLSTimeout: 2,
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	if !s.ReadyForConnections(5 * time.Second) {
		t.Fatal("nats-server with TLS did not start")
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	return "tls://" + s.Addr().String()
}

// TestTLS connects over TLS with the CA of --nats-tls-ca, with a client certificate where the
// server requires one, and checks the refusals: no CA (an unknown issuer), no client certificate.
func TestTLS(t *testing.T) {
	t.Parallel()
	p := newTestPKI(t)
	connect := func(url string, a bus.Auth) error {
		b, err := bus.Connect(bus.Config{URL: url, Auth: a}, zap.NewNop())
		if err == nil {
			b.Close()
		}
		return err
	}

	t.Run("server certificate", func(t *testing.T) {
		url := startTLSServer(t, p, false)
		if err := connect(url, bus.Auth{TLSCA: p.caFile}); err != nil {
			t.Fatalf("with the CA: %v", err)
		}
		err := connect(url, bus.Auth{})
		var unknown x509.UnknownAuthorityError
		if !errors.As(err, &unknown) || !strings.Contains(err.Error(), url) {
			t.Errorf("without the CA: %v, want an unknown-authority error naming %s", err, url)
		}
	})

	t.Run("mutual", func(t *testing.T) {
		url := startTLSServer(t, p, true)
		if err := connect(url, bus.Auth{TLSCA: p.caFile, TLSCert: p.clientCert, TLSKey: p.clientKey}); err != nil {
			t.Fatalf("with a client certificate: %v", err)
		}
		if err := connect(url, bus.Auth{TLSCA: p.caFile}); err == nil {
			t.Error("without a client certificate: connected")
		}
	})

	t.Run("bad settings are named before connecting", func(t *testing.T) {
		for name, a := range map[string]bus.Auth{
			"a certificate without its key": {TLSCert: p.clientCert},
			"a CA file that does not exist": {TLSCA: filepath.Join(p.dir, "missing.pem")},
			"two methods":                   {User: "a", Token: "b"},
			"a password without a user":     {Password: "x"},
			"an inbox prefix with a dot":    {InboxPrefix: "_INBOX.me"},
		} {
			if err := a.Validate(); err == nil {
				t.Errorf("%s: accepted", name)
			}
			if err := connect("nats://127.0.0.1:1", a); err == nil || strings.Contains(err.Error(), "connecting") {
				t.Errorf("%s: %v, want the setting named, not a connection attempt", name, err)
			}
		}
	})
}

// TestTokenAndNKey connects with a token and with an NKey seed file, and is refused with wrong ones.
func TestTokenAndNKey(t *testing.T) {
	t.Parallel()
	user, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	seed, _ := user.Seed()
	pub, _ := user.PublicKey()
	seedFile := filepath.Join(t.TempDir(), "user.nk")
	if err := os.WriteFile(seedFile, seed, 0o600); err != nil {
		t.Fatal(err)
	}
	other, _ := nkeys.CreateUser()
	otherSeed, _ := other.Seed()
	otherFile := filepath.Join(t.TempDir(), "other.nk")
	if err := os.WriteFile(otherFile, otherSeed, 0o600); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		opts      server.Options
		good, bad bus.Auth
	}{
		"token": {server.Options{Authorization: "s3cret"}, bus.Auth{Token: "s3cret"}, bus.Auth{Token: "guess"}},
		"nkey":  {server.Options{Nkeys: []*server.NkeyUser{{Nkey: pub}}}, bus.Auth{NKeyFile: seedFile}, bus.Auth{NKeyFile: otherFile}},
	} {
		o := tc.opts
		o.Host, o.Port, o.NoLog, o.NoSigs = "127.0.0.1", -1, true, true
		s, err := server.NewServer(&o)
		if err != nil {
			t.Fatal(err)
		}
		s.Start()
		if !s.ReadyForConnections(5 * time.Second) {
			t.Fatal("nats-server did not start")
		}
		url := s.ClientURL()
		b, err := bus.Connect(bus.Config{URL: url, Auth: tc.good}, zap.NewNop())
		if err != nil {
			t.Errorf("%s: %v", name, err)
		} else {
			b.Close()
		}
		_, err = bus.Connect(bus.Config{URL: url, Auth: tc.bad}, zap.NewNop())
		if err == nil || !strings.Contains(err.Error(), "refused the credentials given") {
			t.Errorf("%s, wrong one: %v, want the credentials named as refused", name, err)
		}
		s.Shutdown()
		s.WaitForShutdown()
	}
}
