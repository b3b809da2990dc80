package bustest

import (
	"bytes"
	"net"
	"sync"
	"testing"
	"time"
)

// proxyMaxSent bounds the client bytes a Proxy keeps while it waits to fall silent.
const proxyMaxSent = 1 << 20

// Proxy forwards TCP connections to a NATS server. It can make the server fall silent the way a
// crashed one looks to its clients before they notice: once silent, every byte the server sends
// is dropped, so a request in flight never gets its reply; Cut then closes the connections, and
// the clients reconnect through the proxy.
type Proxy struct {
	t      testing.TB
	target string
	ln     net.Listener
	wg     sync.WaitGroup

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	armed  []byte        // SilenceAfter's trigger
	sent   []byte        // client bytes forwarded since SilenceAfter
	silent chan struct{} // closed when the server falls silent; nil when it is not
}

// NewProxy listens on a free local port and forwards every connection to target (host:port)
// until the test ends.
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("proxy listen: %v", err)
	}
	p := &Proxy{t: t, target: target, ln: ln, conns: make(map[net.Conn]struct{})}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() {
		_ = ln.Close()
		p.Cut()
		p.wg.Wait()
	})
	return p
}

// URL is the address clients connect to.
func (p *Proxy) URL() string { return "nats://" + p.ln.Addr().String() }

// SilenceAfter makes the server fall silent as soon as a client sends bytes containing s (a
// protocol line such as "PUB $KV.bucket.key"): those bytes reach the server, but its answer, and
// everything it sends after, is dropped until Cut. The returned channel is closed then.
func (p *Proxy) SilenceAfter(s string) <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.armed, p.sent, p.silent = []byte(s), p.sent[:0], make(chan struct{})
	return p.silent
}

// Cut closes every connection, dropping what was in flight, and ends a Silence.
func (p *Proxy) Cut() {
	p.mu.Lock()
	for c := range p.conns {
		_ = c.Close()
	}
	clear(p.conns)
	p.armed, p.sent, p.silent = nil, nil, nil
	p.mu.Unlock()
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		server, err := net.DialTimeout("tcp", p.target, 5*time.Second)
		if err != nil {
			// The server is down: the client sees its connection fail and retries.
			_ = client.Close()
			continue
		}
		p.mu.Lock()
		p.conns[client], p.conns[server] = struct{}{}, struct{}{}
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(server, client, true)
		go p.pipe(client, server, false)
	}
}

// pipe copies from src to dst until either fails; fromClient tells the direction.
func (p *Proxy) pipe(dst, src net.Conn, fromClient bool) {
	defer p.wg.Done()
	defer func() {
		_ = dst.Close()
		_ = src.Close()
		p.mu.Lock()
		delete(p.conns, dst)
		delete(p.conns, src)
		p.mu.Unlock()
	}()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			if fromClient && p.armed != nil {
				// Silent before the trigger is forwarded, so its answer is surely dropped.
				p.sent = append(p.sent, buf[:n]...)
				if bytes.Contains(p.sent, p.armed) {
					p.armed, p.sent = nil, nil
					close(p.silent)
				} else if len(p.sent) > proxyMaxSent {
					p.sent = append(p.sent[:0], p.sent[len(p.sent)-len(p.armed):]...)
				}
			}
			silent := p.silent != nil && p.armed == nil
			p.mu.Unlock()
			if !silent || fromClient {
				if _, werr := dst.Write(buf[:n]); werr != nil {
					return
				}
			}
		}
		if err != nil {
			return // the peer went away or the proxy cut: close both sides
		}
	}
}
