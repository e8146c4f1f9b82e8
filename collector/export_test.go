package collector

// NormalisePhrase returns the label value of a wire reason phrase.
func NormalisePhrase(b []byte) string {
	var buf [MaxPhraseBytes]byte
	return string(buf[:normalisePhrase(&buf, b)])
}

// Overflow returns the count of sip_exporter_node_overflow_total.
func (c *SIP) Overflow() uint64 { return c.overflow.Load() }
