package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/sip-exporter/sip_exporter/collector"
)

// A source given on the command line (--capture.interface,
// --capture.pcap-file, a FILE of report) is NAME or NAME=NODE: NODE is the
// node label value of the messages read from it (unless they carry their
// own, as HEP does), instead of --capture.node-name. The value is split at
// its last "=", which a node value cannot contain, so that a path may hold
// "=" as long as it is followed by "=NODE"; a file argument that names an
// existing file as a whole is that file, not split (so every path that
// worked before still does: Go's t.TempDir of a subtest "window=100ms", a
// directory "dt=2026-01-01").

// namedSource is one source argument split into its name and node.
type namedSource struct {
	name string // interface name or file path
	node string // its own node value; "" for --capture.node-name
	arg  string // the argument as given
}

// parseSources splits the source arguments of flag (--capture.interface,
// --capture.pcap-file, or "file" for report's arguments) and checks their
// nodes. Errors name the flag, the argument as given and the problem.
func parseSources(flag string, args []string) ([]namedSource, error) {
	out := make([]namedSource, 0, len(args))
	for _, arg := range args {
		s := namedSource{name: arg, arg: arg}
		if flag != "--capture.interface" {
			if _, err := os.Stat(arg); err == nil {
				out = append(out, s)
				continue
			}
		}
		if i := strings.LastIndexByte(arg, '='); i >= 0 {
			s.name, s.node = arg[:i], arg[i+1:]
			if s.name == "" {
				what := "path"
				if flag == "--capture.interface" {
					what = "interface name"
				}
				return nil, fmt.Errorf("%s %q: no %s before \"=\"", flag, arg, what)
			}
			if err := checkSourceNode(s.node); err != nil {
				return nil, fmt.Errorf("%s %q: %w", flag, arg, err)
			}
		}
		out = append(out, s)
	}
	return out, nil
}

// checkSourceNode checks the node value of a source: the rule of node
// display names in the configuration file (nameRule), at most
// collector.MaxNodeLabelBytes long, and not "other".
func checkSourceNode(node string) error {
	switch {
	case node == "":
		return errors.New("empty node after \"=\"")
	case len(node) > collector.MaxNodeLabelBytes:
		return fmt.Errorf("node of %d bytes: at most %d", len(node), collector.MaxNodeLabelBytes)
	case node == collector.OtherNode:
		return fmt.Errorf("node %q is reserved for nodes past --hep.max-nodes", node)
	case !collector.ValidPeerName(node):
		return fmt.Errorf("invalid node %q: %s", node, nameRule)
	}
	return nil
}

// openError adds to an error opening the file of s a hint when its
// argument was split at a "=" that may have been part of the path.
func (s namedSource) openError(err error) error {
	if s.node != "" && errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w (%q was split at its last \"=\" into the path %q and the node %q: a path that contains \"=\" needs \"=NODE\" after it)", err, s.arg, s.name, s.node)
	}
	return err
}

// checkSourceNodes checks that the node values of the sources (own, else
// --capture.node-name) fit within --hep.max-nodes, so that none of them is
// counted as "other".
func checkSourceNodes(nodeName string, maxNodes int, sources ...[]namedSource) error {
	values := map[string]bool{}
	for _, list := range sources {
		for _, s := range list {
			if s.node != "" {
				values[s.node] = true
			} else {
				values[nodeName] = true
			}
		}
	}
	if len(values) > maxNodes {
		return fmt.Errorf("the sources have %d distinct nodes: more than --hep.max-nodes %d", len(values), maxNodes)
	}
	return nil
}
