//go:build !linux

package input

import (
	"context"
	"fmt"

	"github.com/sip-exporter/sip_exporter/capture/decode"
)

// Live is only available on Linux (AF_PACKET).
func Live(ctx context.Context, cfg LiveConfig, ds []*decode.Decoder, st *Stats, started func()) error {
	return fmt.Errorf("capture interface %q: live capture needs Linux AF_PACKET", cfg.Interface)
}
