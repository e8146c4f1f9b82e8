package capture

import "github.com/sip-exporter/sip_exporter/capture/decode"

// Origin says where and when a SIP message was seen; see [decode.Origin],
// where it is declared.
type Origin = decode.Origin
