package main

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/promslog"

	"github.com/sip-exporter/sip_exporter/capture/input"
	"github.com/sip-exporter/sip_exporter/capture/pipeline"
)

// TestInterfaceHint: --capture.interface=any, libpcap's pseudo-interface,
// and a name that does not exist stop serve at start with the interfaces
// there are and the hint that the flag repeats.
func TestInterfaceHint(t *testing.T) {
	ifs, err := net.Interfaces()
	if err != nil || len(ifs) == 0 {
		t.Skipf("no interfaces to list: %v", err)
	}
	for _, tc := range []struct{ name, want string }{
		{"any", `capture interface "any": no such network interface: libpcap's pseudo-interface "any" is not supported, capture each interface of its own (interfaces here: ` + ifs[0].Name},
		{"nosuch0", `capture interface "nosuch0": no such network interface (interfaces here: ` + ifs[0].Name},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			o := &options{interfaces: []string{tc.name}, workers: 2, pcapSpeed: "fast", ringSize: 2 << 20, blockTimeout: input.DefaultBlockTimeout, pipeline: defaultPipelineConfig()}
			p, err := pipeline.New(o.pipeline)
			if err != nil {
				t.Fatal(err)
			}
			sources, err := newSources(ctx, o, p)
			if err != nil {
				t.Fatal(err)
			}
			restarts := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "restarts_total", Help: "x"}, []string{"source", "type"})
			err = explain(startSources(ctx, sources, restarts, promslog.NewNopLogger()), o)
			var h *hintError
			if !errors.As(err, &h) || !errors.Is(err, input.ErrNoInterface) {
				t.Fatalf("error %v, want ErrNoInterface with a hint", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q lacks %q", err, tc.want)
			}
			if want := "the flag repeats: --capture.interface=eth0 --capture.interface=eth1"; !strings.Contains(h.hint, want) {
				t.Errorf("hint %q lacks %q", h.hint, want)
			}
		})
	}
}
