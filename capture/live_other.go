//go:build !linux

package capture

import (
	"context"
	"fmt"
)

// Live is only available on Linux (AF_PACKET).
func Live(ctx context.Context, cfg LiveConfig, d *Decoder, started func()) error {
	return fmt.Errorf("capture interface %q: live capture needs Linux AF_PACKET", cfg.Interface)
}
