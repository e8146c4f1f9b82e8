package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"go.yaml.in/yaml/v3"

	"github.com/sip-exporter/sip_exporter/collector"
)

// The configuration file (--config.file), YAML:
//
//	peers:                 # first match in file order wins
//	  - name: carrier-a    # the peer label value
//	    cidrs: [192.0.2.0/24, 2001:db8::/32]
//	    ports: [5060, "5080-5090"]   # optional; any port when absent
//	    max_sessions: 120            # optional: sip_peer_max_sessions
//	    keepalive_down_after: 3      # optional: failed OPTIONS in a row for sip_peer_up 0
//	    keepalive_up_after: 2        # optional: 2xx to OPTIONS in a row for sip_peer_up 1
//	nodes:                 # node value as seen -> node label value
//	  "4711": sbc-fra-1
//
// It is decoded strictly: an unknown key, a value of the wrong type or a
// repeated mapping key is an error, and every error names its line.

// fileConfig is the shape of the configuration file. Leaves are kept as
// nodes for their line numbers.
type fileConfig struct {
	Peers []filePeer `yaml:"peers"`
	Nodes yaml.Node  `yaml:"nodes"`
}

// filePeer is one entry of peers.
type filePeer struct {
	Name               yaml.Node   `yaml:"name"`
	CIDRs              []yaml.Node `yaml:"cidrs"`
	Ports              []yaml.Node `yaml:"ports"`
	MaxSessions        yaml.Node   `yaml:"max_sessions"`
	KeepaliveDownAfter yaml.Node   `yaml:"keepalive_down_after"`
	KeepaliveUpAfter   yaml.Node   `yaml:"keepalive_up_after"`
}

// yamlTypeNames turns the Go type names in the YAML decoder's messages into
// the words of the file.
var yamlTypeNames = strings.NewReplacer(
	"in type main.filePeer", "in a peer (want name, cidrs, ports, max_sessions, keepalive_down_after, keepalive_up_after)",
	"in type main.fileConfig", "at the top level (want peers, nodes)",
	"into []main.filePeer", "into peers (want a list)",
	"into main.filePeer", "into a peer (want a mapping)",
	"into main.fileConfig", "into the configuration (want a mapping)",
	"into []yaml.Node", "into a list",
)

// parseConfig decodes and checks a configuration file. Errors start with
// "line N: ".
func parseConfig(data []byte) (collector.PeersConfig, error) {
	var cfg collector.PeersConfig
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return cfg, yamlError(err, data)
	}
	var f fileConfig
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return cfg, yamlError(err, data)
	}
	// The strict decode succeeded, so the tree has the same shape: the
	// lines of the peers come from it (a peer without a name has no other
	// line).
	var items []*yaml.Node
	if len(root.Content) == 1 {
		doc := root.Content[0]
		for i := 0; i+1 < len(doc.Content); i += 2 {
			if doc.Content[i].Value == "peers" {
				items = doc.Content[i+1].Content
			}
		}
	}
	var cidrNodes [][]*yaml.Node // of cfg.Peers, for lines
	first := map[string]int{}
	for i, fp := range f.Peers {
		line := items[i].Line
		if fp.Name.Kind != 0 {
			line = fp.Name.Line
		}
		if fp.Name.Kind != yaml.ScalarNode && fp.Name.Kind != 0 {
			return cfg, fmt.Errorf("line %d: peer name must be a string", line)
		}
		name := fp.Name.Value
		if fp.Name.Kind == 0 || fp.Name.Tag == "!!null" || name == "" {
			return cfg, fmt.Errorf("line %d: peer without a name", line)
		}
		if name == collector.OtherPeer {
			return cfg, fmt.Errorf("line %d: peer name %q is reserved for messages of no configured peer", line, name)
		}
		if !collector.ValidPeerName(name) {
			return cfg, fmt.Errorf("line %d: invalid peer name %q: %s", line, name, nameRule)
		}
		if l, ok := first[name]; ok {
			return cfg, fmt.Errorf("line %d: peer %q defined twice (first on line %d)", line, name, l)
		}
		first[name] = line
		pc := collector.PeerConfig{Name: name}
		if len(fp.CIDRs) == 0 {
			return cfg, fmt.Errorf("line %d: peer %q has no cidrs", line, name)
		}
		var pfxNodes []*yaml.Node
		for j := range fp.CIDRs {
			n := &fp.CIDRs[j]
			pfx, err := parseCIDR(n)
			if err != nil {
				return cfg, fmt.Errorf("line %d: peer %q: %w", n.Line, name, err)
			}
			pc.Prefixes = append(pc.Prefixes, pfx)
			pfxNodes = append(pfxNodes, n)
		}
		for j := range fp.Ports {
			n := &fp.Ports[j]
			r, err := parsePorts(n)
			if err != nil {
				return cfg, fmt.Errorf("line %d: peer %q: %w", n.Line, name, err)
			}
			pc.Ports = append(pc.Ports, r)
		}
		for _, f := range []struct {
			key  string
			n    *yaml.Node
			max  int
			into *int
		}{
			{"max_sessions", &fp.MaxSessions, maxSessionsLimit, &pc.MaxSessions},
			{"keepalive_down_after", &fp.KeepaliveDownAfter, collector.MaxKeepaliveRun, &pc.KeepaliveDownAfter},
			{"keepalive_up_after", &fp.KeepaliveUpAfter, collector.MaxKeepaliveRun, &pc.KeepaliveUpAfter},
		} {
			v, err := parseCount(f.n, f.max)
			if err != nil {
				return cfg, fmt.Errorf("line %d: peer %q: %s: %w", f.n.Line, name, f.key, err)
			}
			*f.into = v
		}
		// A cidr that an earlier peer covers with all of its ports can
		// never match: the earlier peer is matched first.
		for j, pfx := range pc.Prefixes {
			for e, ep := range cfg.Peers {
				for k, earlier := range ep.Prefixes {
					if earlier.Addr().Is4() == pfx.Addr().Is4() && earlier.Bits() <= pfx.Bits() && earlier.Contains(pfx.Addr()) &&
						portsCover(ep.Ports, pc.Ports) {
						return cfg, fmt.Errorf("line %d: peer %q: cidr %s never matches: peer %q (line %d) comes first and covers it with %s%s; put the narrower peer first",
							pfxNodes[j].Line, name, pfx, ep.Name, cidrNodes[e][k].Line, earlier, portsText(ep.Ports))
					}
				}
			}
		}
		cfg.Peers = append(cfg.Peers, pc)
		cidrNodes = append(cidrNodes, pfxNodes)
	}
	nodes, err := parseNodes(&f.Nodes)
	if err != nil {
		return cfg, err
	}
	cfg.Nodes = nodes
	return cfg, nil
}

// nameRule says what a valid peer or node display name is.
const nameRule = "want 1 to 64 ASCII letters, digits, spaces and -_.:/+@, starting and ending with a letter or digit"

// yamlError rewrites an error of the YAML decoder for data: without the
// "yaml: " prefix, problems joined with "; ", Go types named in words, and
// each starting with "line N: " (the decoder leaves the line out of a few
// errors: then the line of the first byte that is not text, else the last
// line, where the input ended too early).
func yamlError(err error, data []byte) error {
	msgs := []string{strings.TrimPrefix(err.Error(), "yaml: ")}
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs = make([]string, len(te.Errors))
		for i, e := range te.Errors {
			msgs[i] = yamlTypeNames.Replace(e)
		}
	}
	for i, m := range msgs {
		if !strings.HasPrefix(m, "line ") {
			msgs[i] = fmt.Sprintf("line %d: %s", badLine(data), m)
		}
	}
	return errors.New(strings.Join(msgs, "; "))
}

// badLine returns the line of the first byte of data that is not UTF-8 or
// is a control character other than tab and line ends, else the last line.
func badLine(data []byte) int {
	line := 1
	for i, r := range string(data) {
		switch {
		case r == utf8.RuneError && !strings.HasPrefix(string(data[i:]), "\uFFFD"), r < 0x20 && r != '\t' && r != '\n' && r != '\r', r == 0x7f:
			return line
		case r == '\n' && i < len(data)-1:
			line++
		}
	}
	return line
}

// parseCIDR parses a prefix, or a single address as a prefix of its full
// length. Host bits must be zero.
func parseCIDR(n *yaml.Node) (netip.Prefix, error) {
	if n.Kind != yaml.ScalarNode {
		return netip.Prefix{}, errors.New("a cidr must be a string")
	}
	s := n.Value
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("bad cidr %q: want ADDRESS/BITS or ADDRESS", s)
		}
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	pfx, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("bad cidr %q: want ADDRESS/BITS or ADDRESS", s)
	}
	if pfx.Addr().Is4In6() {
		return netip.Prefix{}, fmt.Errorf("bad cidr %q: write IPv4-mapped networks as IPv4", s)
	}
	if m := pfx.Masked(); m != pfx {
		return netip.Prefix{}, fmt.Errorf("cidr %q has host bits set (did you mean %s?)", s, m)
	}
	return pfx, nil
}

// parsePorts parses a port (an integer) or a range "FIRST-LAST", 1..65535.
func parsePorts(n *yaml.Node) (collector.PortRange, error) {
	if n.Kind != yaml.ScalarNode {
		return collector.PortRange{}, errors.New("a port must be a number or a range \"FIRST-LAST\"")
	}
	s := n.Value
	port := func(s string) (uint16, bool) {
		v, err := strconv.ParseUint(strings.TrimSpace(s), 10, 16)
		return uint16(v), err == nil && v >= 1
	}
	if a, b, ok := strings.Cut(s, "-"); ok {
		first, ok1 := port(a)
		last, ok2 := port(b)
		switch {
		case !ok1 || !ok2:
			return collector.PortRange{}, fmt.Errorf("bad port range %q: want FIRST-LAST, each 1 to 65535", s)
		case first > last:
			return collector.PortRange{}, fmt.Errorf("bad port range %q: first port above last", s)
		}
		return collector.PortRange{First: first, Last: last}, nil
	}
	p, ok := port(s)
	if !ok {
		return collector.PortRange{}, fmt.Errorf("bad port %q: want 1 to 65535 or a range \"FIRST-LAST\"", s)
	}
	return collector.PortRange{First: p, Last: p}, nil
}

// maxSessionsLimit bounds max_sessions: more channels than any trunk
// carries, and exact as a float64.
const maxSessionsLimit = 10_000_000

// parseCount parses an optional positive integer of at most max: 0 when
// the key is absent.
func parseCount(n *yaml.Node, max int) (int, error) {
	if n.Kind == 0 {
		return 0, nil
	}
	v, err := strconv.Atoi(n.Value)
	if n.Kind != yaml.ScalarNode || n.Tag != "!!int" || err != nil || v < 1 || v > max {
		return 0, fmt.Errorf("%q: want a whole number from 1 to %d", n.Value, max)
	}
	return v, nil
}

// portsCover reports whether the ports of an earlier peer (empty: all)
// include every port of a later one (empty: all).
func portsCover(earlier, later []collector.PortRange) bool {
	if len(earlier) == 0 {
		return true
	}
	if len(later) == 0 {
		return false
	}
	merged := slices.Clone(earlier)
	slices.SortFunc(merged, func(a, b collector.PortRange) int { return int(a.First) - int(b.First) })
	out := merged[:1]
	for _, r := range merged[1:] {
		last := &out[len(out)-1]
		if int(r.First) <= int(last.Last)+1 {
			last.Last = max(last.Last, r.Last)
			continue
		}
		out = append(out, r)
	}
	for _, r := range later {
		if !slices.ContainsFunc(out, func(m collector.PortRange) bool { return m.First <= r.First && r.Last <= m.Last }) {
			return false
		}
	}
	return true
}

// portsText renders port ranges for a message: "" for all ports.
func portsText(ranges []collector.PortRange) string {
	if len(ranges) == 0 {
		return ""
	}
	s := make([]string, len(ranges))
	for i, r := range ranges {
		s[i] = strconv.Itoa(int(r.First))
		if r.Last != r.First {
			s[i] += "-" + strconv.Itoa(int(r.Last))
		}
	}
	return " on ports " + strings.Join(s, ",")
}

// parseNodes checks the nodes mapping: node value as seen -> display name.
func parseNodes(n *yaml.Node) (map[string]string, error) {
	if n.Kind == 0 || n.Tag == "!!null" {
		return nil, nil
	}
	if n.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("line %d: nodes must be a mapping of node values to names", n.Line)
	}
	out := map[string]string{}
	first := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.Value == "" {
			return nil, fmt.Errorf("line %d: a node value must be a non-empty string", k.Line)
		}
		if l, ok := first[k.Value]; ok {
			return nil, fmt.Errorf("line %d: node %q mapped twice (first on line %d)", k.Line, k.Value, l)
		}
		first[k.Value] = k.Line
		if v.Kind != yaml.ScalarNode {
			return nil, fmt.Errorf("line %d: node %q: the name must be a string", v.Line, k.Value)
		}
		if v.Value == collector.OtherNode {
			return nil, fmt.Errorf("line %d: node %q: name %q is reserved for nodes past --hep.max-nodes", v.Line, k.Value, v.Value)
		}
		if !collector.ValidPeerName(v.Value) {
			return nil, fmt.Errorf("line %d: node %q: invalid name %q: %s", v.Line, k.Value, v.Value, nameRule)
		}
		out[k.Value] = v.Value
	}
	return out, nil
}

// loadPeers reads and compiles the configuration file at path.
func loadPeers(path string) (*collector.Peers, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config file: %w", err)
	}
	cfg, err := parseConfig(data)
	if err != nil {
		return nil, fmt.Errorf("config file %q: %w", path, err)
	}
	p, err := collector.NewPeers(cfg)
	if err != nil {
		return nil, fmt.Errorf("config file %q: %w", path, err)
	}
	return p, nil
}

// reloader reloads the configuration file into the SIP collector, on
// SIGHUP and POST /-/reload, and exports the outcome as
// sip_exporter_config_last_reload_successful and
// sip_exporter_config_last_reload_success_timestamp_seconds.
type reloader struct {
	path   string
	sip    *collector.SIP
	logger *slog.Logger

	mu          sync.Mutex // serialises reloads
	ok          bool
	lastSuccess time.Time

	okDesc, timeDesc *prometheus.Desc
}

// newReloader returns the reloader of a configuration already loaded into
// c at start.
func newReloader(path string, c *collector.SIP, logger *slog.Logger) *reloader {
	return &reloader{
		path: path, sip: c, logger: logger, ok: true, lastSuccess: time.Now(),
		okDesc: prometheus.NewDesc("sip_exporter_config_last_reload_successful",
			"Whether the last reload of the configuration file (--config.file) succeeded (1) or failed and the previous configuration stays in force (0).", nil, nil),
		timeDesc: prometheus.NewDesc("sip_exporter_config_last_reload_success_timestamp_seconds",
			"Time of the last successful load of the configuration file, in seconds since the Unix epoch.", nil, nil),
	}
}

// reload loads the file again and, when it is valid as a whole, puts it in
// force; otherwise the configuration in force stays and the error is
// returned.
func (r *reloader) reload() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	p, err := loadPeers(r.path)
	if err == nil {
		err = r.sip.SetPeers(p)
	}
	if err != nil {
		r.ok = false
		r.logger.Error("configuration reload failed, previous configuration stays in force", "file", r.path, "err", err)
		return err
	}
	r.ok, r.lastSuccess = true, time.Now()
	r.logger.Info("configuration reloaded", "file", r.path, "peers", p.Len())
	return nil
}

// Describe implements [prometheus.Collector].
func (r *reloader) Describe(ch chan<- *prometheus.Desc) {
	ch <- r.okDesc
	ch <- r.timeDesc
}

// Collect implements [prometheus.Collector].
func (r *reloader) Collect(ch chan<- prometheus.Metric) {
	r.mu.Lock()
	ok, last := r.ok, r.lastSuccess
	r.mu.Unlock()
	v := 0.0
	if ok {
		v = 1
	}
	ch <- prometheus.MustNewConstMetric(r.okDesc, prometheus.GaugeValue, v)
	ch <- prometheus.MustNewConstMetric(r.timeDesc, prometheus.GaugeValue, float64(last.UnixNano())/1e9)
}

// reloadHandler serves /-/reload as Prometheus does: POST or PUT reloads
// when the lifecycle API is enabled (403 otherwise); 500 with the error
// when the file is rejected. r is nil without --config.file.
func reloadHandler(r *reloader, lifecycle bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		switch {
		case !lifecycle:
			http.Error(w, "Lifecycle API is not enabled.", http.StatusForbidden)
		case req.Method != http.MethodPost && req.Method != http.MethodPut:
			w.Header().Set("Allow", "POST, PUT")
			http.Error(w, "Only POST or PUT requests allowed.", http.StatusMethodNotAllowed)
		case r == nil:
			http.Error(w, "No configuration file to reload: start with --config.file.", http.StatusBadRequest)
		default:
			if err := r.reload(); err != nil {
				http.Error(w, fmt.Sprintf("failed to reload config: %v", err), http.StatusInternalServerError)
			}
		}
	})
}

// loadConfig loads --config.file, when given, into the pipeline options.
func (o *options) loadConfig() error {
	if o.configFile == "" {
		return nil
	}
	p, err := loadPeers(o.configFile)
	if err != nil {
		return err
	}
	o.pipeline.Peers = p
	return nil
}

// reloadOnSIGHUP starts reloading the configuration file on every SIGHUP
// until ctx is done; SIGHUP no longer ends the process from its return. r
// is nil without --config.file: SIGHUP is then logged and ignored.
func reloadOnSIGHUP(ctx context.Context, r *reloader, logger *slog.Logger) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go watchSIGHUP(ctx, hup, r, logger)
}

func watchSIGHUP(ctx context.Context, hup chan os.Signal, r *reloader, logger *slog.Logger) {
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			if r == nil {
				logger.Info("SIGHUP ignored: no --config.file to reload")
				continue
			}
			_ = r.reload() // logged
		}
	}
}
