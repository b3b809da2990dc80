package processes

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"time"
)

// Defaults of NATSConfig.
const (
	NATSHostDefault         = "127.0.0.1"
	NATSStartTimeoutDefault = 30 * time.Second
)

// NATSConfig configures a nats-server process.
type NATSConfig struct {
	// Binary is the nats-server executable.
	Binary string
	// Dir holds the derived configuration, the store, the ports file and the log.
	Dir string
	// Base is the configuration to derive from: the text of deploy/nats-server.conf.
	Base []byte
	// Host is the address to listen on, for clients and monitoring.
	Host string
	// Port and MonitorPort are the ports to listen on; 0 means a free one chosen by the server.
	Port        int
	MonitorPort int
	// SyncInterval replaces the base's jetstream sync_interval when set ("always" for durability).
	SyncInterval string
	// StartTimeout bounds the wait for the server to become healthy.
	StartTimeout time.Duration
	// Cluster, when set, makes the server one node of a cluster.
	Cluster *NATSClusterNode
	// Secrets are the role passwords the shipped configuration reads from the environment; fresh
	// random ones when nil.
	Secrets Secrets
}

// WithDefaults returns the config with zero fields set to their defaults.
func (c NATSConfig) WithDefaults() NATSConfig {
	if c.Host == "" {
		c.Host = NATSHostDefault
	}
	if c.StartTimeout == 0 {
		c.StartTimeout = NATSStartTimeoutDefault
	}
	return c
}

// Validate names the first bad field.
func (c NATSConfig) Validate() error {
	switch {
	case c.Binary == "":
		return errors.New("nats: Binary is required")
	case c.Dir == "":
		return errors.New("nats: Dir is required")
	case len(c.Base) == 0:
		return errors.New("nats: Base is required")
	case c.Port < 0 || c.Port > 65535:
		return fmt.Errorf("nats: Port must be 0..65535, got %d", c.Port)
	case c.MonitorPort < 0 || c.MonitorPort > 65535:
		return fmt.Errorf("nats: MonitorPort must be 0..65535, got %d", c.MonitorPort)
	}
	return nil
}

// NATS is a running nats-server process.
type NATS struct {
	*Process
	// URL is the client URL, nats://host:port.
	URL string
	// MonitorURL is the monitoring endpoint, http://host:port.
	MonitorURL string
	// StoreDir is the JetStream store directory given to the server.
	StoreDir string
	// Secrets are the role passwords the server was started with.
	Secrets Secrets
	cfg     NATSConfig
}

var (
	reListen       = regexp.MustCompile(`(?m)^(\s*listen\s*:\s*).*$`)
	reHTTP         = regexp.MustCompile(`(?m)^(\s*http\s*:\s*).*$`)
	reStoreDir     = regexp.MustCompile(`(?m)^(\s*store_dir\s*:\s*).*$`)
	reSyncInterval = regexp.MustCompile(`(?m)^(\s*sync_interval\s*:\s*).*$`)
)

// DeriveNATSConfig rewrites a nats-server configuration for a local process: the listen and
// monitoring addresses, the store directory and, when syncInterval is not empty, the sync interval.
// Everything else (payload limit, JetStream limits) is kept, so the dev stack runs what compose runs.
func DeriveNATSConfig(base []byte, host string, port, monitorPort int, storeDir, syncInterval string) ([]byte, error) {
	out := base
	for _, r := range []struct {
		re    *regexp.Regexp
		value string
		skip  bool
	}{
		{reListen, host + ":" + strconv.Itoa(port), false},
		{reHTTP, host + ":" + strconv.Itoa(monitorPort), false},
		{reStoreDir, strconv.Quote(storeDir), false},
		{reSyncInterval, strconv.Quote(syncInterval), syncInterval == ""},
	} {
		if r.skip {
			continue
		}
		if !r.re.Match(out) {
			return nil, fmt.Errorf("deriving nats config: no line matching %s", r.re)
		}
		// Literal replacement: the value may hold '$'.
		out = r.re.ReplaceAllFunc(out, func(line []byte) []byte {
			prefix := r.re.FindSubmatch(line)[1]
			return append(append([]byte{}, prefix...), r.value...)
		})
	}
	return out, nil
}

// StartNATS derives a configuration from cfg.Base, starts nats-server and waits until it reports
// JetStream healthy.
func StartNATS(ctx context.Context, cfg NATSConfig) (*NATS, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Secrets == nil {
		cfg.Secrets = NewSecrets()
	}
	n := &NATS{StoreDir: filepath.Join(cfg.Dir, "store"), cfg: cfg, Secrets: cfg.Secrets}
	if err := n.start(ctx); err != nil {
		return nil, err
	}
	return n, nil
}

// Restart starts the server again after it stopped or was killed, on the same ports and store.
func (n *NATS) Restart(ctx context.Context) error {
	if n.Process != nil && !n.Exited() {
		return errors.New("restarting nats: the server is still running")
	}
	return n.start(ctx)
}

func (n *NATS) start(ctx context.Context) error {
	cfg := n.cfg
	conf, err := DeriveNATSConfig(cfg.Base, cfg.Host, 4222, 8222, n.StoreDir, cfg.SyncInterval)
	if err != nil {
		return err
	}
	portsDir := filepath.Join(cfg.Dir, "ports")
	for _, d := range []string{n.StoreDir, portsDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("creating nats directory: %w", err)
		}
	}
	if cfg.Cluster != nil {
		conf = cfg.Cluster.apply(conf)
	}
	confPath := filepath.Join(cfg.Dir, "nats-server.conf")
	if err := os.WriteFile(confPath, conf, 0o644); err != nil {
		return fmt.Errorf("writing nats config: %w", err)
	}
	port, monitorPort := cfg.Port, cfg.MonitorPort
	if port == 0 {
		port = -1 // the server picks a free port and writes it to the ports file
	}
	if monitorPort == 0 {
		monitorPort = -1
	}
	p, err := StartProcess(ProcessSpec{
		Name: n.name(),
		Path: cfg.Binary,
		Args: []string{
			"--config", confPath,
			"--port", strconv.Itoa(port),
			"--http_port", strconv.Itoa(monitorPort),
			"--ports_file_dir", portsDir,
		},
		LogPath: filepath.Join(cfg.Dir, "nats-server.log"),
		Env:     cfg.Secrets.ServerEnv(),
	})
	if err != nil {
		return err
	}
	n.Process = p
	waitCtx, cancel := context.WithTimeout(ctx, cfg.StartTimeout)
	defer cancel()
	if err := n.waitReady(waitCtx, filepath.Join(portsDir, fmt.Sprintf("%s_%d.ports", filepath.Base(cfg.Binary), p.Pid()))); err != nil {
		_ = p.Kill()
		return fmt.Errorf("starting nats-server: %w\n%s", err, p.LogTail())
	}
	// A restart must come back on the same ports, so that clients reconnect to it.
	n.cfg.Port, n.cfg.MonitorPort = portOf(n.URL), portOf(n.MonitorURL)
	return nil
}

// waitReady reads the server's addresses from its ports file and waits for /healthz to report
// JetStream ready.
func (n *NATS) waitReady(ctx context.Context, portsFile string) error {
	var ports struct {
		NATS       []string `json:"nats"`
		Monitoring []string `json:"monitoring"`
	}
	err := waitFor(ctx, 20*time.Millisecond, n.Done(), func() (bool, error) {
		data, err := os.ReadFile(portsFile)
		if err != nil || json.Unmarshal(data, &ports) != nil || len(ports.NATS) == 0 || len(ports.Monitoring) == 0 {
			return false, nil // not written, or not completely written, yet
		}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("waiting for the ports file: %w", err)
	}
	n.URL = ports.NATS[0]
	n.MonitorURL = ports.Monitoring[0]
	healthz := n.MonitorURL + "/healthz?js-enabled-only=true"
	client := &http.Client{Timeout: time.Second}
	err = waitFor(ctx, 20*time.Millisecond, n.Done(), func() (bool, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, healthz, nil)
		if err != nil {
			return false, fmt.Errorf("building health request: %w", err)
		}
		resp, err := client.Do(req)
		if err != nil {
			return false, nil
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
	if err != nil {
		return fmt.Errorf("waiting for %s: %w", healthz, err)
	}
	return nil
}

// portOf returns the port of a URL such as nats://127.0.0.1:4222, or 0.
func portOf(raw string) int {
	u, err := url.Parse(raw)
	if err != nil {
		return 0
	}
	p, err := strconv.Atoi(u.Port())
	if err != nil {
		return 0
	}
	return p
}

// NATSClusterNode is one node's part of a cluster: its server name, its route port and the routes
// to every node.
type NATSClusterNode struct {
	Name       string // cluster name
	ServerName string
	RoutePort  int
	Routes     []string // nats-route://127.0.0.1:PORT of every node, this one included
}

var reServerName = regexp.MustCompile(`(?m)^(\s*server_name\s*:\s*).*$`)

// apply gives the configuration the node's server name and a cluster block.
func (c *NATSClusterNode) apply(conf []byte) []byte {
	conf = reServerName.ReplaceAll(conf, []byte("${1}"+c.ServerName))
	block := fmt.Sprintf("\ncluster {\n    name: %s\n    listen: %s:%d\n    routes: [\n", c.Name, NATSHostDefault, c.RoutePort)
	for _, r := range c.Routes {
		block += "        " + r + "\n"
	}
	return append(conf, block+"    ]\n}\n"...)
}

// name is the process name: nats-server, or the server name of a cluster node.
func (n *NATS) name() string {
	if n.cfg.Cluster != nil {
		return n.cfg.Cluster.ServerName
	}
	return "nats-server"
}

// ServerName is the name the server reports (as a stream's leader, for example).
func (n *NATS) ServerName() string {
	if n.cfg.Cluster != nil {
		return n.cfg.Cluster.ServerName
	}
	return "ork-nats"
}

// StartNATSCluster starts nodes nats-servers clustered over loopback (routes between fixed ports),
// each with its own store under cfg.Dir/nats-<i>, and waits until each reports JetStream enabled.
// cfg.Port and cfg.Cluster are ignored: every node gets free client and route ports, kept across
// restarts.
func StartNATSCluster(ctx context.Context, cfg NATSConfig, nodes int) ([]*NATS, error) {
	if nodes < 2 {
		return nil, fmt.Errorf("nats cluster: at least 2 nodes, got %d", nodes)
	}
	ports, err := freePorts(3 * nodes)
	if err != nil {
		return nil, err
	}
	routes := make([]string, nodes)
	for i := range nodes {
		routes[i] = fmt.Sprintf("nats-route://%s:%d", NATSHostDefault, ports[nodes+i])
	}
	if cfg.Secrets == nil {
		cfg.Secrets = NewSecrets() // one set for every node
	}
	servers := make([]*NATS, nodes)
	errs := make([]error, nodes)
	var wg sync.WaitGroup
	for i := range nodes {
		c := cfg
		c.Dir = filepath.Join(cfg.Dir, "nats-"+strconv.Itoa(i+1))
		c.Port, c.MonitorPort = ports[i], ports[2*nodes+i]
		c.Cluster = &NATSClusterNode{Name: "ork", ServerName: "nats-" + strconv.Itoa(i+1), RoutePort: ports[nodes+i], Routes: routes}
		wg.Add(1)
		go func() { // a node's JetStream waits for its peers: start them together
			defer wg.Done()
			servers[i], errs[i] = StartNATS(ctx, c)
		}()
	}
	wg.Wait()
	err = errors.Join(errs...)
	if err == nil {
		err = WaitClusterReady(ctx, servers)
	}
	if err != nil {
		for _, n := range servers {
			if n != nil {
				_ = n.Kill()
			}
		}
		return nil, err
	}
	return servers, nil
}

// WaitClusterReady waits until the JetStream meta group of the running nodes has a leader that sees
// every other running node as current, so that streams can be placed on all of them.
func WaitClusterReady(ctx context.Context, nodes []*NATS) error {
	var up []*NATS
	for _, n := range nodes {
		if n.Process != nil && !n.Exited() {
			up = append(up, n)
		}
	}
	client := &http.Client{Timeout: time.Second}
	ctx, cancel := context.WithTimeout(ctx, NATSStartTimeoutDefault)
	defer cancel()
	err := waitFor(ctx, 50*time.Millisecond, nil, func() (bool, error) {
		for _, n := range up {
			var jsz struct {
				Meta *struct {
					Leader   string `json:"leader"`
					Replicas []struct {
						Current bool `json:"current"`
						Offline bool `json:"offline"`
					} `json:"replicas"`
				} `json:"meta_cluster"`
			}
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, n.MonitorURL+"/jsz", nil)
			if err != nil {
				return false, err
			}
			resp, err := client.Do(req)
			if err != nil {
				return false, nil
			}
			err = json.NewDecoder(resp.Body).Decode(&jsz)
			_ = resp.Body.Close()
			if err != nil || jsz.Meta == nil || jsz.Meta.Leader != n.ServerName() {
				continue
			}
			current := 0
			for _, r := range jsz.Meta.Replicas {
				if r.Current && !r.Offline {
					current++
				}
			}
			return current >= len(up)-1, nil
		}
		return false, nil
	})
	if err != nil {
		return fmt.Errorf("waiting for the nats cluster's meta leader and peers: %w", err)
	}
	return nil
}

// freePorts returns n distinct free TCP ports on the loopback address.
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", NATSHostDefault+":0")
		if err != nil {
			return nil, fmt.Errorf("finding a free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
