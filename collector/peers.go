package collector

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"slices"
)

// Direction says which way a message went relative to the peer it is
// attributed to: the value of the `direction` label.
type Direction uint8

// The directions, in the order of [Directions].
const (
	DirectionUnknown  Direction = iota // neither end is a configured peer
	DirectionInbound                   // sent by the peer (its source address matched)
	DirectionOutbound                  // sent toward the peer (its destination address matched)
)

// Directions are the direction label values, indexed by [Direction].
var Directions = [...]string{"unknown", "inbound", "outbound"}

// String returns the label value of d.
func (d Direction) String() string { return Directions[d] }

// OtherPeer is the peer label value of messages neither end of which is a
// configured peer.
const OtherPeer = "other"

// MaxPeerNameBytes bounds the length of a peer name and of a node display
// name.
const MaxPeerNameBytes = 64

// PortRange is an inclusive range of transport ports, 1..65535.
type PortRange struct{ First, Last uint16 }

// PeerConfig names one peer: the addresses and, optionally, the ports it
// uses. A transport address is the peer's when its address is inside one of
// Prefixes and, if Ports is not empty, its port is inside one of Ports.
type PeerConfig struct {
	Name     string         // label value; see [ValidPeerName]
	Prefixes []netip.Prefix // IPv4 and IPv6 networks, host bits zero
	Ports    []PortRange    // empty: any port
	// MaxSessions is the concurrent sessions (channels) the peer's
	// contract allows, exported as sip_peer_max_sessions; 0 declares none.
	MaxSessions int
	// KeepaliveDownAfter and KeepaliveUpAfter are how many consecutive
	// failed, and successful, OPTIONS keepalives turn the peer's
	// sip_peer_up to 0, and to 1; 0 selects [DefaultKeepaliveDownAfter]
	// and [DefaultKeepaliveUpAfter]. At most [MaxKeepaliveRun].
	KeepaliveDownAfter, KeepaliveUpAfter int
}

// The keepalive thresholds of [PeerConfig], as the SIP address reachability
// services of session border controllers count them.
const (
	// DefaultKeepaliveDownAfter is the default of
	// PeerConfig.KeepaliveDownAfter: three consecutive failed keepalives.
	DefaultKeepaliveDownAfter = 3
	// DefaultKeepaliveUpAfter is the default of
	// PeerConfig.KeepaliveUpAfter: two consecutive successful keepalives.
	DefaultKeepaliveUpAfter = 2
	// MaxKeepaliveRun bounds both thresholds.
	MaxKeepaliveRun = 100
)

// PeersConfig is the peer table of the configuration file, in file order,
// and the node display names.
type PeersConfig struct {
	Peers []PeerConfig
	// Nodes maps a node value as seen on the wire (a HEP node name, a
	// capture agent ID in decimal, --capture.node-name) to the node label
	// value shown instead.
	Nodes map[string]string
}

// Peers is a compiled [PeersConfig]: it attributes a message to a peer and
// a direction by its transport addresses. It is immutable and safe for
// concurrent use.
type Peers struct {
	names []string
	v4    []entry4
	v6    []entry6
	nodes map[string]string
	// By peer index: the declared session limit (0 none) and the
	// keepalive thresholds, defaults filled in; index by name.
	maxSessions        []int
	downAfter, upAfter []int
	index              map[string]int
}

// entry4 is one IPv4 prefix of a peer, as a masked 32-bit value.
type entry4 struct {
	net, mask uint32
	peer      int32
	ports     []PortRange
}

// entry6 is one IPv6 prefix of a peer, as two masked 64-bit halves.
type entry6 struct {
	hi, lo, maskHi, maskLo uint64
	peer                   int32
	ports                  []PortRange
}

// ValidPeerName reports whether s may be a peer name or a node display
// name: 1 to [MaxPeerNameBytes] bytes of ASCII letters, digits and
// `-_.:/+@` and space, starting and ending with a letter or digit, and not
// "other" (the value of the unmatched).
func ValidPeerName(s string) bool {
	if len(s) == 0 || len(s) > MaxPeerNameBytes || s == OtherPeer {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if alnum {
			continue
		}
		if i == 0 || i == len(s)-1 {
			return false
		}
		switch c {
		case '-', '_', '.', ':', '/', '+', '@', ' ':
		default:
			return false
		}
	}
	return true
}

// NewPeers checks cfg and compiles it. Errors: a name that is not
// [ValidPeerName] or given twice, a peer without prefixes, a prefix with
// host bits set or invalid, a port range outside 1..65535 or reversed, a
// negative MaxSessions, a keepalive threshold outside 0..[MaxKeepaliveRun],
// a node display name that is not valid. Overlaps are not checked here
// (the configuration loader reports them with line numbers); the first
// matching peer wins.
func NewPeers(cfg PeersConfig) (*Peers, error) {
	p := &Peers{nodes: map[string]string{}, index: map[string]int{}}
	seen := map[string]bool{}
	for i, pc := range cfg.Peers {
		if !ValidPeerName(pc.Name) {
			return nil, fmt.Errorf("peer %d: invalid name %q", i+1, pc.Name)
		}
		if seen[pc.Name] {
			return nil, fmt.Errorf("peer %q given twice", pc.Name)
		}
		seen[pc.Name] = true
		if len(pc.Prefixes) == 0 {
			return nil, fmt.Errorf("peer %q: no cidrs", pc.Name)
		}
		for _, r := range pc.Ports {
			if r.First == 0 || r.First > r.Last {
				return nil, fmt.Errorf("peer %q: bad port range %d-%d", pc.Name, r.First, r.Last)
			}
		}
		if pc.MaxSessions < 0 {
			return nil, fmt.Errorf("peer %q: max sessions %d: must not be negative", pc.Name, pc.MaxSessions)
		}
		down, up := cmp.Or(pc.KeepaliveDownAfter, DefaultKeepaliveDownAfter), cmp.Or(pc.KeepaliveUpAfter, DefaultKeepaliveUpAfter)
		if down < 1 || down > MaxKeepaliveRun || up < 1 || up > MaxKeepaliveRun {
			return nil, fmt.Errorf("peer %q: keepalive thresholds down after %d, up after %d: must be 1 to %d", pc.Name, down, up, MaxKeepaliveRun)
		}
		ports := slices.Clone(pc.Ports)
		peer := int32(len(p.names))
		for _, pfx := range pc.Prefixes {
			if !pfx.IsValid() || pfx.Masked() != pfx {
				return nil, fmt.Errorf("peer %q: bad cidr %s", pc.Name, pfx)
			}
			a := pfx.Addr()
			if a.Is4() {
				mask := ^uint32(0)
				if pfx.Bits() < 32 {
					mask = ^(^uint32(0) >> pfx.Bits())
				}
				p.v4 = append(p.v4, entry4{net: binary.BigEndian.Uint32(a.AsSlice()), mask: mask, peer: peer, ports: ports})
				continue
			}
			b := a.As16()
			hi, lo := binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])
			mhi, mlo := mask64(pfx.Bits()), mask64(pfx.Bits()-64)
			p.v6 = append(p.v6, entry6{hi: hi, lo: lo, maskHi: mhi, maskLo: mlo, peer: peer, ports: ports})
		}
		p.index[pc.Name] = len(p.names)
		p.names = append(p.names, pc.Name)
		p.maxSessions = append(p.maxSessions, pc.MaxSessions)
		p.downAfter = append(p.downAfter, down)
		p.upAfter = append(p.upAfter, up)
	}
	for raw, name := range cfg.Nodes {
		if raw == "" {
			return nil, errors.New("node mapping with an empty node value")
		}
		if !ValidPeerName(name) {
			return nil, fmt.Errorf("node %q: invalid display name %q", raw, name)
		}
		p.nodes[raw] = name
	}
	return p, nil
}

// mask64 returns a 64-bit mask of the top bits ones, bits clamped to 0..64.
func mask64(bits int) uint64 {
	switch {
	case bits <= 0:
		return 0
	case bits >= 64:
		return ^uint64(0)
	}
	return ^(^uint64(0) >> bits)
}

// Names returns the peer names in file order.
func (p *Peers) Names() []string { return slices.Clone(p.names) }

// Len returns the number of peers.
func (p *Peers) Len() int { return len(p.names) }

// Name returns the name of peer i (0 <= i < Len), or [OtherPeer] for -1.
func (p *Peers) Name(i int) string {
	if i < 0 {
		return OtherPeer
	}
	return p.names[i]
}

// MaxSessions returns the session limit declared for peer i (0 <= i <
// Len), 0 when none.
func (p *Peers) MaxSessions(i int) int { return p.maxSessions[i] }

// Keepalive returns how many consecutive failed and successful OPTIONS
// keepalives turn the peer called name down and up ([PeerConfig]); the
// defaults for a nil p and a name not configured (a peer removed by a
// reload). It does not allocate.
func (p *Peers) Keepalive(name string) (downAfter, upAfter int) {
	if p != nil {
		if i, ok := p.index[name]; ok {
			return p.downAfter[i], p.upAfter[i]
		}
	}
	return DefaultKeepaliveDownAfter, DefaultKeepaliveUpAfter
}

// NodeName returns the display name configured for the raw node value, if
// any; none for a nil p. It does not allocate.
func (p *Peers) NodeName(raw []byte) (string, bool) {
	if p == nil {
		return "", false
	}
	name, ok := p.nodes[string(raw)]
	return name, ok
}

// Match attributes a message from src to dst: the first peer in file order
// that src belongs to, inbound; else the first peer dst belongs to,
// outbound; else -1 (other) and [DirectionUnknown]. A message between two
// configured peers is thus attributed once, to its source. IPv4-mapped IPv6
// addresses match IPv4 prefixes; a zero AddrPort matches nothing. Match
// scans the prefixes linearly, takes no lock and does not allocate.
func (p *Peers) Match(src, dst netip.AddrPort) (peer int, dir Direction) {
	if i := p.lookup(src); i >= 0 {
		return i, DirectionInbound
	}
	if i := p.lookup(dst); i >= 0 {
		return i, DirectionOutbound
	}
	return -1, DirectionUnknown
}

// lookup returns the first peer ap belongs to, or -1.
func (p *Peers) lookup(ap netip.AddrPort) int {
	a, port := ap.Addr(), ap.Port()
	if a.Is4In6() {
		a = a.Unmap()
	}
	switch {
	case a.Is4():
		b := a.As4()
		v := binary.BigEndian.Uint32(b[:])
		for i := range p.v4 {
			e := &p.v4[i]
			if v&e.mask == e.net && portIn(port, e.ports) {
				return int(e.peer)
			}
		}
	case a.Is6():
		b := a.As16()
		hi, lo := binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])
		for i := range p.v6 {
			e := &p.v6[i]
			if hi&e.maskHi == e.hi && lo&e.maskLo == e.lo && portIn(port, e.ports) {
				return int(e.peer)
			}
		}
	}
	return -1
}

// portIn reports whether port is in one of ranges; any port when ranges is
// empty.
func portIn(port uint16, ranges []PortRange) bool {
	if len(ranges) == 0 {
		return true
	}
	for _, r := range ranges {
		if port >= r.First && port <= r.Last {
			return true
		}
	}
	return false
}
